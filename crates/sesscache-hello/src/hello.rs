//! The parsed ClientHello: its body, checked once, and where in it each field lies.

use std::fmt;
use std::ops::Range;

use crate::reader::Reader;
use crate::Error;

/// `server_name` (RFC 6066).
const SERVER_NAME: u16 = 0;
/// `session_ticket` (RFC 5077).
const SESSION_TICKET: u16 = 35;
/// `pre_shared_key` (RFC 8446).
pub(crate) const PRE_SHARED_KEY: u16 = 41;
/// `supported_versions` (RFC 8446).
pub(crate) const SUPPORTED_VERSIONS: u16 = 43;
/// `psk_key_exchange_modes` (RFC 8446).
const PSK_KEY_EXCHANGE_MODES: u16 = 45;

/// `ProtocolVersion versions<2..254>`: at most 127 versions.
const MAX_VERSIONS: usize = 127;

/// The longest legacy session id (RFC 5246, 7.4.1.2; RFC 8446, 4.1.2).
const MAX_SESSION_ID_LEN: usize = 32;

/// A ClientHello (RFC 8446, 4.1.2; RFC 5246, 7.4.1.2), checked and read-only.
///
/// It owns one copy of the message's body (no more bytes than the input) and knows where
/// each field lies in it; the accessors borrow from it. The checks are the wire format's:
/// every length within its container and within its definition's bounds, no trailing bytes,
/// no duplicate extension, `pre_shared_key` last with one binder per identity. The contents
/// of extensions other than `server_name`, `session_ticket`, `pre_shared_key`,
/// `supported_versions` and `psk_key_exchange_modes` are not read.
///
/// `Debug` shows lengths, never the session id, ticket or identities (a stateful cache's
/// keys).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientHello {
    body: Box<[u8]>,
    legacy_version: u16,
    session_id: Range<usize>,
    session_ticket: Option<Range<usize>>,
    server_name: Option<Range<usize>>,
    /// The `identities` vector's contents (empty without `pre_shared_key`).
    psk_identities: Range<usize>,
    psk_count: usize,
    psk_modes: Range<usize>,
    versions: [u16; MAX_VERSIONS],
    versions_len: usize,
}

impl ClientHello {
    /// Parses and checks a ClientHello's body (the handshake message without its 4-byte
    /// header).
    pub(crate) fn parse_body(body: Box<[u8]>) -> Result<Self, Error> {
        let mut hello = ClientHello {
            body,
            legacy_version: 0,
            session_id: 0..0,
            session_ticket: None,
            server_name: None,
            psk_identities: 0..0,
            psk_count: 0,
            psk_modes: 0..0,
            versions: [0; MAX_VERSIONS],
            versions_len: 0,
        };
        let body = &*hello.body;
        let mut r = Reader::new(body, "the ClientHello");
        hello.legacy_version = r.u16("legacy_version")?;
        r.take(32, "random")?;
        hello.session_id = r.vec8("legacy_session_id")?;
        at_most(
            "legacy_session_id",
            &hello.session_id,
            MAX_SESSION_ID_LEN,
            "at most 32 bytes",
        )?;
        let suites = r.vec16("cipher_suites")?;
        if suites.is_empty() || suites.len() % 2 != 0 {
            return Err(bad_length(
                "cipher_suites",
                &suites,
                "a non-zero even number of bytes",
            ));
        }
        let compression = r.vec8("legacy_compression_methods")?;
        at_least(
            "legacy_compression_methods",
            &compression,
            1,
            "at least 1 byte",
        )?;
        if r.remaining() == 0 {
            // A TLS 1.2 or older ClientHello may end here, without an extensions vector.
            return Ok(hello);
        }
        let extensions = r.vec16("extensions")?;
        r.finish()?;

        let mut r = r.sub(extensions, "extensions");
        // One bit per extension type: duplicates found in constant time per extension.
        let mut seen = [0u64; 1024];
        let mut after_psk = false;
        while r.remaining() > 0 {
            if after_psk {
                return Err(Error::PskNotLast);
            }
            let kind = r.u16("extension_type")?;
            let data = r.vec16("extension_data")?;
            let (word, bit) = (usize::from(kind / 64), kind % 64);
            if seen[word] & (1 << bit) != 0 {
                return Err(Error::DuplicateExtension(kind));
            }
            seen[word] |= 1 << bit;
            let ext = |name| r.sub(data.clone(), name);
            match kind {
                SERVER_NAME => hello.server_name = host_name(ext("server_name"))?,
                SESSION_TICKET => hello.session_ticket = Some(data.clone()),
                PRE_SHARED_KEY => {
                    (hello.psk_identities, hello.psk_count) = offered_psks(ext("pre_shared_key"))?;
                    after_psk = true;
                }
                SUPPORTED_VERSIONS => {
                    let versions = vector8(ext("supported_versions"), "versions")?;
                    if versions.is_empty() || versions.len() % 2 != 0 {
                        return Err(bad_length(
                            "versions",
                            &versions,
                            "a non-zero even number of bytes",
                        ));
                    }
                    for (slot, pair) in hello
                        .versions
                        .iter_mut()
                        .zip(body[versions].chunks_exact(2))
                    {
                        *slot = u16::from_be_bytes([pair[0], pair[1]]);
                        hello.versions_len += 1;
                    }
                }
                PSK_KEY_EXCHANGE_MODES => {
                    hello.psk_modes = vector8(ext("psk_key_exchange_modes"), "ke_modes")?;
                    at_least("ke_modes", &hello.psk_modes, 1, "at least 1 byte")?;
                }
                _ => {}
            }
        }
        Ok(hello)
    }

    fn bytes(&self, range: &Range<usize>) -> &[u8] {
        // The ranges come from a `Reader` over this very body.
        self.body.get(range.clone()).unwrap_or_default()
    }

    /// `legacy_version`: `0x0303` (TLS 1.2) from every TLS 1.3 client, which lists its
    /// versions in [`supported_versions`](Self::supported_versions) instead.
    #[doc(alias = "SSL_client_hello_get0_legacy_version")]
    pub fn legacy_version(&self) -> u16 {
        self.legacy_version
    }

    /// The legacy session id: 0 to 32 bytes. A TLS 1.2 client resuming by session id sends
    /// the session's id; a TLS 1.3 client sends 32 random bytes (RFC 8446, D.4) or nothing.
    #[doc(alias = "SSL_client_hello_get0_session_id")]
    pub fn session_id(&self) -> &[u8] {
        self.bytes(&self.session_id)
    }

    /// The `session_ticket` extension's contents (RFC 5077): `None` without the extension,
    /// `Some(&[])` when the client asks for a ticket, the ticket when it offers one.
    pub fn session_ticket(&self) -> Option<&[u8]> {
        self.session_ticket.as_ref().map(|range| self.bytes(range))
    }

    /// The `pre_shared_key` extension's identities (RFC 8446, 4.2.11), in the client's order;
    /// none without the extension. Each is a ticket (a stateful server's key, or a stateless
    /// server's sealed session) or an external PSK's name.
    pub fn psk_identities(&self) -> PskIdentities<'_> {
        PskIdentities {
            reader: Reader::new(&self.body, "identities")
                .sub(self.psk_identities.clone(), "identities"),
            left: self.psk_count,
        }
    }

    /// The `supported_versions` extension's list, in the client's order; empty without the
    /// extension. It may hold GREASE values (RFC 8701).
    pub fn supported_versions(&self) -> &[u16] {
        self.versions.get(..self.versions_len).unwrap_or_default()
    }

    /// Whether the client offers TLS 1.3 (`0x0304` in `supported_versions`).
    pub fn offers_tls13(&self) -> bool {
        self.supported_versions().contains(&0x0304)
    }

    /// The `psk_key_exchange_modes` extension's modes (RFC 8446, 4.2.9): 1 is `psk_dhe_ke`,
    /// 0 `psk_ke`; empty without the extension.
    pub fn psk_key_exchange_modes(&self) -> &[u8] {
        self.bytes(&self.psk_modes)
    }

    /// The `server_name` extension's host name (RFC 6066, 3), if it is valid UTF-8 and not
    /// empty. No other check: it is what the client sent, not necessarily a DNS name.
    #[doc(alias = "SSL_get_servername")]
    pub fn server_name(&self) -> Option<&str> {
        let name = self.bytes(self.server_name.as_ref()?);
        std::str::from_utf8(name).ok().filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for ClientHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHello")
            .field(
                "legacy_version",
                &format_args!("{:#06x}", self.legacy_version),
            )
            .field("session_id_len", &self.session_id.len())
            .field(
                "session_ticket_len",
                &self.session_ticket.as_ref().map(Range::len),
            )
            .field("psk_identities", &self.psk_count)
            .field("supported_versions", &self.supported_versions())
            .field("server_name", &self.server_name())
            .finish_non_exhaustive()
    }
}

/// One identity of a `pre_shared_key` extension (RFC 8446's `PskIdentity`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PskIdentity<'a> {
    identity: &'a [u8],
    obfuscated_ticket_age: u32,
}

impl<'a> PskIdentity<'a> {
    /// The identity: a ticket's bytes, 1 to 65535 of them.
    pub fn identity(&self) -> &'a [u8] {
        self.identity
    }

    /// The ticket's age in milliseconds plus the ticket's `ticket_age_add`, modulo 2^32 (0
    /// for an external PSK).
    pub fn obfuscated_ticket_age(&self) -> u32 {
        self.obfuscated_ticket_age
    }
}

impl fmt::Debug for PskIdentity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PskIdentity")
            .field("len", &self.identity.len())
            .field("obfuscated_ticket_age", &self.obfuscated_ticket_age)
            .finish_non_exhaustive()
    }
}

/// The identities of a `pre_shared_key` extension, in order
/// ([`ClientHello::psk_identities`]). Reads the checked bytes again; allocates nothing.
pub struct PskIdentities<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for PskIdentities<'a> {
    type Item = PskIdentity<'a>;

    fn next(&mut self) -> Option<PskIdentity<'a>> {
        // Checked when parsed: these reads cannot fail unless `left` is already 0.
        let identity = self.reader.vec16("identity").ok()?;
        let obfuscated_ticket_age = self.reader.u32("obfuscated_ticket_age").ok()?;
        self.left = self.left.saturating_sub(1);
        Some(PskIdentity {
            identity: self.reader.slice(identity),
            obfuscated_ticket_age,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PskIdentities<'_> {}

impl fmt::Debug for PskIdentities<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PskIdentities")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

/// The identities of one `pre_shared_key` extension's data (what a TLS library that parsed
/// the ClientHello itself hands over, as OpenSSL's `SSL_client_hello_get0_ext` does), checked
/// as a whole as [`parse_handshake`](crate::parse_handshake) checks it.
pub fn pre_shared_key(data: &[u8]) -> Result<PskIdentities<'_>, Error> {
    let r = Reader::new(data, "pre_shared_key");
    let (identities, left) = offered_psks(r)?;
    Ok(PskIdentities {
        reader: Reader::new(data, "identities").sub(identities, "identities"),
        left,
    })
}

/// The versions of one `supported_versions` extension's data, in the client's order.
pub fn supported_versions(data: &[u8]) -> Result<Vec<u16>, Error> {
    let versions = vector8(Reader::new(data, "supported_versions"), "versions")?;
    if versions.is_empty() || versions.len() % 2 != 0 {
        return Err(bad_length(
            "versions",
            &versions,
            "a non-zero even number of bytes",
        ));
    }
    Ok(data[versions]
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect())
}

/// The host name of a `server_name` extension: RFC 6066's `ServerNameList`, at most one
/// `host_name`; an entry of another type ends the list, since its length cannot be known
/// (rustls reads it the same way).
fn host_name(mut r: Reader<'_>) -> Result<Option<Range<usize>>, Error> {
    let list = r.vec16("server_name_list")?;
    r.finish()?;
    at_least("server_name_list", &list, 1, "at least 1 byte")?;
    let mut r = r.sub(list, "server_name_list");
    let mut found = None;
    while r.remaining() > 0 {
        if r.u8("name_type")? != 0 {
            break;
        }
        let name = r.vec16("host_name")?;
        if found.replace(name).is_some() {
            return Err(Error::DuplicateHostName);
        }
    }
    Ok(found)
}

/// The `identities` vector's contents and how many identities it holds, after checking the
/// whole of RFC 8446's `OfferedPsks`.
fn offered_psks(mut r: Reader<'_>) -> Result<(Range<usize>, usize), Error> {
    let identities = r.vec16("identities")?;
    let binders = r.vec16("binders")?;
    r.finish()?;
    at_least("identities", &identities, 7, "at least 7 bytes")?;
    at_least("binders", &binders, 33, "at least 33 bytes")?;
    let mut ids = r.sub(identities.clone(), "identities");
    let mut count = 0;
    while ids.remaining() > 0 {
        let identity = ids.vec16("identity")?;
        at_least("identity", &identity, 1, "at least 1 byte")?;
        ids.u32("obfuscated_ticket_age")?;
        count += 1;
    }
    let mut entries = r.sub(binders, "binders");
    let mut binder_count = 0;
    while entries.remaining() > 0 {
        let binder = entries.vec8("PskBinderEntry")?;
        at_least("PskBinderEntry", &binder, 32, "at least 32 bytes")?;
        binder_count += 1;
    }
    if binder_count != count {
        return Err(Error::PskBinders {
            identities: count,
            binders: binder_count,
        });
    }
    Ok((identities, count))
}

/// An extension whose data is one vector with a 1-byte length.
fn vector8(mut r: Reader<'_>, field: &'static str) -> Result<Range<usize>, Error> {
    let v = r.vec8(field)?;
    r.finish()?;
    Ok(v)
}

fn bad_length(field: &'static str, range: &Range<usize>, rule: &'static str) -> Error {
    Error::BadLength {
        field,
        len: range.len(),
        rule,
    }
}

fn at_least(
    field: &'static str,
    range: &Range<usize>,
    min: usize,
    rule: &'static str,
) -> Result<(), Error> {
    match range.len() >= min {
        true => Ok(()),
        false => Err(bad_length(field, range, rule)),
    }
}

fn at_most(
    field: &'static str,
    range: &Range<usize>,
    max: usize,
    rule: &'static str,
) -> Result<(), Error> {
    match range.len() <= max {
        true => Ok(()),
        false => Err(bad_length(field, range, rule)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{psk, server_name, vec16, vec8, Hello};

    fn parse(hello: &Hello) -> Result<ClientHello, Error> {
        ClientHello::parse_body(hello.body().into())
    }

    fn overrun(field: &'static str, container: &'static str) -> Error {
        Error::Overrun { field, container }
    }

    fn bad(field: &'static str, len: usize, rule: &'static str) -> Error {
        Error::BadLength { field, len, rule }
    }

    fn trailing(container: &'static str, count: usize) -> Error {
        Error::TrailingBytes { container, count }
    }

    #[test]
    fn reads_every_field_of_a_tls13_hello_with_psks() {
        let hello = Hello::tls13()
            .session_id(&[7; 32])
            .ext(35, b"ticket".to_vec())
            .psk(&[(b"first", 11), (&[9; 300], 22), (b"x", u32::MAX)]);
        let parsed = parse(&hello).unwrap();
        assert_eq!(parsed.legacy_version(), 0x0303);
        assert_eq!(parsed.session_id(), [7; 32]);
        assert_eq!(parsed.session_ticket(), Some(&b"ticket"[..]));
        assert_eq!(parsed.supported_versions(), [0x0304, 0x0303]);
        assert!(parsed.offers_tls13());
        assert_eq!(parsed.psk_key_exchange_modes(), [1]);
        assert_eq!(parsed.server_name(), Some("example.com"));
        let ids = parsed.psk_identities();
        assert_eq!(ids.len(), 3);
        let ids: Vec<_> = ids
            .map(|id| (id.identity().to_vec(), id.obfuscated_ticket_age()))
            .collect();
        assert_eq!(
            ids,
            [
                (b"first".to_vec(), 11),
                (vec![9; 300], 22),
                (b"x".to_vec(), u32::MAX)
            ]
        );
    }

    #[test]
    fn a_hello_without_extensions_has_none_of_theirs() {
        let hello = Hello {
            extensions: None,
            ..Hello::tls12().session_id(&[1; 16])
        };
        let parsed = parse(&hello).unwrap();
        assert_eq!(parsed.session_id(), [1; 16]);
        assert_eq!(parsed.session_ticket(), None);
        assert_eq!(parsed.psk_identities().count(), 0);
        assert!(parsed.supported_versions().is_empty());
        assert!(!parsed.offers_tls13());
        assert!(parsed.psk_key_exchange_modes().is_empty());
        assert_eq!(parsed.server_name(), None);
        let empty = Hello {
            extensions: Some(Vec::new()),
            ..Hello::tls12()
        };
        assert_eq!(parse(&empty).unwrap().session_ticket(), None);
    }

    #[test]
    fn an_empty_session_ticket_is_there_and_empty() {
        let parsed = parse(&Hello::tls12()).unwrap();
        assert_eq!(parsed.session_ticket(), Some(&[][..]));
        assert!(parsed.session_id().is_empty());
    }

    #[test]
    fn the_server_name_is_the_host_name_if_it_is_utf8_and_not_empty() {
        let cases: [(Vec<u8>, Option<&str>); 5] = [
            (
                server_name("bücher.example".as_bytes()),
                Some("bücher.example"),
            ),
            (server_name(&[0xff, 0xfe]), None),
            (server_name(b""), None),
            // An unknown name type ends the list, as in rustls: what follows is not read.
            (vec16(&[1, 0xde, 0xad, 0xbe, 0xef]), None),
            (
                vec16(&[&server_name(b"a.example")[2..], &[7, 1, 2, 3]].concat()),
                Some("a.example"),
            ),
        ];
        for (data, expected) in cases {
            let parsed = parse(&Hello::tls12().ext(0, data.clone())).unwrap();
            assert_eq!(parsed.server_name(), expected, "{data:02x?}");
        }
    }

    #[track_caller]
    fn check(hello: Hello, expected: Error) {
        assert_eq!(parse(&hello), Err(expected), "{hello:?}");
    }

    #[test]
    fn rejects_each_malformed_field_by_name() {
        let body = Hello::tls13().body();
        let cut = |n: usize| ClientHello::parse_body(body[..n].into());
        let container = "the ClientHello";
        assert_eq!(cut(1), Err(overrun("legacy_version", container)));
        assert_eq!(cut(2), Err(overrun("random", container)));
        assert_eq!(cut(34), Err(overrun("legacy_session_id", container)));
        assert_eq!(cut(40), Err(overrun("legacy_session_id", container)));
        assert_eq!(cut(67), Err(overrun("cipher_suites", container)));
        assert_eq!(
            cut(75),
            Err(overrun("legacy_compression_methods", container))
        );
        assert!(cut(77).is_ok(), "a hello may end after compression");
        assert_eq!(cut(78), Err(overrun("extensions", container)));
        assert_eq!(cut(body.len() - 1), Err(overrun("extensions", container)));

        let tls12 = Hello::tls12;
        check(
            tls12().session_id(&[0; 33]),
            bad("legacy_session_id", 33, "at most 32 bytes"),
        );
        let even = "a non-zero even number of bytes";
        check(
            Hello {
                cipher_suites: vec![0x13, 0x01, 0x13],
                ..tls12()
            },
            bad("cipher_suites", 3, even),
        );
        check(
            Hello {
                cipher_suites: Vec::new(),
                ..tls12()
            },
            bad("cipher_suites", 0, even),
        );
        check(
            Hello {
                compression: Vec::new(),
                ..tls12()
            },
            bad("legacy_compression_methods", 0, "at least 1 byte"),
        );
        let mut trailing_body = tls12().body();
        trailing_body.extend([0, 0]);
        assert_eq!(
            ClientHello::parse_body(trailing_body.into()),
            Err(trailing(container, 2))
        );
    }

    #[test]
    fn rejects_malformed_extensions() {
        let tls13 = Hello::tls13;
        let ext = |kind| tls13().ext(kind, Vec::new());
        let cases = [
            // The extensions vector itself.
            (
                Hello {
                    extensions: None,
                    ..tls13()
                },
                None,
            ),
            (tls13().push_ext(0x0a0a, vec![1]), None),
            (
                tls13().push_ext(0x0a0a, vec![]).push_ext(0x0a0a, vec![]),
                Some(Error::DuplicateExtension(0x0a0a)),
            ),
            (
                tls13().push_ext(43, vec![2, 3, 4]),
                Some(Error::DuplicateExtension(43)),
            ),
            // server_name
            (
                tls13().ext(0, vec16(&[])),
                Some(bad("server_name_list", 0, "at least 1 byte")),
            ),
            (
                tls13().ext(0, [server_name(b"a"), vec![0]].concat()),
                Some(trailing("server_name", 1)),
            ),
            (
                tls13().ext(
                    0,
                    vec16(&[&server_name(b"a")[2..], &server_name(b"b")[2..]].concat()),
                ),
                Some(Error::DuplicateHostName),
            ),
            (
                tls13().ext(0, vec16(&[0, 0, 9, b'a'])),
                Some(overrun("host_name", "server_name_list")),
            ),
            (ext(0), Some(overrun("server_name_list", "server_name"))),
            // supported_versions
            (ext(43), Some(overrun("versions", "supported_versions"))),
            (
                tls13().ext(43, vec![0]),
                Some(bad("versions", 0, "a non-zero even number of bytes")),
            ),
            (
                tls13().ext(43, vec![3, 3, 4, 3]),
                Some(bad("versions", 3, "a non-zero even number of bytes")),
            ),
            (
                tls13().ext(43, vec![2, 3, 4, 0]),
                Some(trailing("supported_versions", 1)),
            ),
            // psk_key_exchange_modes
            (
                tls13().ext(45, vec![0]),
                Some(bad("ke_modes", 0, "at least 1 byte")),
            ),
            (
                tls13().ext(45, vec![2, 1]),
                Some(overrun("ke_modes", "psk_key_exchange_modes")),
            ),
        ];
        for (hello, expected) in cases {
            match expected {
                Some(expected) => check(hello, expected),
                None => assert!(parse(&hello).is_ok(), "{hello:?}"),
            }
        }

        // An extension's header or data past the end of the extensions vector.
        let mut body = tls13().body();
        let exts_at = body.len() - tls13_extensions_len() - 2;
        for (extra, field) in [(1, "extension_type"), (3, "extension_data")] {
            let len = (tls13_extensions_len() + extra) as u16;
            body.splice(exts_at..exts_at + 2, len.to_be_bytes());
            body.truncate(exts_at + 2 + tls13_extensions_len());
            body.extend([0xfa, 0xfa, 0][..extra].iter().copied());
            assert_eq!(
                ClientHello::parse_body(body.clone().into()),
                Err(overrun(field, "extensions"))
            );
        }
    }

    fn tls13_extensions_len() -> usize {
        let body = Hello::tls13().body();
        let without = Hello {
            extensions: None,
            ..Hello::tls13()
        }
        .body();
        body.len() - without.len() - 2
    }

    #[test]
    fn checks_the_pre_shared_key_extension_to_the_byte() {
        let ok = Hello::tls13().psk(&[(b"id", 1)]);
        assert!(parse(&ok).is_ok());
        let with = |data: Vec<u8>| Hello::tls13().push_ext(41, data);
        let one: &[(&[u8], u32)] = &[(b"id", 1)];
        let two: &[(&[u8], u32)] = &[(b"id", 1), (b"id2", 2)];
        let cases = [
            (ok.clone().push_ext(0x0a0a, Vec::new()), Error::PskNotLast),
            (ok.clone().psk(one), Error::PskNotLast),
            (
                with(psk(one, 2, 32)),
                Error::PskBinders {
                    identities: 1,
                    binders: 2,
                },
            ),
            (
                with(psk(two, 1, 32)),
                Error::PskBinders {
                    identities: 2,
                    binders: 1,
                },
            ),
            (
                with(psk(one, 1, 31)),
                bad("binders", 32, "at least 33 bytes"),
            ),
            (
                with(psk(two, 2, 31)),
                bad("PskBinderEntry", 31, "at least 32 bytes"),
            ),
            (
                with(psk(&[], 1, 32)),
                bad("identities", 0, "at least 7 bytes"),
            ),
            (
                with(psk(&[(b"", 1), (b"ab", 2)], 2, 32)),
                bad("identity", 0, "at least 1 byte"),
            ),
            (
                with([psk(one, 1, 32), vec![0]].concat()),
                trailing("pre_shared_key", 1),
            ),
            (
                with(psk(one, 1, 32)[..20].to_vec()),
                overrun("binders", "pre_shared_key"),
            ),
            (
                with(
                    [
                        vec16(&[0, 2, b'i', b'd', 0, 0, 0, 1, 0]),
                        vec16(&vec8(&[0; 32])),
                    ]
                    .concat(),
                ),
                overrun("identity", "identities"),
            ),
            (
                with([vec16(&[0, 2, b'i', b'd', 0, 0, 0]), vec16(&vec8(&[0; 32]))].concat()),
                overrun("obfuscated_ticket_age", "identities"),
            ),
            (
                with(
                    [
                        vec16(&[0, 1, b'i', 0, 0, 0, 0]),
                        vec16(&[&[40][..], &[0; 32]].concat()),
                    ]
                    .concat(),
                ),
                overrun("PskBinderEntry", "binders"),
            ),
        ];
        for (hello, expected) in cases {
            check(hello, expected);
        }
    }

    #[test]
    fn supported_versions_keep_the_clients_order_and_grease() {
        let mut list = vec![254];
        for i in 0..127u16 {
            list.extend((0x0a0a + i).to_be_bytes());
        }
        list.splice(1..3, [3, 4]);
        let parsed = parse(&Hello::tls13().ext(43, list)).unwrap();
        assert_eq!(parsed.supported_versions().len(), 127);
        assert_eq!(parsed.supported_versions()[..2], [0x0304, 0x0a0b]);
        assert!(parsed.offers_tls13());
        let parsed = parse(&Hello::tls13().ext(43, vec![4, 0x0a, 0x0a, 3, 3])).unwrap();
        assert_eq!(parsed.supported_versions(), [0x0a0a, 0x0303]);
        assert!(!parsed.offers_tls13());
    }

    #[test]
    fn debug_shows_lengths_not_keys() {
        let hello = Hello::tls13()
            .session_id(&[0xab; 32])
            .ext(35, vec![0xcd; 40])
            .psk(&[(&[0xef; 32], 5)]);
        let parsed = parse(&hello).unwrap();
        let ids = parsed.psk_identities();
        let text = format!(
            "{parsed:?} {ids:?} {:?}",
            parsed.psk_identities().next().unwrap()
        );
        for secret in ["ab, ab", "171", "0xab", "cd, cd", "205", "ef, ef", "239"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("session_id_len: 32"), "{text}");
        assert!(text.contains("session_ticket_len: Some(40)"), "{text}");
        assert!(text.contains("PskIdentity { len: 32"), "{text}");
        assert!(text.contains("PskIdentities { left: 1, .. }"), "{text}");
    }
}
