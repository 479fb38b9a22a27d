//! From bytes to a [`ClientHello`]: one handshake message, or the TLS records a server read
//! from the wire, the message's fragments joined across them.

use crate::{ClientHello, Error};

/// The longest record [`parse_records`] accepts: 2^14 + 256 bytes. A plaintext record holds
/// at most 2^14 (RFC 8446, 5.1); OpenSSL refuses a longer one, rustls allows up to
/// 2^14 + 2047.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 256;

/// The longest ClientHello body (the handshake message without its 4-byte header) either
/// function accepts: rustls's limit on any handshake message, 64 KiB - 1.
pub const MAX_CLIENT_HELLO_LEN: usize = 0xffff;

/// `handshake` (RFC 8446, 5.1).
const HANDSHAKE: u8 = 22;
/// `client_hello` (RFC 8446, 4).
const CLIENT_HELLO: u8 = 1;
/// Content type, version, length.
const RECORD_HEADER_LEN: usize = 5;
/// Type, 3-byte length.
const HANDSHAKE_HEADER_LEN: usize = 4;

/// Parses one handshake message: type 1 (ClientHello), a 3-byte length, and exactly that
/// many bytes of body.
///
/// ```
/// let err = sesscache_hello::parse_handshake(&[2, 0, 0, 0]).unwrap_err();
/// assert_eq!(err.to_string(), "handshake message of type 2, not a ClientHello (1)");
/// ```
pub fn parse_handshake(message: &[u8]) -> Result<ClientHello, Error> {
    let mut header = [0; HANDSHAKE_HEADER_LEN];
    let have = message.len().min(HANDSHAKE_HEADER_LEN);
    header[..have].copy_from_slice(&message[..have]);
    if have > 0 && header[0] != CLIENT_HELLO {
        return Err(Error::NotClientHello(header[0]));
    }
    if have < HANDSHAKE_HEADER_LEN {
        return Err(Error::Truncated {
            have,
            need: HANDSHAKE_HEADER_LEN,
        });
    }
    let len = body_len(header)?;
    let body = &message[HANDSHAKE_HEADER_LEN..];
    if body.len() < len {
        return Err(Error::Truncated {
            have: message.len(),
            need: HANDSHAKE_HEADER_LEN + len,
        });
    }
    if body.len() > len {
        return Err(Error::TrailingBytes {
            container: "the handshake message",
            count: body.len() - len,
        });
    }
    ClientHello::parse_body(body.into())
}

/// Parses the ClientHello at the start of `bytes`, what a server read from a new
/// connection: TLS records (content type 22, a version `0x03xx`, a 2-byte length, the
/// fragment), the handshake message's fragments joined across as many records as it spans.
///
/// `Ok(None)`: more bytes are needed (nothing wrong so far). An error as soon as the bytes
/// read so far show one: a record of another type before the ClientHello ends, a record
/// over [`MAX_RECORD_LEN`] or empty, a handshake message that is not a ClientHello or whose
/// body is over [`MAX_CLIENT_HELLO_LEN`], bytes after the ClientHello in the record that
/// ends it, or any error [`parse_handshake`] finds in the message. Whatever follows that
/// record (early data, a `change_cipher_spec`) is not read.
///
/// The bytes are a connection's first flight: a second ClientHello, sent after a
/// HelloRetryRequest, usually follows a `change_cipher_spec` record (RFC 8446, D.4), which
/// is an error here.
///
/// Allocates only the body, once it is complete; the work is linear in `bytes`.
pub fn parse_records(bytes: &[u8]) -> Result<Option<ClientHello>, Error> {
    let Some(len) = join(bytes, |_| ())? else {
        return Ok(None);
    };
    let mut body = Vec::with_capacity(len);
    join(bytes, |fragment| body.extend_from_slice(fragment))?;
    ClientHello::parse_body(body.into_boxed_slice()).map(Some)
}

/// Walks the records at the start of `bytes`, giving `body` each piece of the ClientHello's
/// body in order. The body's length once it is complete, `None` while it is not.
fn join(bytes: &[u8], mut body: impl FnMut(&[u8])) -> Result<Option<usize>, Error> {
    let mut rest = bytes;
    let mut header = [0; HANDSHAKE_HEADER_LEN];
    let mut header_len = 0;
    let mut need = None;
    let mut have = 0;
    loop {
        let Some(&content_type) = rest.first() else {
            return Ok(None);
        };
        if content_type != HANDSHAKE {
            return Err(Error::ContentType(content_type));
        }
        let [_, major, minor, hi, lo, ..] = *rest else {
            if let [_, major, minor, ..] = *rest {
                check_version(major, minor)?;
            }
            return Ok(None);
        };
        check_version(major, minor)?;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return Err(Error::EmptyRecord);
        }
        if len > MAX_RECORD_LEN {
            return Err(Error::RecordTooLong(len));
        }
        let record_end = RECORD_HEADER_LEN + len;
        let mut fragment = rest
            .get(RECORD_HEADER_LEN..record_end.min(rest.len()))
            .unwrap_or_default();
        while header_len < HANDSHAKE_HEADER_LEN {
            let Some((&b, tail)) = fragment.split_first() else {
                break;
            };
            header[header_len] = b;
            header_len += 1;
            fragment = tail;
            if header[0] != CLIENT_HELLO {
                return Err(Error::NotClientHello(header[0]));
            }
            if header_len == HANDSHAKE_HEADER_LEN {
                need = Some(body_len(header)?);
            }
        }
        if let Some(need) = need {
            let piece = fragment.len().min(need - have);
            body(&fragment[..piece]);
            have += piece;
            if have == need {
                // The ClientHello ends at a record boundary (RFC 8446, 5.1).
                let read = (rest.len().min(record_end) - RECORD_HEADER_LEN) - fragment.len();
                let count = len - read - piece;
                if count > 0 {
                    return Err(Error::TrailingBytes {
                        container: "the record that ends the ClientHello",
                        count,
                    });
                }
                return Ok(Some(need));
            }
        }
        if rest.len() < record_end {
            return Ok(None);
        }
        rest = &rest[record_end..];
    }
}

fn check_version(major: u8, minor: u8) -> Result<(), Error> {
    match major {
        3 => Ok(()),
        _ => Err(Error::RecordVersion(u16::from_be_bytes([major, minor]))),
    }
}

/// The body length a handshake header gives, if within [`MAX_CLIENT_HELLO_LEN`].
fn body_len([_, a, b, c]: [u8; HANDSHAKE_HEADER_LEN]) -> Result<usize, Error> {
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    match len <= MAX_CLIENT_HELLO_LEN {
        true => Ok(len),
        false => Err(Error::TooLong(len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{message, record, records, Hello};

    #[test]
    fn parse_handshake_takes_exactly_one_client_hello() {
        let whole = Hello::tls13().message();
        let n = whole.len();
        let cases: [(Vec<u8>, Error); 7] = [
            (vec![], Error::Truncated { have: 0, need: 4 }),
            (vec![2], Error::NotClientHello(2)),
            (vec![1, 0, 0], Error::Truncated { have: 3, need: 4 }),
            (vec![1, 1, 0, 0, 3, 3], Error::TooLong(0x10000)),
            (
                whole[..n - 1].to_vec(),
                Error::Truncated {
                    have: n - 1,
                    need: n,
                },
            ),
            (
                [&whole[..], &[0, 0]].concat(),
                Error::TrailingBytes {
                    container: "the handshake message",
                    count: 2,
                },
            ),
            (
                vec![1, 0, 0, 0],
                Error::Overrun {
                    field: "legacy_version",
                    container: "the ClientHello",
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(parse_handshake(&bytes), Err(expected), "{bytes:02x?}");
        }
        let hello = parse_handshake(&whole).unwrap();
        assert_eq!(hello.server_name(), Some("example.com"));
    }

    #[test]
    fn joins_fragments_and_asks_for_more_until_the_last_byte() {
        let hello = Hello::tls13().psk(&[(&[1; 100], 7)]);
        let expected = parse_handshake(&hello.message()).unwrap();
        for size in [1, 3, 4, 5, 50, 16384] {
            let bytes = hello.records(size);
            for end in 0..bytes.len() {
                assert_eq!(parse_records(&bytes[..end]), Ok(None), "{size} {end}");
            }
            assert_eq!(parse_records(&bytes).as_ref(), Ok(&Some(expected.clone())));
            // What follows the ClientHello's last record is not read.
            for after in [record(20, &[1]), record(23, &[0xff; 40]), b"junk".to_vec()] {
                let more = [&bytes[..], &after].concat();
                assert_eq!(parse_records(&more), Ok(Some(expected.clone())));
            }
        }
    }

    #[test]
    fn records_up_to_the_limits_are_accepted() {
        // A padding extension (21) that brings the body to exactly the longest allowed.
        let short = Hello::tls13().body().len();
        let pad = MAX_CLIENT_HELLO_LEN - short - 4;
        let hello = Hello::tls13().ext(21, vec![0; pad]);
        assert_eq!(hello.body().len(), MAX_CLIENT_HELLO_LEN);
        let bytes = hello.records(MAX_RECORD_LEN);
        assert_eq!(bytes[3..5], (MAX_RECORD_LEN as u16).to_be_bytes());
        let parsed = parse_records(&bytes).unwrap().unwrap();
        assert_eq!(parsed.server_name(), Some("example.com"));
        assert!(parse_handshake(&hello.message()).is_ok());
    }

    #[test]
    fn fails_as_soon_as_the_bytes_show_an_error() {
        let hello = Hello::tls12().message();
        let half = &hello[..hello.len() / 2];
        let mut too_long_record = record(22, &hello);
        // A record one byte longer than the ClientHello, that byte not arrived yet.
        too_long_record[4] += 1;
        let cases: [(Vec<u8>, Error); 12] = [
            (vec![23], Error::ContentType(23)),
            (record(21, &[2, 40]), Error::ContentType(21)),
            (
                [record(20, &[1]), records(&hello, 100)].concat(),
                Error::ContentType(20),
            ),
            (
                [record(22, half), record(23, &[0; 5])].concat(),
                Error::ContentType(23),
            ),
            (b"GET / HTTP/1.1\r\n".to_vec(), Error::ContentType(b'G')),
            (vec![22, 2, 0], Error::RecordVersion(0x0200)),
            (vec![22, 3, 1, 0, 0], Error::EmptyRecord),
            (vec![22, 3, 1, 0x41, 0x01], Error::RecordTooLong(16641)),
            (vec![22, 3, 1, 0, 40, 2], Error::NotClientHello(2)),
            (
                [record(22, &[1, 1]), record(22, &[0, 0])].concat(),
                Error::TooLong(0x10000),
            ),
            (
                too_long_record,
                Error::TrailingBytes {
                    container: "the record that ends the ClientHello",
                    count: 1,
                },
            ),
            (
                records(&message(&[3, 3, 0]), 2),
                Error::Overrun {
                    field: "random",
                    container: "the ClientHello",
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(parse_records(&bytes), Err(expected), "{bytes:02x?}");
        }
        for incomplete in [&[22, 3][..], &[22, 3, 1, 0x41, 0x00], &[22, 3, 1, 0, 40, 1]] {
            assert_eq!(parse_records(incomplete), Ok(None), "{incomplete:02x?}");
        }
    }
}
