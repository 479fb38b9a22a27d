//! The newtypes a session is made of. Each checks its limits once, at construction, so a
//! [`crate::Session`] can never hold an out-of-range value.

use std::fmt;
use std::hash::{Hash, Hasher};

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// A protocol version as it appears on the wire (`0x0303` is TLS 1.2).
///
/// Unknown versions are kept, as OpenSSL keeps them; only a major byte that is neither
/// TLS's 0x03 nor DTLS's 0xFE (and not OpenSSL's old `DTLS1_BAD_VER`, 0x0100) is rejected, as
/// `d2i_SSL_SESSION` rejects it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion(u16);

impl ProtocolVersion {
    /// SSL 3.0.
    pub const SSL3: Self = Self(0x0300);
    /// TLS 1.0.
    pub const TLS1_0: Self = Self(0x0301);
    /// TLS 1.1.
    pub const TLS1_1: Self = Self(0x0302);
    /// TLS 1.2.
    pub const TLS1_2: Self = Self(0x0303);
    /// TLS 1.3.
    pub const TLS1_3: Self = Self(0x0304);
    /// DTLS 1.0.
    pub const DTLS1_0: Self = Self(0xFEFF);
    /// DTLS 1.2.
    pub const DTLS1_2: Self = Self(0xFEFD);
    /// The pre-standard DTLS of OpenSSL 0.9.8 (`DTLS1_BAD_VER`), which OpenSSL still accepts.
    pub const DTLS1_BAD: Self = Self(0x0100);

    /// Checks a wire value.
    pub fn new(wire: u16) -> Result<Self, Error> {
        match wire >> 8 {
            0x03 | 0xFE => Ok(Self(wire)),
            _ if wire == Self::DTLS1_BAD.0 => Ok(Self(wire)),
            _ => Err(Error::InvalidProtocolVersion(wire)),
        }
    }

    /// The wire value.
    #[inline]
    pub fn wire(self) -> u16 {
        self.0
    }

    /// Whether this is TLS 1.3 (or a later TLS), where every ticket is a new session and a
    /// client uses each one once.
    pub fn is_tls13_or_later(self) -> bool {
        self.0 >> 8 == 0x03 && self.0 >= 0x0304
    }
}

impl fmt::Debug for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SSL3 => f.write_str("SSLv3"),
            Self::TLS1_0 => f.write_str("TLSv1"),
            Self::TLS1_1 => f.write_str("TLSv1.1"),
            Self::TLS1_2 => f.write_str("TLSv1.2"),
            Self::TLS1_3 => f.write_str("TLSv1.3"),
            Self::DTLS1_0 => f.write_str("DTLSv1"),
            Self::DTLS1_2 => f.write_str("DTLSv1.2"),
            Self::DTLS1_BAD => f.write_str("DTLSv0.9"),
            Self(other) => write!(f, "ProtocolVersion({other:#06x})"),
        }
    }
}

/// A cipher suite id: the two bytes the wire carries (OpenSSL keeps `0x0300_0000 | id`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CipherSuite(pub u16);

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CipherSuite({:#06x})", self.0)
    }
}

/// Up to 32 bytes, stored inline: the shape of a session id and of a session id context.
#[derive(Clone, Copy)]
struct Inline32 {
    len: u8,
    bytes: [u8; 32],
}

impl Inline32 {
    const MAX: usize = 32;

    fn new(src: &[u8]) -> Option<Self> {
        if src.len() > Self::MAX {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes[..src.len()].copy_from_slice(src);
        Some(Self {
            len: src.len() as u8,
            bytes,
        })
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A session id: at most 32 bytes, possibly empty (a TLS 1.3 or ticket-only session has none).
///
/// It is zeroized when dropped, and never shown by `Debug`.
#[derive(Clone)]
pub struct SessionId(Inline32);

impl SessionId {
    /// The longest session id TLS allows.
    pub const MAX_LEN: usize = Inline32::MAX;

    /// Checks the length (at most 32 bytes).
    pub fn new(id: &[u8]) -> Result<Self, Error> {
        Inline32::new(id).map(Self).ok_or(Error::SessionIdTooLong {
            len: id.len(),
            max: Self::MAX_LEN,
        })
    }

    /// The empty session id.
    pub fn empty() -> Self {
        Self(Inline32 {
            len: 0,
            bytes: [0; 32],
        })
    }

    /// The id's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Whether the id is empty (such a session can never be cached).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for SessionId {}

impl Hash for SessionId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Zeroize for SessionId {
    fn zeroize(&mut self) {
        self.0.bytes.zeroize();
        self.0.len.zeroize();
    }
}

impl Drop for SessionId {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for SessionId {}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionId")
            .field("len", &self.0.len)
            .finish_non_exhaustive()
    }
}

/// A session id context (`sid_ctx`): at most 32 bytes that tie a session to the application
/// context that made it. Not secret.
#[derive(Clone, Copy)]
pub struct SidCtx(Inline32);

impl SidCtx {
    /// The longest context OpenSSL allows.
    pub const MAX_LEN: usize = Inline32::MAX;

    /// Checks the length (at most 32 bytes).
    pub fn new(ctx: &[u8]) -> Result<Self, Error> {
        Inline32::new(ctx).map(Self).ok_or(Error::SidCtxTooLong {
            len: ctx.len(),
            max: Self::MAX_LEN,
        })
    }

    /// The empty context.
    pub fn empty() -> Self {
        Self(Inline32 {
            len: 0,
            bytes: [0; 32],
        })
    }

    /// The context's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Default for SidCtx {
    fn default() -> Self {
        Self::empty()
    }
}

impl PartialEq for SidCtx {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for SidCtx {}

impl fmt::Debug for SidCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SidCtx(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The master key (TLS 1.2 and earlier, 48 bytes) or resumption secret (TLS 1.3, up to 64
/// bytes; OpenSSL's buffer takes 512). Zeroized when dropped; never shown by `Debug`.
///
/// Secrets of up to 64 bytes live inline in this value: no allocation of their own to make,
/// free and leave behind. Longer ones, which only a forged or exotic session carries, are
/// boxed. (A session keeps up to 48 bytes inline, every master key and the resumption
/// secrets of SHA-256 and SHA-384 suites, and a longer secret in a box of its own.)
#[derive(Clone)]
pub struct MasterKey(KeyRepr);

#[derive(Clone)]
enum KeyRepr {
    Inline {
        len: u8,
        bytes: [u8; MasterKey::INLINE],
    },
    Heap(Box<[u8]>),
}

impl MasterKey {
    /// The largest secret OpenSSL stores (`TLS13_MAX_RESUMPTION_PSK_LENGTH`).
    pub const MAX_LEN: usize = 512;
    const INLINE: usize = 64;

    /// Copies the secret in, checking its length.
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() > Self::MAX_LEN {
            return Err(Error::MasterKeyTooLong {
                len: secret.len(),
                max: Self::MAX_LEN,
            });
        }
        if secret.len() <= Self::INLINE {
            let mut bytes = [0u8; Self::INLINE];
            bytes[..secret.len()].copy_from_slice(secret);
            return Ok(Self(KeyRepr::Inline {
                len: secret.len() as u8,
                bytes,
            }));
        }
        Ok(Self(KeyRepr::Heap(secret.into())))
    }

    /// The secret's bytes: handle with care.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            KeyRepr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            KeyRepr::Heap(b) => b,
        }
    }
}

impl Default for MasterKey {
    fn default() -> Self {
        Self(KeyRepr::Inline {
            len: 0,
            bytes: [0; Self::INLINE],
        })
    }
}

impl Zeroize for MasterKey {
    fn zeroize(&mut self) {
        match &mut self.0 {
            KeyRepr::Inline { len, bytes } => {
                bytes.zeroize();
                len.zeroize();
            }
            KeyRepr::Heap(b) => b.zeroize(),
        }
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for MasterKey {}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("len", &self.as_bytes().len())
            .finish_non_exhaustive()
    }
}

/// An SNI host name: a DNS name of 1 to 253 characters in labels of 1 to 63 letters, digits,
/// hyphens or underscores, neither starting nor ending with a hyphen; no trailing dot, no IP
/// address (RFC 6066 forbids literal addresses in SNI).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostName(Box<str>);

impl HostName {
    /// Checks that `name` is a DNS name.
    pub fn new(name: &str) -> Result<Self, Error> {
        let bad = |reason| Err(Error::InvalidHostName { reason });
        if name.is_empty() {
            return bad("empty");
        }
        if name.len() > 253 {
            return bad("longer than 253 characters");
        }
        if name.parse::<std::net::IpAddr>().is_ok() {
            return bad("an IP address, which SNI does not carry");
        }
        for label in name.split('.') {
            if label.is_empty() {
                return bad("an empty label");
            }
            if label.len() > 63 {
                return bad("a label longer than 63 characters");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return bad("a character other than a letter, digit, '-' or '_'");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return bad("a label that starts or ends with '-'");
            }
        }
        Ok(Self(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// An ALPN protocol name: 1 to 255 bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AlpnProtocol(Box<[u8]>);

impl AlpnProtocol {
    /// Checks the length.
    pub fn new(name: &[u8]) -> Result<Self, Error> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::InvalidAlpn { len: name.len() });
        }
        Ok(Self(name.into()))
    }

    /// The protocol name's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AlpnProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlpnProtocol({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// A session ticket (RFC 5077 / RFC 8446 section 4.6.1): the opaque ticket, its lifetime
/// hint in seconds and, for TLS 1.3, the `ticket_age_add` obfuscation value.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    data: Box<[u8]>,
    lifetime_hint: u32,
    age_add: u32,
}

impl Ticket {
    /// Checks the ticket's length (1 to 65535 bytes, as its length prefix allows).
    pub fn new(data: &[u8], lifetime_hint: u32, age_add: u32) -> Result<Self, Error> {
        if data.is_empty() || data.len() > usize::from(u16::MAX) {
            return Err(Error::InvalidTicket { len: data.len() });
        }
        Ok(Self {
            data: data.into(),
            lifetime_hint,
            age_add,
        })
    }

    /// The opaque ticket.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The lifetime hint, in seconds.
    pub fn lifetime_hint(&self) -> u32 {
        self.lifetime_hint
    }

    /// TLS 1.3's `ticket_age_add`.
    pub fn age_add(&self) -> u32 {
        self.age_add
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("len", &self.data.len())
            .field("lifetime_hint", &self.lifetime_hint)
            .finish_non_exhaustive()
    }
}

/// One certificate in DER: checked to be exactly one DER SEQUENCE with a definite length.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateDer(Box<[u8]>);

impl CertificateDer {
    /// Checks that `der` is one complete DER SEQUENCE.
    pub fn new(der: &[u8]) -> Result<Self, Error> {
        Self::check(der).map_err(|reason| Error::InvalidCertificate { index: 0, reason })?;
        Ok(Self(der.into()))
    }

    /// Checks a whole chain, leaf first; an error names the position of the bad certificate.
    pub fn chain<I, B>(ders: I) -> Result<Vec<Self>, Error>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        ders.into_iter()
            .enumerate()
            .map(|(index, der)| {
                let der = der.as_ref();
                Self::check(der).map_err(|reason| Error::InvalidCertificate { index, reason })?;
                Ok(Self(der.into()))
            })
            .collect()
    }

    fn check(der: &[u8]) -> Result<(), &'static str> {
        let (&tag, rest) = der.split_first().ok_or("empty")?;
        if tag != 0x30 {
            return Err("the outer tag is not SEQUENCE (0x30)");
        }
        let (&first, rest) = rest.split_first().ok_or("truncated length")?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 {
                return Err("indefinite length");
            }
            if n > 4 || rest.len() < n {
                return Err("bad long-form length");
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // DER's rule: the shortest form, so that the bytes are the one encoding of the
            // certificate (a session holding it encodes and decodes back unchanged).
            if rest[0] == 0 || len < 0x80 {
                return Err("a length not in its shortest form (BER, not DER)");
            }
            (len, &rest[n..])
        };
        match rest.len().cmp(&len) {
            std::cmp::Ordering::Less => Err("truncated contents"),
            std::cmp::Ordering::Greater => Err("trailing bytes after the SEQUENCE"),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// The DER bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for CertificateDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateDer")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_limits() {
        assert!(SessionId::new(&[]).unwrap().is_empty());
        assert_eq!(SessionId::new(&[7; 32]).unwrap().as_bytes(), &[7; 32]);
        assert_eq!(
            SessionId::new(&[7; 33]).unwrap_err(),
            Error::SessionIdTooLong { len: 33, max: 32 }
        );
    }

    #[test]
    fn session_id_equality_ignores_unused_tail() {
        assert_eq!(
            SessionId::new(b"ab").unwrap(),
            SessionId::new(b"ab").unwrap()
        );
        assert_ne!(
            SessionId::new(b"ab").unwrap(),
            SessionId::new(b"ab\0").unwrap()
        );
    }

    #[test]
    fn session_id_zeroize_clears_bytes_and_length() {
        let mut id = SessionId::new(&[0xAA; 32]).unwrap();
        id.zeroize();
        assert!(id.is_empty());
        assert_eq!(id.0.bytes, [0; 32]);
    }

    #[test]
    fn sid_ctx_limits() {
        assert_eq!(SidCtx::new(&[1; 32]).unwrap().as_bytes().len(), 32);
        assert_eq!(
            SidCtx::new(&[1; 33]).unwrap_err(),
            Error::SidCtxTooLong { len: 33, max: 32 }
        );
    }

    #[test]
    fn master_key_limits() {
        assert!(MasterKey::new(&[1; 512]).is_ok());
        assert_eq!(
            MasterKey::new(&[1; 513]).unwrap_err(),
            Error::MasterKeyTooLong { len: 513, max: 512 }
        );
    }

    #[test]
    fn master_key_zeroize_clears_bytes() {
        for len in [48, 64, 65, 512] {
            let mut key = MasterKey::new(&vec![0x5A; len]).unwrap();
            assert_eq!(key.as_bytes(), vec![0x5A; len]);
            key.zeroize();
            assert!(key.as_bytes().iter().all(|&b| b == 0), "{len}");
        }
        let mut inline = MasterKey::new(&[0x5A; 48]).unwrap();
        inline.zeroize();
        match inline.0 {
            KeyRepr::Inline { len, bytes } => assert!(len == 0 && bytes == [0; 64]),
            KeyRepr::Heap(_) => panic!("48 bytes are kept inline"),
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let key = MasterKey::new(&[0x5A; 48]).unwrap();
        let id = SessionId::new(&[0x5A; 32]).unwrap();
        for text in [format!("{key:?}"), format!("{id:?}")] {
            assert!(!text.contains("90"), "{text}");
            assert!(!text.to_lowercase().contains("5a"), "{text}");
        }
    }

    #[test]
    fn protocol_version_rejects_what_openssl_rejects() {
        assert_eq!(
            ProtocolVersion::new(0x0303).unwrap(),
            ProtocolVersion::TLS1_2
        );
        assert!(
            ProtocolVersion::new(0x0399).is_ok(),
            "unknown TLS versions are kept"
        );
        assert!(ProtocolVersion::new(0xFEFD).is_ok());
        assert_eq!(
            ProtocolVersion::new(0x0203).unwrap_err(),
            Error::InvalidProtocolVersion(0x0203)
        );
        assert!(ProtocolVersion::TLS1_3.is_tls13_or_later());
        assert!(!ProtocolVersion::TLS1_2.is_tls13_or_later());
        assert!(!ProtocolVersion::DTLS1_2.is_tls13_or_later());
    }

    #[test]
    fn host_names() {
        for good in ["example.com", "a", "x-1.y_2.example", &"a".repeat(63)] {
            assert!(HostName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "example.com.",
            "a..b",
            "-a.com",
            "a-.com",
            "exa mple.com",
            "127.0.0.1",
            "::1",
            &"a".repeat(64),
            &["a"; 128].join("."),
        ] {
            assert!(
                matches!(HostName::new(bad), Err(Error::InvalidHostName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn alpn_and_ticket_limits() {
        assert!(AlpnProtocol::new(b"h2").is_ok());
        assert_eq!(
            AlpnProtocol::new(b"").unwrap_err(),
            Error::InvalidAlpn { len: 0 }
        );
        assert!(AlpnProtocol::new(&[b'a'; 256]).is_err());
        assert!(Ticket::new(&[1; 65535], 7200, 9).is_ok());
        assert_eq!(
            Ticket::new(&[1; 65536], 0, 0).unwrap_err(),
            Error::InvalidTicket { len: 65536 }
        );
        assert!(Ticket::new(&[], 0, 0).is_err());
    }

    #[test]
    fn certificates_must_be_one_der_sequence() {
        assert!(CertificateDer::new(&[0x30, 0x00]).is_ok());
        assert!(CertificateDer::new(&[0x30, 0x02, 1, 2]).is_ok());
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend_from_slice(&[0; 256]);
        assert!(CertificateDer::new(&long).is_ok());
        for bad in [
            &[][..],
            &[0x31, 0x00],
            &[0x30],
            &[0x30, 0x03, 1, 2],
            &[0x30, 0x01, 1, 2],
            &[0x30, 0x80, 0, 0],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x81, 0x01, 0x00],       // BER: 1 fits the short form
            &[0x30, 0x82, 0x00, 0x81, 0x00], // BER: a leading zero byte
        ] {
            assert!(CertificateDer::new(bad).is_err(), "{bad:?}");
        }
        let err = CertificateDer::chain([&[0x30, 0x00][..], &[0x02, 0x00][..]]).unwrap_err();
        assert!(matches!(err, Error::InvalidCertificate { index: 1, .. }));
    }
}
