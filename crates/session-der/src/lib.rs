//! TLS sessions in OpenSSL's serialized form.
//!
//! - [`to_der`] / [`from_der`]: `i2d_SSL_SESSION` / `d2i_SSL_SESSION`, byte for byte: a
//!   session OpenSSL wrote decodes and encodes back to the same bytes, and OpenSSL reads what
//!   [`to_der`] writes.
//! - [`to_pem`] / [`from_pem`]: the same in PEM, labelled `SSL SESSION PARAMETERS`
//!   (`PEM_write_bio_SSL_SESSION`, what `openssl s_client -sess_out` saves).
//! - [`decode`]: either form, told apart by its first bytes.
//! - [`text`]: the session as `openssl sess_id -text -noout` prints it.
//!
//! Bad input gets a [`DecodeError`] that names the field and the byte offset; decoding never
//! panics and never allocates more than the input's size. The secret is copied only into the
//! session (which zeroizes it on the last drop) and into buffers that zeroize themselves.
//!
//! The DER work is done by RustCrypto's `der` crate and the PEM work by `pem-rfc7468`.

#![forbid(unsafe_code)]

mod decode;
mod encode;
mod error;
mod names;
mod pem;
mod schema;
pub mod text;

pub use decode::{from_der, from_der_at};
pub use encode::to_der;
pub use error::{DecodeError, EncodeError};
pub use pem::{decode, decode_at, from_pem, from_pem_at, to_pem, Format, PEM_LABEL};
