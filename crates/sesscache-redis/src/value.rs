//! The store's value format: version 2, which every seal writes, and version 1, which still
//! opens (values a server sealed before its upgrade, during a rolling upgrade or a rotation).
//!
//! A sealed session, by the format version in its first byte:
//!
//! | bytes | version 2 | version 1 |
//! |---|---|---|
//! | 1 | `0x02` | `0x01` |
//! | 4 | key id, big-endian: the key of the ring that sealed it | the same |
//! | 32 or 12 | salt, 32 random bytes | nonce, 12 random bytes |
//! | rest | ChaCha20-Poly1305 ciphertext of the plaintext below, then its 16-byte tag | the same |
//!
//! Version 2 seals each value under a subkey of its own: HKDF-SHA256 with the key's seal key as
//! input key material, the value's salt as salt and `"sesscache value v2"` as info, 32 bytes.
//! Each subkey seals exactly one value, so its nonce is fixed (all zero). Subkeys repeat only
//! if two 256-bit random salts do, which is expected after about 2^128 values: no practical
//! limit on the values one key seals.
//!
//! Version 1 seals under the key's seal key itself with a random 96-bit nonce: after about 2^32
//! values under one key, a repeated nonce (which gives away the XOR of two plaintexts and lets
//! values be forged under that nonce) becomes a real risk.
//!
//! The associated data (authenticated, not stored) is a label (`"sesscache-v2"` or
//! `"sesscache-v1"`), the format version, the key id, the value's name in the store (32 bytes)
//! and the session id context (one length byte, then its bytes). A value moved to another name,
//! or read by a server with another session id context, does not open; nor does a version 2
//! value with its salt changed, which derives another subkey.
//!
//! The plaintext: the session in OpenSSL's DER form (`i2d_SSL_SESSION`, two length bytes
//! before it), then one byte saying whether application bytes follow (`0` or `1`) and, if
//! so, their length (four bytes) and the bytes ([`AppBytes`]: rustls's value).
//!
//! A used TLS 1.3 ticket is the one byte `0x00` (a tombstone), kept until the ticket would
//! have expired, so that it cannot be claimed again, nor written again by a late writer.
//!
//! The subkeys, and the plaintexts while this module holds them, are wiped when dropped. ring's
//! own state is not: the HKDF pseudorandom key it extracts for each value, and the ChaCha20 key
//! schedule it makes for each seal and open.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use session_core::{AppBytes, Session, SidCtx, UnixTime};
use zeroize::Zeroizing;

use crate::keys::{Key, KeyRing};

/// The format version byte of the values this crate seals (it opens version 1 too).
pub const FORMAT_VERSION: u8 = V2;

/// The value of a used TLS 1.3 ticket.
pub const TOMBSTONE: &[u8] = &[0];

const V1: u8 = 1;
const V2: u8 = 2;
/// Version 1's header: version, key id, nonce.
const V1_HEADER: usize = 1 + 4 + 12;
/// Version 2's header: version, key id, salt.
const V2_HEADER: usize = 1 + 4 + SALT;
/// A version 2 value's salt.
const SALT: usize = 32;
/// HKDF's info for a version 2 value's subkey.
const V2_INFO: &[u8] = b"sesscache value v2";
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

/// The associated data of a value of format `version`.
fn aad(version: u8, key_id: u32, name: &[u8; 32], sid_ctx: &SidCtx) -> Vec<u8> {
    let ctx = sid_ctx.as_bytes();
    let label: &[u8; 12] = if version == V1 {
        b"sesscache-v1"
    } else {
        b"sesscache-v2"
    };
    let mut aad = Vec::with_capacity(12 + 1 + 4 + 32 + 1 + ctx.len());
    aad.extend_from_slice(label);
    aad.push(version);
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad.extend_from_slice(name);
    aad.push(ctx.len() as u8);
    aad.extend_from_slice(ctx);
    aad
}

fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, key)
            .expect("32 bytes is ChaCha20-Poly1305's key length"),
    )
}

/// A version 2 value's own key: HKDF-SHA256 of the ring key's seal key, under the value's
/// salt.
fn subkey(key: &Key, salt: &[u8; SALT]) -> Zeroizing<[u8; 32]> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(key.seal_key());
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(&[V2_INFO], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The nonce of every version 2 value: its subkey seals nothing else.
const V2_NONCE: [u8; 12] = [0; 12];

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

/// Seals a plaintext under the ring's newest key, for the value named `name`, in format
/// version 2.
pub(crate) fn seal(
    ring: &KeyRing,
    name: &[u8; 32],
    sid_ctx: &SidCtx,
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let key = ring.newest();
    let mut salt = [0u8; SALT];
    SystemRandom::new().fill(&mut salt).ok()?;
    let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG));
    body.extend_from_slice(plaintext);
    aead_key(&subkey(key, &salt))
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(V2_NONCE),
            Aad::from(aad(V2, key.id(), name, sid_ctx)),
            &mut *body,
        )
        .ok()?;
    let mut out = Vec::with_capacity(V2_HEADER + body.len());
    out.push(V2);
    out.extend_from_slice(&key.id().to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&body);
    Some(out)
}

/// Seals as servers did before format version 2: under the key's seal key itself, with a
/// random nonce.
#[cfg(test)]
fn seal_v1(ring: &KeyRing, name: &[u8; 32], sid_ctx: &SidCtx, plaintext: &[u8]) -> Option<Vec<u8>> {
    let key = ring.newest();
    let mut nonce = [0u8; 12];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG));
    body.extend_from_slice(plaintext);
    aead_key(key.seal_key())
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(V1, key.id(), name, sid_ctx)),
            &mut *body,
        )
        .ok()?;
    let mut out = Vec::with_capacity(V1_HEADER + body.len());
    out.push(V1);
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
    let header = match value.first() {
        Some(&V1) => V1_HEADER,
        Some(&V2) => V2_HEADER,
        _ => return Err(OpenError::Malformed),
    };
    if value.len() < header + TAG {
        return Err(OpenError::Malformed);
    }
    let version = value[0];
    let key_id = u32::from_be_bytes(value[1..5].try_into().expect("4 bytes"));
    let key = ring.by_id(key_id).ok_or(OpenError::UnknownKey)?;
    let (aead, nonce) = if version == V1 {
        let nonce: [u8; 12] = value[5..header].try_into().expect("12 bytes");
        (aead_key(key.seal_key()), nonce)
    } else {
        let salt: &[u8; SALT] = value[5..header].try_into().expect("32 bytes");
        (aead_key(&subkey(key, salt)), V2_NONCE)
    };
    let mut body = Zeroizing::new(value[header..].to_vec());
    let plain = aead
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(version, key_id, name, sid_ctx)),
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
        for version in [0, 3, 0xff] {
            let mut unknown = sealed.clone();
            unknown[0] = version;
            assert_eq!(
                open_with(&one, &name, &ctx, &unknown),
                Err(OpenError::Malformed),
                "format version {version}"
            );
        }
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

    /// The application bytes a session carries.
    fn app_bytes(s: &Session) -> Option<Vec<u8>> {
        s.app_data()
            .and_then(|d| d.downcast_ref::<AppBytes>())
            .map(|a| a.as_bytes().to_vec())
    }

    #[test]
    fn seal_writes_version_2_and_it_round_trips() {
        let r = ring(&[&line()]);
        let name = [3u8; 32];
        let ctx = SidCtx::new(b"ctx").unwrap();
        for app in [None, Some(&b"rustls value"[..])] {
            let s = session(app);
            let plain = plaintext(&s).unwrap();
            let sealed = seal(&r, &name, &ctx, &plain).unwrap();
            assert_eq!(sealed[0], 2);
            assert_eq!(FORMAT_VERSION, 2);
            assert_eq!(sealed[1..5], r.newest().id().to_be_bytes());
            assert_eq!(sealed.len(), 1 + 4 + 32 + plain.len() + 16);
            let back = open(&r, &name, &ctx, &sealed, 0).unwrap();
            assert_eq!(back.master_key(), s.master_key());
            assert_eq!(back.id(), s.id());
            assert_eq!(back.time(), s.time());
            assert_eq!(back.timeout(), s.timeout());
            assert_eq!(app_bytes(&back), app.map(<[u8]>::to_vec));
        }
    }

    #[test]
    fn a_version_1_value_still_opens() {
        let (k1, k2) = (line(), line());
        let (old, rotated) = (ring(&[&k1]), ring(&[&k2, &k1]));
        let name = [3u8; 32];
        let ctx = SidCtx::new(b"ctx").unwrap();
        for app in [None, Some(&b"rustls value"[..])] {
            let s = session(app);
            let sealed = seal_v1(&old, &name, &ctx, &plaintext(&s).unwrap()).unwrap();
            assert_eq!(sealed[0], 1);
            for r in [&old, &rotated] {
                let back = open(r, &name, &ctx, &sealed, 0).unwrap();
                assert_eq!(back.master_key(), s.master_key());
                assert_eq!(back.id(), s.id());
                assert_eq!(app_bytes(&back), app.map(<[u8]>::to_vec));
            }
            // Bound to its format: relabelled as version 2, it does not open.
            let mut relabelled = sealed.clone();
            relabelled[0] = 2;
            assert!(open(&old, &name, &ctx, &relabelled, 0).is_err());
        }
    }

    #[test]
    fn a_change_anywhere_in_a_version_2_value_fails() {
        let (k1, k2) = (line(), line());
        // Two keys, so that a changed key id can also name another key of the ring.
        let r = ring(&[&k1, &k2]);
        let name = [3u8; 32];
        let ctx = SidCtx::new(b"ctx").unwrap();
        let sealed = seal(&r, &name, &ctx, &plaintext(&session(Some(b"app"))).unwrap()).unwrap();
        let regions = [
            ("version", 0..1),
            ("key id", 1..5),
            ("salt", 5..37),
            ("ciphertext", 37..sealed.len() - 16),
            ("tag", sealed.len() - 16..sealed.len()),
        ];
        for (region, range) in regions {
            for i in range {
                for bit in 0..8 {
                    let mut changed = sealed.clone();
                    changed[i] ^= 1 << bit;
                    assert!(
                        open(&r, &name, &ctx, &changed, 0).is_err(),
                        "{region}: byte {i}, bit {bit}"
                    );
                }
            }
        }
        let mut other_key = sealed.clone();
        other_key[1..5].copy_from_slice(&r.ids()[1].to_be_bytes());
        assert_eq!(
            open(&r, &name, &ctx, &other_key, 0).map(|_| ()),
            Err(OpenError::Forged),
            "another key of the ring"
        );
        let mut as_v1 = sealed.clone();
        as_v1[0] = 1;
        assert_eq!(
            open(&r, &name, &ctx, &as_v1, 0).map(|_| ()),
            Err(OpenError::Forged),
            "read as version 1"
        );
    }

    #[test]
    fn two_seals_of_one_plaintext_differ() {
        let r = ring(&[&line()]);
        let name = [3u8; 32];
        let ctx = SidCtx::new(b"ctx").unwrap();
        let plain = plaintext(&session(None)).unwrap();
        let a = seal(&r, &name, &ctx, &plain).unwrap();
        let b = seal(&r, &name, &ctx, &plain).unwrap();
        assert_eq!(a[..5], b[..5], "version and key id");
        assert_ne!(a[5..37], b[5..37], "the salt");
        assert_ne!(a[37..], b[37..], "the ciphertext and tag");
        assert!(open(&r, &name, &ctx, &a, 0).is_ok() && open(&r, &name, &ctx, &b, 0).is_ok());
    }

    #[test]
    fn a_truncated_value_of_either_version_fails() {
        let r = ring(&[&line()]);
        let name = [3u8; 32];
        let ctx = SidCtx::new(b"ctx").unwrap();
        let plain = plaintext(&session(Some(b"app"))).unwrap();
        for sealed in [
            seal(&r, &name, &ctx, &plain).unwrap(),
            seal_v1(&r, &name, &ctx, &plain).unwrap(),
        ] {
            assert!(open(&r, &name, &ctx, &sealed, 0).is_ok());
            for cut in 0..sealed.len() {
                assert!(
                    open(&r, &name, &ctx, &sealed[..cut], 0).is_err(),
                    "version {}, cut at {cut}",
                    sealed[0]
                );
            }
        }
    }
}
