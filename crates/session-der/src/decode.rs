//! `d2i_SSL_SESSION`: OpenSSL's DER form to a [`Session`].
//!
//! The DER library does the parsing (tags, lengths, canonical integers); this module walks
//! the fields in OpenSSL's order and applies OpenSSL's checks. A forged length cannot make it
//! allocate: every length is checked against the input before anything is read, and values
//! are borrowed from the input until they are copied into the session.

use der::asn1::OctetStringRef;
use der::{Decode, Header, Length, Reader, SliceReader, Tag, TagNumber};
use session_core::{
    AlpnProtocol, CertificateDer, CipherSuite, Clock, HostName, MasterKey, OpensslExtras,
    ProtocolVersion, Session, SessionBuilder, SessionId, SidCtx, SystemClock, Ticket, UnixTime,
};

use crate::schema::{self, tag, ASN1_VERSION, FLAG_EXTMS, MISSING_TIMEOUT};
use crate::DecodeError;

/// Decodes a session from OpenSSL's DER form (`d2i_SSL_SESSION`). A session without a time
/// gets the system clock's, as OpenSSL gives it the current time.
#[doc(alias = "d2i_SSL_SESSION")]
pub fn from_der(der: &[u8]) -> Result<Session, DecodeError> {
    from_der_at(der, SystemClock.now())
}

/// [`from_der`] with the time a session without one gets (OpenSSL's "now") given.
pub fn from_der_at(der: &[u8], now: UnixTime) -> Result<Session, DecodeError> {
    if der.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut outer = Fields::new(der, 0)?;
    let header = outer.read("session", Header::decode)?;
    if header.tag() != Tag::Sequence {
        return Err(DecodeError::Der {
            field: "session",
            at: 0,
            detail: format!("expected a SEQUENCE, found {}", header.tag()),
        });
    }
    let start = outer.at();
    let content = outer.read("session", |r| r.read_slice(header.length()))?;
    if !outer.r.is_finished() {
        let at = outer.at();
        return Err(DecodeError::TrailingBytes {
            at,
            len: der.len() - at,
        });
    }
    Fields::new(content, start)?.session(now)
}

/// A reader over a session's fields that knows where in the input it is, for error messages.
struct Fields<'a> {
    r: SliceReader<'a>,
    base: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Result<Self, DecodeError> {
        let r = SliceReader::new(bytes).map_err(|e| DecodeError::Der {
            field: "session",
            at: base,
            detail: e.kind().to_string(),
        })?;
        Ok(Self { r, base })
    }

    fn at(&self) -> usize {
        self.base + offset(self.r.position())
    }

    /// Reads with `f`, naming `field` in any error.
    fn read<T>(
        &mut self,
        field: &'static str,
        f: impl FnOnce(&mut SliceReader<'a>) -> der::Result<T>,
    ) -> Result<T, DecodeError> {
        let start = self.at();
        f(&mut self.r).map_err(|e| DecodeError::Der {
            field,
            at: e.position().map_or(start, |p| self.base + offset(p)),
            detail: e.kind().to_string(),
        })
    }

    fn octets(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        self.read(field, |r| {
            <&OctetStringRef>::decode(r).map(|o| o.as_bytes())
        })
    }

    /// An optional `[n] EXPLICIT` field: `None` if the next field has another tag.
    fn explicit<T>(
        &mut self,
        n: u32,
        field: &'static str,
        f: impl FnOnce(&mut SliceReader<'a>) -> der::Result<T>,
    ) -> Result<Option<(usize, T)>, DecodeError> {
        let want = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(n),
        };
        if self.r.is_finished() || Tag::peek(&self.r).ok() != Some(want) {
            return Ok(None);
        }
        let at = self.at();
        let value = self.read(field, |r| {
            let header = Header::decode(r)?;
            r.read_nested(header.length(), f)
        })?;
        Ok(Some((at, value)))
    }

    fn explicit_octets(
        &mut self,
        n: u32,
        field: &'static str,
    ) -> Result<Option<(usize, &'a [u8])>, DecodeError> {
        self.explicit(n, field, |r| {
            <&OctetStringRef>::decode(r).map(|o| o.as_bytes())
        })
    }

    /// Walks OpenSSL's `SSL_SESSION_ASN1` sequence in order and builds the session.
    fn session(mut self, now: UnixTime) -> Result<Session, DecodeError> {
        let bad = |field: &'static str, at: usize, detail: String| DecodeError::Value {
            field,
            at,
            detail,
        };

        let at = self.at();
        let asn1_version = self.read("version", u32::decode)?;
        if asn1_version != ASN1_VERSION {
            return Err(bad(
                "version",
                at,
                format!("{asn1_version}; OpenSSL's session format is version {ASN1_VERSION}"),
            ));
        }

        let at = self.at();
        let ssl_version = self.read("ssl_version", i32::decode)?;
        let version = u16::try_from(ssl_version)
            .ok()
            .and_then(|wire| ProtocolVersion::new(wire).ok())
            .ok_or_else(|| {
                bad(
                    "ssl_version",
                    at,
                    format!(
                        "{ssl_version:#x} is neither a TLS (0x03xx) nor a DTLS (0xFExx) version"
                    ),
                )
            })?;

        let at = self.at();
        let cipher = match *self.octets("cipher")? {
            [hi, lo] => CipherSuite(u16::from_be_bytes([hi, lo])),
            ref other => {
                return Err(bad(
                    "cipher",
                    at,
                    format!("{} bytes long; a cipher id is 2", other.len()),
                ))
            }
        };

        let at = self.at();
        let id = SessionId::new(self.octets("session_id")?)
            .map_err(|e| bad("session_id", at, e.to_string()))?;
        let at = self.at();
        let master_key = MasterKey::new(self.octets("master_key")?)
            .map_err(|e| bad("master_key", at, e.to_string()))?;

        // `[0] IMPLICIT key_arg`: an SSLv2 relic OpenSSL still reads and ignores.
        let key_arg = Tag::ContextSpecific {
            constructed: false,
            number: TagNumber(0),
        };
        if !self.r.is_finished() && Tag::peek(&self.r).ok() == Some(key_arg) {
            self.read("key_arg", |r| r.tlv_bytes())?;
        }

        let time = match self.explicit(tag::TIME, "time", i64::decode)? {
            None | Some((_, 0)) => now,
            Some((at, t)) => {
                u64::try_from(t).map_err(|_| bad("time", at, format!("{t} is before 1970")))?
            }
        };
        let timeout = match self.explicit(tag::TIMEOUT, "timeout", i64::decode)? {
            None | Some((_, 0)) => MISSING_TIMEOUT,
            Some((at, t)) => {
                u64::try_from(t).map_err(|_| bad("timeout", at, format!("{t} is negative")))?
            }
        };
        let peer = match self.explicit(tag::PEER, "peer certificate", |r| r.tlv_bytes())? {
            None => Vec::new(),
            Some((at, cert)) => vec![CertificateDer::new(cert)
                .map_err(|e| bad("peer certificate", at, e.to_string()))?],
        };
        let sid_ctx = match self.explicit_octets(tag::SID_CTX, "sid_ctx")? {
            None => SidCtx::empty(),
            Some((at, ctx)) => SidCtx::new(ctx).map_err(|e| bad("sid_ctx", at, e.to_string()))?,
        };
        let verify_result = self
            .explicit(tag::VERIFY_RESULT, "verify_result", i32::decode)?
            .map_or(0, |(_, v)| v);
        let host_name = match self.explicit_octets(tag::HOSTNAME, "hostname")? {
            None => None,
            Some((at, name)) => {
                let name = std::str::from_utf8(name)
                    .map_err(|_| bad("hostname", at, "not UTF-8".to_owned()))?;
                Some(HostName::new(name).map_err(|e| bad("hostname", at, e.to_string()))?)
            }
        };

        let mut extras = OpensslExtras::default();
        extras.psk_identity_hint = self
            .explicit_octets(tag::PSK_IDENTITY_HINT, "psk_identity_hint")?
            .map(c_string);
        extras.psk_identity = self
            .explicit_octets(tag::PSK_IDENTITY, "psk_identity")?
            .map(c_string);
        let lifetime_hint = self.explicit(
            tag::TICKET_LIFETIME_HINT,
            "ticket lifetime hint",
            u64::decode,
        )?;
        let ticket = self.explicit_octets(tag::TICKET, "ticket")?;
        if let Some((at, comp)) = self.explicit_octets(tag::COMPRESSION, "compression id")? {
            match *comp {
                [id] => extras.compression = id,
                _ => {
                    return Err(bad(
                        "compression id",
                        at,
                        format!("{} bytes long; it is 1", comp.len()),
                    ))
                }
            }
        }
        extras.srp_username = self
            .explicit_octets(tag::SRP_USERNAME, "srp_username")?
            .map(c_string);
        let flags = self
            .explicit(tag::FLAGS, "flags", u64::decode)?
            .map_or(0, |(_, f)| f);
        extras.other_flags = flags & !FLAG_EXTMS;
        let age_add = self
            .explicit(tag::TICKET_AGE_ADD, "ticket_age_add", u32::decode)?
            .map_or(0, |(_, a)| a);
        let max_early_data = self
            .explicit(tag::MAX_EARLY_DATA, "max_early_data", u32::decode)?
            .map_or(0, |(_, m)| m);
        let alpn = match self.explicit_octets(tag::ALPN, "alpn_selected")? {
            None => None,
            Some((at, alpn)) => {
                Some(AlpnProtocol::new(alpn).map_err(|e| bad("alpn_selected", at, e.to_string()))?)
            }
        };
        extras.max_fragment_len_mode = self
            .explicit(
                tag::MAX_FRAGMENT_LEN_MODE,
                "max_fragment_len_mode",
                u32::decode,
            )?
            .map_or(0, |(_, m)| m);
        extras.ticket_appdata = self
            .explicit_octets(tag::TICKET_APPDATA, "ticket_appdata")?
            .map(boxed);
        extras.kex_group = self
            .explicit(tag::KEX_GROUP, "kex_group", u32::decode)?
            .map_or(0, |(_, g)| g);
        extras.peer_raw_public_key = self.explicit_octets(tag::PEER_RPK, "peer_rpk")?.map(boxed);

        if !self.r.is_finished() {
            let at = self.at();
            let found = Tag::peek(&self.r).map_or_else(|e| e.kind().to_string(), |t| t.to_string());
            return Err(DecodeError::Der {
                field: "session",
                at,
                detail: format!(
                    "unexpected {found}: not a field of OpenSSL's session, or out of order"
                ),
            });
        }

        let hint = lifetime_hint.map_or(0, |(_, h)| h);
        let ticket = match ticket {
            None => {
                extras.ticket_lifetime_hint = hint;
                extras.ticket_age_add = age_add;
                None
            }
            Some((at, data)) => {
                let hint = u32::try_from(hint).map_err(|_| {
                    bad(
                        "ticket lifetime hint",
                        lifetime_hint.map_or(at, |(at, _)| at),
                        format!("{hint} seconds; a ticket's lifetime hint is 32 bits"),
                    )
                })?;
                Some(
                    Ticket::new(data, hint, age_add)
                        .map_err(|e| bad("ticket", at, e.to_string()))?,
                )
            }
        };

        Ok(SessionBuilder::new(version, time)
            .cipher(cipher)
            .id(id)
            .master_key(master_key)
            .timeout(timeout)
            .peer_certificates(peer)
            .sid_ctx(sid_ctx)
            .verify_result(i64::from(verify_result))
            .host_name(host_name)
            .ticket(ticket)
            .max_early_data(max_early_data)
            .alpn(alpn)
            .extended_master_secret(flags & FLAG_EXTMS != 0)
            .extras(extras)
            .build())
    }
}

/// A field OpenSSL keeps as a C string: it reads up to the first NUL (`OPENSSL_strndup`).
fn c_string((_, bytes): (usize, &[u8])) -> Box<[u8]> {
    schema::c_string(bytes).into()
}

fn boxed((_, bytes): (usize, &[u8])) -> Box<[u8]> {
    bytes.into()
}

fn offset(len: Length) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}
