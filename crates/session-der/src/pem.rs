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
    /// Tells the forms apart: PEM is text that starts (after blank space) with `-----BEGIN`,
    /// which a DER session, starting with its SEQUENCE tag 0x30, never does.
    pub fn detect(bytes: &[u8]) -> Self {
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        match start {
            Some(i) if bytes[i..].starts_with(b"-----BEGIN") => Self::Pem,
            _ => Self::Der,
        }
    }
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
pub fn from_pem_at(pem: &[u8], now: UnixTime) -> Result<Session, DecodeError> {
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let pem_error = |e: pem_rfc7468::Error| DecodeError::Pem {
        detail: e.to_string(),
    };
    let label = pem_rfc7468::decode_label(pem).map_err(pem_error)?;
    if label != PEM_LABEL {
        return Err(DecodeError::PemLabel {
            found: label.to_owned(),
        });
    }
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
