//! What can go wrong reading or writing a session in OpenSSL's form.

/// Bytes that are not a session in OpenSSL's DER or PEM form. Every variant names what is
/// wrong and, for DER, the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The DER structure is broken: truncated, a wrong tag, a bad length, a non-canonical
    /// integer, an unknown or misplaced field.
    #[error("malformed DER at byte {at}, in {field}: {detail}")]
    Der {
        /// The field being read.
        field: &'static str,
        /// The byte offset where the problem was found.
        at: usize,
        /// What is wrong, in the DER library's words.
        detail: String,
    },
    /// A field is well-formed DER but its value is not one a session can hold.
    #[error("bad {field} at byte {at}: {detail}")]
    Value {
        /// The field.
        field: &'static str,
        /// The byte offset of the field.
        at: usize,
        /// What is wrong with the value.
        detail: String,
    },
    /// Bytes follow the session.
    #[error("{len} trailing bytes after the session, at byte {at}")]
    TrailingBytes {
        /// Where the session ends.
        at: usize,
        /// How many bytes follow it.
        len: usize,
    },
    /// No input at all.
    #[error("empty input: no session")]
    Empty,
    /// PEM with another label than `SSL SESSION PARAMETERS`.
    #[error("PEM label is {found:?}; a session's is \"SSL SESSION PARAMETERS\"")]
    PemLabel {
        /// The label found.
        found: String,
    },
    /// Text that is not well-formed PEM (bad boundaries, bad base64, headers).
    #[error("malformed PEM: {detail}")]
    Pem {
        /// What is wrong, in the PEM library's words.
        detail: String,
    },
}

/// A session that cannot be written in OpenSSL's form: one of its values does not fit the
/// field OpenSSL gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A value too large for its field (OpenSSL's time and timeout are signed 64-bit,
    /// its verify result a signed 32-bit integer).
    #[error("{field} is {value}, more than OpenSSL's form can hold ({max})")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: i128,
        /// The largest value the field holds.
        max: i128,
    },
    /// The DER library refused the structure (a peer certificate with a non-canonical
    /// header, for example).
    #[error("cannot encode {field}: {detail}")]
    Der {
        /// The field.
        field: &'static str,
        /// What is wrong, in the DER library's words.
        detail: String,
    },
}
