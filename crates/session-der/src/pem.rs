//! The PEM form (`PEM_write_bio_SSL_SESSION`), and telling PEM from DER.

use pem_rfc7468::LineEnding;
use session_core::{Clock, Session, SessionData, SystemClock, UnixTime};
use zeroize::Zeroizing;

use crate::{from_der_at, to_der, DecodeError, EncodeError};

/// The PEM label of a session, as OpenSSL writes it.
pub const PEM_LABEL: &str = "SSL SESSION PARAMETERS";

/// The two forms a session is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Binary DER (`openssl sess_id -outform DER`).
    Der,
    /// PEM, labelled `SSL SESSION PARAMETERS` (what `openssl s_client -sess_out` writes).
    Pem,
}

impl Format {
    /// Tells the forms apart: PEM is text with a line that starts `-----BEGIN `, before which
    /// there is only text (what `openssl sess_id -text` prints, say), white space and a
    /// byte-order mark. A DER session is not text: its SEQUENCE's length or its first
    /// field's tag is a byte that no text has.
    pub fn detect(bytes: &[u8]) -> Self {
        if is_pem(bytes) {
            Self::Pem
        } else {
            Self::Der
        }
    }
}

/// The UTF-8 byte-order mark, which a file saved by some editors starts with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether `bytes` is text with a line that starts `-----BEGIN `: before that line, only
/// printable ASCII, white space and a byte-order mark at the very start.
fn is_pem(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"-----BEGIN ") {
            return true;
        }
        if !line
            .iter()
            .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        {
            return false;
        }
    }
    false
}

/// The PEM blocks in `text`, as (label, the block from its `-----BEGIN` line through its
/// `-----END` line), in order; text between and around them is skipped, as OpenSSL's PEM
/// reader skips it.
fn blocks(text: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || loop {
        let begin = find_line(rest, b"-----BEGIN ")?;
        let block = &rest[begin..];
        let first = block.split(|&b| b == b'\n').next().unwrap_or_default();
        let label = first
            .strip_prefix(b"-----BEGIN ")
            .and_then(|l| l.trim_ascii_end().strip_suffix(b"-----"))
            .unwrap_or_default();
        let mut end_line = b"-----END ".to_vec();
        end_line.extend_from_slice(label);
        end_line.extend_from_slice(b"-----");
        match find_line(block, &end_line) {
            Some(end) => {
                let after = block[end..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(block.len(), |n| end + n + 1);
                rest = &block[after..];
                return Some((label, &block[..after]));
            }
            // No end: not a block; look for one further on.
            None => rest = &block[first.len().min(block.len())..],
        }
    })
}

/// The offset of the first line of `text` that starts with `prefix`.
fn find_line(text: &[u8], prefix: &[u8]) -> Option<usize> {
    let mut at = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(prefix) {
            return Some(at);
        }
        at += line.len();
    }
    None
}

/// Encodes a session in PEM (`PEM_write_bio_SSL_SESSION`): 64-column base64 of
/// [`to_der`]'s bytes, `\n` line endings. The text holds the secret and zeroizes itself.
#[doc(alias = "PEM_write_bio_SSL_SESSION")]
pub fn to_pem(session: &SessionData) -> Result<Zeroizing<String>, EncodeError> {
    let der = to_der(session)?;
    let pem_error = |e: pem_rfc7468::Error| EncodeError::Der {
        field: "PEM",
        detail: e.to_string(),
    };
    let len = pem_rfc7468::encoded_len(PEM_LABEL, LineEnding::LF, &der).map_err(pem_error)?;
    let mut buf = Zeroizing::new(vec![0u8; len]);
    let written = pem_rfc7468::encode(PEM_LABEL, LineEnding::LF, &der, &mut buf)
        .map_err(pem_error)?
        .len();
    buf.truncate(written);
    let text = String::from_utf8(std::mem::take(&mut *buf)).map_err(|_| EncodeError::Der {
        field: "PEM",
        detail: "the encoder wrote non-ASCII".to_owned(),
    })?;
    Ok(Zeroizing::new(text))
}

/// Decodes a session from PEM (`PEM_read_bio_SSL_SESSION`). A session without a time gets
/// the system clock's.
#[doc(alias = "PEM_read_bio_SSL_SESSION")]
pub fn from_pem(pem: &[u8]) -> Result<Session, DecodeError> {
    from_pem_at(pem, SystemClock.now())
}

/// [`from_pem`] with the time a session without one gets given.
///
/// Reads as OpenSSL's `PEM_read_bio_SSL_SESSION` does: the first block labelled
/// `SSL SESSION PARAMETERS`, skipping text before it (such as `openssl sess_id -text`'s),
/// a byte-order mark, and blocks of other labels; what follows it is not read.
pub fn from_pem_at(pem: &[u8], now: UnixTime) -> Result<Session, DecodeError> {
    let pem = pem.strip_prefix(BOM).unwrap_or(pem);
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let pem_error = |e: pem_rfc7468::Error| DecodeError::Pem {
        detail: e.to_string(),
    };
    let mut other = None;
    let block = blocks(pem).find_map(|(label, block)| {
        if label == PEM_LABEL.as_bytes() {
            return Some(block);
        }
        other.get_or_insert_with(|| String::from_utf8_lossy(label).into_owned());
        None
    });
    let Some(pem) = block else {
        return Err(match other {
            Some(found) => DecodeError::PemLabel { found },
            None => DecodeError::Pem {
                detail: format!("no complete -----BEGIN {PEM_LABEL}----- block"),
            },
        });
    };
    // The decoded bytes hold the secret: decoded into one buffer, of the input's size (more
    // than base64 decodes to), that zeroizes itself.
    let mut buf = Zeroizing::new(vec![0u8; pem.len()]);
    let (_, der) = pem_rfc7468::decode(pem, &mut buf).map_err(pem_error)?;
    from_der_at(der, now)
}

/// Decodes a session in either form, telling them apart with [`Format::detect`].
pub fn decode(bytes: &[u8]) -> Result<(Session, Format), DecodeError> {
    decode_at(bytes, SystemClock.now())
}

/// [`decode`] with the time a session without one gets given.
pub fn decode_at(bytes: &[u8], now: UnixTime) -> Result<(Session, Format), DecodeError> {
    let format = Format::detect(bytes);
    let session = match format {
        Format::Der => from_der_at(bytes, now)?,
        Format::Pem => from_pem_at(bytes, now)?,
    };
    Ok((session, format))
}
