//! The store's value format, version 1.
//!
//! A sealed session:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | format version, `0x01` |
//! | 4 | key id, big-endian: the key of the ring that sealed it |
//! | 12 | nonce, random |
//! | rest | ChaCha20-Poly1305 ciphertext of the plaintext below, then its 16-byte tag |
//!
//! The associated data (authenticated, not stored) is `"sesscache-v1"`, the format version,
//! the key id, the value's name in the store (32 bytes) and the session id context (one length
//! byte, then its bytes). A value moved to another name, or read by a server with another
//! session id context, does not open.
//!
//! The plaintext: the session in OpenSSL's DER form (`i2d_SSL_SESSION`, two length bytes
//! before it), then one byte saying whether application bytes follow (`0` or `1`) and, if
//! so, their length (four bytes) and the bytes ([`AppBytes`]: rustls's value).
//!
//! A used TLS 1.3 ticket is the one byte `0x00` (a tombstone), kept until the ticket would
//! have expired, so that it cannot be claimed again, nor written again by a late writer.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::rand::{SecureRandom, SystemRandom};
use session_core::{AppBytes, Session, SidCtx, UnixTime};
use zeroize::Zeroizing;

use crate::keys::{Key, KeyRing};

/// The format version byte of a sealed value.
pub const FORMAT_VERSION: u8 = 1;

/// The value of a used TLS 1.3 ticket.
pub const TOMBSTONE: &[u8] = &[0];

const HEADER: usize = 1 + 4 + 12;
const TAG: usize = 16;

/// Why a value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not a value of this format (too short, another version byte).
    Malformed,
    /// Sealed under a key the ring does not have (dropped from the key file, or never in it).
    UnknownKey,
    /// The AEAD refused it: changed, moved, or sealed for another session id context.
    Forged,
    /// It opened, but what is inside is not a session.
    BadSession,
}

/// What the store said about a name.
pub(crate) enum Stored {
    /// A sealed session.
    Sealed(Vec<u8>),
    /// A used ticket.
    Tombstone,
}

impl Stored {
    pub(crate) fn classify(value: Vec<u8>) -> Self {
        if value == TOMBSTONE {
            Self::Tombstone
        } else {
            Self::Sealed(value)
        }
    }
}

fn aad(key_id: u32, name: &[u8; 32], sid_ctx: &SidCtx) -> Vec<u8> {
    let ctx = sid_ctx.as_bytes();
    let mut aad = Vec::with_capacity(12 + 1 + 4 + 32 + 1 + ctx.len());
    aad.extend_from_slice(b"sesscache-v1");
    aad.push(FORMAT_VERSION);
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad.extend_from_slice(name);
    aad.push(ctx.len() as u8);
    aad.extend_from_slice(ctx);
    aad
}

fn aead_key(key: &Key) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, key.seal_key())
            .expect("32 bytes is ChaCha20-Poly1305's key length"),
    )
}

/// The plaintext of a session: its DER form and its application bytes, if any. `None` for a
/// session OpenSSL's form cannot hold.
pub(crate) fn plaintext(session: &Session) -> Option<Zeroizing<Vec<u8>>> {
    let der = session_der::to_der(session).ok()?;
    let der_len = u16::try_from(der.len()).ok()?;
    let app = session
        .app_data()
        .and_then(|data| data.downcast_ref::<AppBytes>());
    let mut out = Zeroizing::new(Vec::with_capacity(
        2 + der.len() + 5 + app.map_or(0, |a| a.as_bytes().len()) + TAG,
    ));
    out.extend_from_slice(&der_len.to_be_bytes());
    out.extend_from_slice(&der);
    match app {
        Some(app) => {
            let len = u32::try_from(app.as_bytes().len()).ok()?;
            out.push(1);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(app.as_bytes());
        }
        None => out.push(0),
    }
    Some(out)
}

/// Seals a plaintext under the ring's newest key, for the value named `name`.
pub(crate) fn seal(
    ring: &KeyRing,
    name: &[u8; 32],
    sid_ctx: &SidCtx,
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let key = ring.newest();
    let mut nonce = [0u8; 12];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG));
    body.extend_from_slice(plaintext);
    aead_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(key.id(), name, sid_ctx)),
            &mut *body,
        )
        .ok()?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&key.id().to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Some(out)
}

/// Opens a value named `name` for a server whose session id context is `sid_ctx`, and
/// rebuilds the session (its time and timeout as sealed; `now` only fills a missing time).
pub(crate) fn open(
    ring: &KeyRing,
    name: &[u8; 32],
    sid_ctx: &SidCtx,
    value: &[u8],
    now: UnixTime,
) -> Result<Session, OpenError> {
    if value.len() < HEADER + TAG || value[0] != FORMAT_VERSION {
        return Err(OpenError::Malformed);
    }
    let key_id = u32::from_be_bytes(value[1..5].try_into().expect("4 bytes"));
    let key = ring.by_id(key_id).ok_or(OpenError::UnknownKey)?;
    let nonce: [u8; 12] = value[5..HEADER].try_into().expect("12 bytes");
    let mut body = Zeroizing::new(value[HEADER..].to_vec());
    let plain = aead_key(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(key_id, name, sid_ctx)),
            &mut body,
        )
        .map_err(|_| OpenError::Forged)?;
    decode_plaintext(plain, now).ok_or(OpenError::BadSession)
}

fn decode_plaintext(plain: &[u8], now: UnixTime) -> Option<Session> {
    let der_len = usize::from(u16::from_be_bytes(plain.get(..2)?.try_into().ok()?));
    let der = plain.get(2..2 + der_len)?;
    let rest = &plain[2 + der_len..];
    let session = session_der::from_der_at(der, now).ok()?;
    match rest {
        [0] => Some(session),
        [1, len @ ..] if len.len() >= 4 => {
            let n = u32::from_be_bytes(len[..4].try_into().ok()?) as usize;
            let bytes = &len[4..];
            if bytes.len() != n {
                return None;
            }
            let app = AppBytes::new(bytes.to_vec());
            Some(
                session
                    .to_builder()
                    .app_data(Some(std::sync::Arc::new(app)))
                    .build(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use session_core::{MasterKey, ProtocolVersion, SessionBuilder, SessionId};

    use super::*;

    fn ring(lines: &[&str]) -> KeyRing {
        KeyRing::parse(&lines.concat()).unwrap()
    }

    fn line() -> String {
        KeyRing::generate_line().unwrap().to_string()
    }

    fn session(app: Option<&[u8]>) -> Session {
        SessionBuilder::new(ProtocolVersion::TLS1_3, 1_700_000_000)
            .id(SessionId::new(&[9; 32]).unwrap())
            .sid_ctx(SidCtx::new(b"ctx").unwrap())
            .master_key(MasterKey::new(&[0x5a; 48]).unwrap())
            .timeout(300)
            .app_data(app.map(|a| Arc::new(AppBytes::new(a.to_vec())) as _))
            .build()
    }

    #[test]
    fn a_sealed_session_opens_with_its_application_bytes() {
        let (k1, k2) = (line(), line());
        let old = ring(&[&k1]);
        let rotated = ring(&[&k2, &k1]);
        let name = [3u8; 32];
        let ctx = SidCtx::new(b"ctx").unwrap();
        for app in [None, Some(&b"rustls value"[..])] {
            let s = session(app);
            let plain = plaintext(&s).unwrap();
            let sealed = seal(&old, &name, &ctx, &plain).unwrap();
            assert!(
                !sealed.windows(48).any(|w| w == [0x5a; 48]),
                "the secret is not in the clear"
            );
            let back = open(&rotated, &name, &ctx, &sealed, 0).unwrap();
            assert_eq!(back.master_key(), s.master_key());
            assert_eq!(back.id(), s.id());
            assert_eq!(back.time(), s.time());
            assert_eq!(back.timeout(), s.timeout());
            let bytes = |s: &Session| {
                s.app_data()
                    .and_then(|d| d.downcast_ref::<AppBytes>())
                    .map(|a| a.as_bytes().to_vec())
            };
            assert_eq!(bytes(&back), app.map(<[u8]>::to_vec));
        }
    }

    #[test]
    fn what_does_not_open_says_why() {
        let (k1, k2) = (line(), line());
        let (one, other) = (ring(&[&k1]), ring(&[&k2]));
        let name = [3u8; 32];
        let ctx = SidCtx::new(b"ctx").unwrap();
        let sealed = seal(&one, &name, &ctx, &plaintext(&session(None)).unwrap()).unwrap();
        let open_with = |ring: &KeyRing, name: &[u8; 32], ctx: &SidCtx, v: &[u8]| {
            open(ring, name, ctx, v, 0).map(|_| ())
        };
        assert_eq!(
            open_with(&other, &name, &ctx, &sealed),
            Err(OpenError::UnknownKey)
        );
        assert_eq!(
            open_with(&one, &[4; 32], &ctx, &sealed),
            Err(OpenError::Forged),
            "moved to another name"
        );
        assert_eq!(
            open_with(&one, &name, &SidCtx::new(b"other").unwrap(), &sealed),
            Err(OpenError::Forged),
            "another context"
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            open_with(&one, &name, &ctx, &flipped),
            Err(OpenError::Forged)
        );
        assert_eq!(
            open_with(&one, &name, &ctx, b"junk"),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            open_with(&one, &name, &ctx, TOMBSTONE),
            Err(OpenError::Malformed)
        );
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert_eq!(open_with(&one, &name, &ctx, &v2), Err(OpenError::Malformed));
        // A value that opens but holds no session.
        let junk = seal(&one, &name, &ctx, b"\x00\x03abc\x00").unwrap();
        assert_eq!(
            open_with(&one, &name, &ctx, &junk),
            Err(OpenError::BadSession)
        );
        for cut in 0..sealed.len() {
            assert!(open_with(&one, &name, &ctx, &sealed[..cut]).is_err());
        }
    }
}
