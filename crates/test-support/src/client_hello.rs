//! Hand-built TLS ClientHellos, for what no TLS client library sends: a TLS 1.3 hello with
//! hundreds of PSK identities, or a TLS 1.2 session id offered as a TLS 1.3 ticket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A TLS 1.3 ClientHello (TLS 1.2 allowed too) offering `identities` as PSK identities (each
/// with an obfuscated age of 0 and a 32-byte binder of zeros), an X25519 key share, and
/// `session_id` as the legacy session id; as TLS records, split at 16 KiB.
pub fn tls13_with_psks(identities: &[Vec<u8>], session_id: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[3, 3]); // legacy_version
    body.extend_from_slice(&pseudo_random(32, 1)); // random
    body.push(session_id.len() as u8);
    body.extend_from_slice(session_id);
    let suites: [u16; 7] = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030];
    u16_list(&mut body, |out| {
        for s in suites {
            out.extend_from_slice(&s.to_be_bytes());
        }
    });
    body.extend_from_slice(&[1, 0]); // compression: null
    u16_list(&mut body, |ext| {
        extension(ext, 10, |d| {
            // supported_groups: x25519, secp256r1
            u16_list(d, |l| l.extend_from_slice(&[0x00, 0x1d, 0x00, 0x17]));
        });
        extension(ext, 13, |d| {
            // signature_algorithms
            u16_list(d, |l| {
                for s in [
                    0x0403u16, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                ] {
                    l.extend_from_slice(&s.to_be_bytes());
                }
            });
        });
        extension(ext, 23, |_| {}); // extended_master_secret
        extension(ext, 43, |d| {
            // supported_versions: TLS 1.3, TLS 1.2
            d.extend_from_slice(&[4, 3, 4, 3, 3]);
        });
        extension(ext, 51, |d| {
            // key_share: one X25519 share
            u16_list(d, |l| {
                l.extend_from_slice(&[0x00, 0x1d, 0x00, 0x20]);
                l.extend_from_slice(&pseudo_random(32, 2));
            });
        });
        extension(ext, 45, |d| d.extend_from_slice(&[1, 1])); // psk_dhe_ke
        if !identities.is_empty() {
            // pre_shared_key, last
            extension(ext, 41, |d| {
                u16_list(d, |l| {
                    for id in identities {
                        l.extend_from_slice(&(id.len() as u16).to_be_bytes());
                        l.extend_from_slice(id);
                        l.extend_from_slice(&0u32.to_be_bytes());
                    }
                });
                u16_list(d, |l| {
                    for _ in identities {
                        l.push(32);
                        l.extend_from_slice(&[0u8; 32]);
                    }
                });
            });
        }
    });
    let mut message = vec![1]; // client_hello
    let len = body.len() as u32;
    message.extend_from_slice(&len.to_be_bytes()[1..]);
    message.extend_from_slice(&body);
    let mut records = Vec::new();
    for chunk in message.chunks(16 * 1024) {
        records.extend_from_slice(&[22, 3, 1]);
        records.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        records.extend_from_slice(chunk);
    }
    records
}

/// `n` identities of 32 bytes that no server issued.
pub fn random_identities(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| pseudo_random(32, 1000 + i as u64)).collect()
}

/// Sends `hello` to `addr` and waits for the server's first bytes (its ServerHello, or an
/// alert) or for it to close; returns how long after the last byte sent that took, and how
/// many bytes came back. Fails the test after `limit`.
pub fn send(addr: &str, hello: &[u8], limit: Duration) -> (Duration, usize) {
    let mut stream = TcpStream::connect(addr).expect("connecting to the server");
    stream
        .set_read_timeout(Some(limit))
        .expect("a read timeout");
    stream.write_all(hello).expect("sending the ClientHello");
    let sent = Instant::now();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    let took = sent.elapsed();
    assert!(took < limit, "no answer within {limit:?}");
    (took, n)
}

fn u16_list(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    fill(&mut inner);
    out.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    out.extend_from_slice(&inner);
}

fn extension(out: &mut Vec<u8>, kind: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(&kind.to_be_bytes());
    u16_list(out, fill);
}

/// Bytes that look random (splitmix64 from `seed` and the clock), for ids and randoms.
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ clock;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(n);
    out
}
