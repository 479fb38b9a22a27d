//! OpenSSL's `SSL_SESSION_ASN1`, as both directions read it: the context tag of each
//! explicit field, the constants, and the C-string rule.

/// The ASN.1 version OpenSSL writes in every session (`SSL_SESSION_ASN1_VERSION`).
pub(crate) const ASN1_VERSION: u32 = 1;

/// The timeout OpenSSL gives a decoded session that has none (`d2i_SSL_SESSION`).
pub(crate) const MISSING_TIMEOUT: u64 = 3;

/// The extended-master-secret bit of OpenSSL's session flags (`SSL_SESS_FLAG_EXTMS`).
pub(crate) const FLAG_EXTMS: u64 = 1;

/// The context tags `[n]` of the explicit fields, in OpenSSL's order.
pub(crate) mod tag {
    pub(crate) const TIME: u32 = 1;
    pub(crate) const TIMEOUT: u32 = 2;
    pub(crate) const PEER: u32 = 3;
    pub(crate) const SID_CTX: u32 = 4;
    pub(crate) const VERIFY_RESULT: u32 = 5;
    pub(crate) const HOSTNAME: u32 = 6;
    pub(crate) const PSK_IDENTITY_HINT: u32 = 7;
    pub(crate) const PSK_IDENTITY: u32 = 8;
    pub(crate) const TICKET_LIFETIME_HINT: u32 = 9;
    pub(crate) const TICKET: u32 = 10;
    pub(crate) const COMPRESSION: u32 = 11;
    pub(crate) const SRP_USERNAME: u32 = 12;
    pub(crate) const FLAGS: u32 = 13;
    pub(crate) const TICKET_AGE_ADD: u32 = 14;
    pub(crate) const MAX_EARLY_DATA: u32 = 15;
    pub(crate) const ALPN: u32 = 16;
    pub(crate) const MAX_FRAGMENT_LEN_MODE: u32 = 17;
    pub(crate) const TICKET_APPDATA: u32 = 18;
    pub(crate) const KEX_GROUP: u32 = 19;
    pub(crate) const PEER_RPK: u32 = 20;
}

/// The bytes of a field OpenSSL keeps as a C string: up to the first NUL (`i2d_SSL_SESSION`
/// takes its length with `strlen`, `d2i_SSL_SESSION` copies with `OPENSSL_strndup`).
pub(crate) fn c_string(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}
