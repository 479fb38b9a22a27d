//! The fleet's keys: a key file of one key per line, newest first, and what each key derives.
//!
//! A line is `sesscache-key-v1 <id> <secret>`: the id is 8 hex digits (a random `u32`, written
//! into every value the key seals), the secret 64 hex digits (32 random bytes). Blank lines and
//! lines starting with `#` are skipped. The first key seals; every key opens.
//!
//! From each secret, HKDF-SHA256 derives two keys of its own: one seals values (each under a
//! subkey derived from it, see [`value`](crate::value)), one names them in the store (HMAC-SHA256 of the protocol version and
//! the session id). The file's secret is never used as it is, and never sent anywhere.
//!
//! Every copy of a secret this crate keeps (the file's text, each secret, the derived keys)
//! is wiped when dropped. ring does not wipe what it makes from them: HKDF's pseudorandom key
//! and the HMAC and ChaCha20-Poly1305 key schedules it builds for each call live in ring's own
//! structures until their memory is reused.

use std::fmt;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::Error;

/// The first word of every key line (and the version of the line's format).
pub const KEY_LINE_TAG: &str = "sesscache-key-v1";

/// HKDF's salt: the scheme's name, so that these derivations are ours alone.
const SALT: &[u8] = b"sesscache fleet tier v1";

/// One key of the ring: its id and the two keys derived from its secret.
pub(crate) struct Key {
    id: u32,
    seal: Zeroizing<[u8; 32]>,
    index: Zeroizing<[u8; 32]>,
}

impl Key {
    fn derive(id: u32, secret: &[u8; 32]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret);
        let expand = |info: &[u8]| {
            let mut out = Zeroizing::new([0u8; 32]);
            prk.expand(&[info], hkdf::HKDF_SHA256)
                .and_then(|okm| okm.fill(&mut out[..]))
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            out
        };
        Self {
            id,
            seal: expand(b"seal"),
            index: expand(b"index"),
        }
    }

    /// The key's id, as written into the values it seals.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The key that seals and opens values (ChaCha20-Poly1305).
    pub(crate) fn seal_key(&self) -> &[u8; 32] {
        &self.seal
    }

    /// The name of a session's value in the store under this key: HMAC-SHA256 of the kind
    /// of lookup that finds it (a TLS 1.2 session id, `s`, or a TLS 1.3 ticket, `t`), the
    /// protocol version, the session id context and the session id. A ticket offered to a
    /// server of another context, or a session id offered as a ticket, names another value:
    /// it can neither find nor burn this one.
    pub(crate) fn index(&self, version: u16, sid_ctx: &[u8], id: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.index[..]);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(b"name-v2");
        ctx.update(if version >= 0x0304 { b"t" } else { b"s" });
        ctx.update(&version.to_be_bytes());
        // Lengths before variable fields: no two (context, id) pairs hash the same input.
        ctx.update(&[u8::try_from(sid_ctx.len()).unwrap_or(u8::MAX)]);
        ctx.update(sid_ctx);
        ctx.update(id);
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// The keys of a key file, newest first: the first seals, all open.
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// Reads a key file. A file that its group or other users may read (or write) is
    /// refused, as ssh refuses such a private key: its secrets open every session the fleet
    /// stores.
    pub fn load(path: &Path) -> Result<Self, Error> {
        use std::io::Read as _;
        let unreadable = |source| Error::KeyFileUnreadable {
            path: path.display().to_string(),
            source,
        };
        // One open: the mode checked is that of the file read, whatever the path names
        // meanwhile.
        let mut file = std::fs::File::open(path).map_err(unreadable)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(unreadable)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(Error::KeyFileExposed {
                    path: path.display().to_string(),
                    mode: mode & 0o777,
                });
            }
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(unreadable)?;
        Self::parse(&text)
    }

    /// Parses a key file's text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut keys: Vec<Key> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| Error::KeyFile {
                line: n + 1,
                reason: reason.to_owned(),
            };
            let mut words = line.split_whitespace();
            if words.next() != Some(KEY_LINE_TAG) {
                return Err(bad(&format!("a key line starts with `{KEY_LINE_TAG}`")));
            }
            let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad(
                    "a key line has three words: the tag, the id and the secret",
                ));
            };
            let id = parse_hex::<4>(id).ok_or_else(|| bad("the id is not 8 hex digits"))?;
            let id = u32::from_be_bytes(id);
            let secret = Zeroizing::new(
                parse_hex::<32>(secret).ok_or_else(|| bad("the secret is not 64 hex digits"))?,
            );
            if keys.iter().any(|k| k.id == id) {
                return Err(bad(&format!("the id {id:08x} is used by an earlier line")));
            }
            keys.push(Key::derive(id, &secret));
        }
        if keys.is_empty() {
            return Err(Error::NoKeys);
        }
        Ok(Self { keys })
    }

    /// A new key line (`sesscache keygen`): a random id and a random secret, with its
    /// newline. Wiped when dropped.
    pub fn generate_line() -> Result<Zeroizing<String>, Error> {
        let rng = SystemRandom::new();
        let mut id = [0u8; 4];
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(&mut id).map_err(|_| Error::Random)?;
        rng.fill(&mut secret[..]).map_err(|_| Error::Random)?;
        let mut line = Zeroizing::new(String::with_capacity(96));
        line.push_str(KEY_LINE_TAG);
        line.push(' ');
        push_hex(&mut line, &id);
        line.push(' ');
        push_hex(&mut line, &secret[..]);
        line.push('\n');
        Ok(line)
    }

    /// The key that seals: the file's first.
    pub(crate) fn newest(&self) -> &Key {
        &self.keys[0]
    }

    /// Every key, newest first.
    pub(crate) fn all(&self) -> &[Key] {
        &self.keys
    }

    /// The key with this id, if the ring has it.
    pub(crate) fn by_id(&self, id: u32) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The key ids, newest first (they are not secret).
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.id).collect()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| format!("{:08x}", k.id)).collect();
        f.debug_struct("KeyRing")
            .field("ids", &ids)
            .finish_non_exhaustive()
    }
}

fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_lines_parse_and_differ() {
        let (a, b) = (
            KeyRing::generate_line().unwrap(),
            KeyRing::generate_line().unwrap(),
        );
        assert_ne!(*a, *b);
        let ring = KeyRing::parse(&format!("# fleet keys\n\n{}{}", *a, *b)).unwrap();
        assert_eq!(ring.all().len(), 2);
        assert_eq!(ring.newest().id(), ring.ids()[0]);
        assert!(ring.by_id(ring.ids()[1]).is_some());
    }

    #[test]
    fn bad_lines_name_the_line() {
        let good = KeyRing::generate_line().unwrap();
        for (text, line, words) in [
            ("", 0, "no key"),
            ("# only a comment\n", 0, "no key"),
            ("\nkey 00000001 00\n", 2, "starts with"),
            ("sesscache-key-v1 0001 00 more\n", 1, "three words"),
            ("sesscache-key-v1 0001 00\n", 1, "8 hex"),
            ("sesscache-key-v1 0001\n", 1, "three words"),
            ("sesscache-key-v1 zz000001 00\n", 1, "8 hex"),
            ("sesscache-key-v1 00000001 00\n", 1, "64 hex"),
        ] {
            let err = KeyRing::parse(text).unwrap_err().to_string();
            if line > 0 {
                assert!(err.contains(&format!("line {line}")), "{text:?}: {err}");
            }
            assert!(err.contains(words), "{text:?}: {err}");
        }
        let twice = format!("{}{}", *good, *good);
        let err = KeyRing::parse(&twice).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("earlier line"),
            "{err}"
        );
    }

    #[test]
    fn each_key_names_sessions_its_own_way() {
        let ring = KeyRing::parse(&format!(
            "{}{}",
            *KeyRing::generate_line().unwrap(),
            *KeyRing::generate_line().unwrap()
        ))
        .unwrap();
        let [a, b] = [&ring.all()[0], &ring.all()[1]];
        let name = |k: &Key, v: u16, ctx: &[u8], id: &[u8]| k.index(v, ctx, id);
        assert_eq!(name(a, 0x0303, b"c", b"id"), name(a, 0x0303, b"c", b"id"));
        assert_ne!(name(a, 0x0303, b"c", b"id"), name(b, 0x0303, b"c", b"id"));
        assert_ne!(name(a, 0x0303, b"c", b"id"), name(a, 0x0304, b"c", b"id"));
        assert_ne!(name(a, 0x0303, b"c", b"id"), name(a, 0x0303, b"c", b"ie"));
        assert_ne!(name(a, 0x0303, b"c", b"id"), name(a, 0x0303, b"d", b"id"));
        assert_ne!(name(a, 0x0303, b"c", b"id"), name(a, 0x0303, b"", b"cid"));
        assert_ne!(a.seal_key(), b.seal_key());
    }

    #[test]
    fn debug_shows_ids_only() {
        let line = KeyRing::generate_line().unwrap();
        let secret = line.split_whitespace().nth(2).unwrap().to_owned();
        let ring = KeyRing::parse(&line).unwrap();
        let shown = format!("{ring:?}");
        assert!(!shown.contains(&secret));
        assert!(shown.contains(&format!("{:08x}", ring.ids()[0])));
    }
}
