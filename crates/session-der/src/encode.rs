//! `i2d_SSL_SESSION`: a session to OpenSSL's DER form, byte for byte.

use der::asn1::OctetStringRef;
use der::{Encode, EncodeValue, FixedTag, Header, Length, Tag, TagNumber, Writer};
use session_core::SessionData;
use zeroize::Zeroizing;

use crate::schema::{c_string, tag, ASN1_VERSION, FLAG_EXTMS};
use crate::EncodeError;

/// Encodes a session in OpenSSL's DER form (`i2d_SSL_SESSION`): the fields OpenSSL 3 writes,
/// in its order, with its rule of leaving out the fields it leaves out when zero. A peer
/// chain is written as its leaf only, as OpenSSL keeps only the leaf in a session.
///
/// The bytes hold the session's secret: they come in a buffer that is zeroized when dropped,
/// allocated once at its final size so no copy is left behind by a reallocation.
#[doc(alias = "i2d_SSL_SESSION")]
pub fn to_der(session: &SessionData) -> Result<Zeroizing<Vec<u8>>, EncodeError> {
    let asn1 = SessionAsn1::new(session)?;
    let der_error = |e: der::Error| EncodeError::Der {
        field: "session",
        detail: e.kind().to_string(),
    };
    let len = asn1.encoded_len().map_err(der_error)?;
    let mut buf = Zeroizing::new(vec![0u8; usize::try_from(len).map_err(der_error)?]);
    let written = asn1.encode_to_slice(&mut buf).map_err(der_error)?.len();
    debug_assert_eq!(written, buf.len());
    Ok(buf)
}

/// One field's value.
enum Value<'a> {
    Uint(u64),
    Int(i64),
    Octets(&'a [u8]),
    /// An OCTET STRING of one or two bytes the session does not hold as such (the cipher
    /// id, the compression id).
    Small([u8; 2], usize),
    /// A complete DER element written as it is (the peer certificate).
    Raw(&'a [u8]),
}

/// A field of the session's SEQUENCE: universal, or wrapped in `[n] EXPLICIT`.
struct Field<'a> {
    explicit: Option<u32>,
    value: Value<'a>,
}

impl Field<'_> {
    fn inner_len(&self) -> der::Result<Length> {
        match self.value {
            Value::Uint(v) => v.encoded_len(),
            Value::Int(v) => v.encoded_len(),
            Value::Octets(b) => OctetStringRef::new(b)?.encoded_len(),
            Value::Small(ref b, n) => OctetStringRef::new(&b[..n])?.encoded_len(),
            Value::Raw(b) => Length::try_from(b.len()),
        }
    }

    fn header(&self, n: u32) -> der::Result<Header> {
        let tag = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(n),
        };
        Ok(Header::new(tag, self.inner_len()?))
    }
}

impl Encode for Field<'_> {
    fn encoded_len(&self) -> der::Result<Length> {
        match self.explicit {
            None => self.inner_len(),
            Some(n) => self.header(n)?.encoded_len()? + self.inner_len()?,
        }
    }

    fn encode(&self, writer: &mut impl Writer) -> der::Result<()> {
        if let Some(n) = self.explicit {
            self.header(n)?.encode(writer)?;
        }
        match self.value {
            Value::Uint(v) => v.encode(writer),
            Value::Int(v) => v.encode(writer),
            Value::Octets(b) => OctetStringRef::new(b)?.encode(writer),
            Value::Small(ref b, n) => OctetStringRef::new(&b[..n])?.encode(writer),
            Value::Raw(b) => writer.write(b),
        }
    }
}

/// OpenSSL's `SSL_SESSION_ASN1`, as the list of fields it writes for one session.
struct SessionAsn1<'a> {
    fields: Vec<Field<'a>>,
}

impl<'a> SessionAsn1<'a> {
    fn universal(&mut self, value: Value<'a>) {
        self.fields.push(Field {
            explicit: None,
            value,
        });
    }

    fn explicit(&mut self, n: u32, value: Value<'a>) {
        self.fields.push(Field {
            explicit: Some(n),
            value,
        });
    }

    fn new(s: &'a SessionData) -> Result<Self, EncodeError> {
        let extras = s.extras();
        let mut asn1 = Self {
            fields: Vec::with_capacity(24),
        };
        asn1.universal(Value::Uint(ASN1_VERSION.into()));
        asn1.universal(Value::Int(s.version().wire().into()));
        asn1.universal(Value::Small(s.cipher().0.to_be_bytes(), 2));
        asn1.universal(Value::Octets(s.id().as_bytes()));
        asn1.universal(Value::Octets(s.master_key()));

        let time = signed("time", s.time())?;
        if time != 0 {
            asn1.explicit(tag::TIME, Value::Int(time));
        }
        let timeout = signed("timeout", s.timeout())?;
        if timeout != 0 {
            asn1.explicit(tag::TIMEOUT, Value::Int(timeout));
        }
        if let Some(leaf) = s.peer_certificates().first() {
            asn1.explicit(tag::PEER, Value::Raw(leaf.as_bytes()));
        }
        asn1.explicit(tag::SID_CTX, Value::Octets(s.sid_ctx().as_bytes()));
        let verify_result =
            i32::try_from(s.verify_result()).map_err(|_| EncodeError::OutOfRange {
                field: "verify_result",
                value: s.verify_result().into(),
                max: i32::MAX.into(),
            })?;
        if verify_result != 0 {
            asn1.explicit(tag::VERIFY_RESULT, Value::Int(verify_result.into()));
        }
        if let Some(name) = s.host_name() {
            asn1.explicit(tag::HOSTNAME, Value::Octets(name.as_bytes()));
        }
        if let Some(hint) = &extras.psk_identity_hint {
            asn1.explicit(tag::PSK_IDENTITY_HINT, Value::Octets(c_string(hint)));
        }
        if let Some(identity) = &extras.psk_identity {
            asn1.explicit(tag::PSK_IDENTITY, Value::Octets(c_string(identity)));
        }
        let (lifetime_hint, age_add) = match s.ticket() {
            Some(t) => (u64::from(t.lifetime_hint()), t.age_add()),
            None => (extras.ticket_lifetime_hint, extras.ticket_age_add),
        };
        if lifetime_hint != 0 {
            asn1.explicit(tag::TICKET_LIFETIME_HINT, Value::Uint(lifetime_hint));
        }
        if let Some(ticket) = s.ticket() {
            asn1.explicit(tag::TICKET, Value::Octets(ticket.data()));
        }
        if extras.compression != 0 {
            asn1.explicit(tag::COMPRESSION, Value::Small([extras.compression, 0], 1));
        }
        if let Some(user) = &extras.srp_username {
            asn1.explicit(tag::SRP_USERNAME, Value::Octets(c_string(user)));
        }
        let ems = if s.extended_master_secret() {
            FLAG_EXTMS
        } else {
            0
        };
        let flags = (extras.other_flags & !FLAG_EXTMS) | ems;
        if flags != 0 {
            asn1.explicit(tag::FLAGS, Value::Uint(flags));
        }
        if age_add != 0 {
            asn1.explicit(tag::TICKET_AGE_ADD, Value::Uint(age_add.into()));
        }
        if s.max_early_data() != 0 {
            asn1.explicit(tag::MAX_EARLY_DATA, Value::Uint(s.max_early_data().into()));
        }
        if let Some(alpn) = s.alpn() {
            asn1.explicit(tag::ALPN, Value::Octets(alpn));
        }
        if extras.max_fragment_len_mode != 0 {
            asn1.explicit(
                tag::MAX_FRAGMENT_LEN_MODE,
                Value::Uint(extras.max_fragment_len_mode.into()),
            );
        }
        if let Some(appdata) = &extras.ticket_appdata {
            asn1.explicit(tag::TICKET_APPDATA, Value::Octets(appdata));
        }
        // OpenSSL 3 writes the group even when it is 0.
        asn1.explicit(tag::KEX_GROUP, Value::Uint(extras.kex_group.into()));
        if let Some(rpk) = &extras.peer_raw_public_key {
            asn1.explicit(tag::PEER_RPK, Value::Octets(rpk));
        }
        Ok(asn1)
    }
}

impl EncodeValue for SessionAsn1<'_> {
    fn value_len(&self) -> der::Result<Length> {
        self.fields
            .iter()
            .try_fold(Length::ZERO, |len, f| len + f.encoded_len()?)
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.fields.iter().try_for_each(|f| f.encode(writer))
    }
}

impl FixedTag for SessionAsn1<'_> {
    const TAG: Tag = Tag::Sequence;
}

/// A time or timeout as OpenSSL's signed 64-bit field.
fn signed(field: &'static str, value: u64) -> Result<i64, EncodeError> {
    i64::try_from(value).map_err(|_| EncodeError::OutOfRange {
        field,
        value: value.into(),
        max: i64::MAX.into(),
    })
}
