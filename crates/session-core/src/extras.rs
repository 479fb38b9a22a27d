//! [`OpensslExtras`]: what OpenSSL's serialized session carries that the cache never reads.

use std::fmt;

/// The fields of OpenSSL's `SSL_SESSION` that no part of this workspace acts on, kept so that
/// a session decoded from OpenSSL's DER form (`session-der`) encodes back to the very same
/// bytes. A session made by a handshake of ours has them all at their defaults.
///
/// Fields are public: this is plain data with no invariant of its own.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpensslExtras {
    /// The key exchange group (a TLS `NamedGroup` code point; 0 if unknown). OpenSSL 3 writes
    /// it in every session.
    pub kex_group: u32,
    /// The PSK identity hint (TLS 1.2 PSK cipher suites). This and the two fields after it
    /// are C strings to OpenSSL: only the bytes before a NUL are written or read.
    pub psk_identity_hint: Option<Box<[u8]>>,
    /// The PSK identity (TLS 1.2 PSK cipher suites).
    pub psk_identity: Option<Box<[u8]>>,
    /// The SRP user name.
    pub srp_username: Option<Box<[u8]>>,
    /// The compression method id (0: none, which is all OpenSSL 3 negotiates by default).
    pub compression: u8,
    /// The maximum fragment length mode (RFC 6066; 0: not negotiated).
    pub max_fragment_len_mode: u32,
    /// Application data bound to the ticket (`SSL_SESSION_set1_ticket_appdata`).
    pub ticket_appdata: Option<Box<[u8]>>,
    /// The peer's raw public key (RFC 7250), as a DER SubjectPublicKeyInfo.
    pub peer_raw_public_key: Option<Box<[u8]>>,
    /// Session flags other than the extended-master-secret bit, which is
    /// [`SessionData::extended_master_secret`](crate::SessionData::extended_master_secret).
    pub other_flags: u64,
    /// The ticket lifetime hint of a session that has no ticket (a server's own copy of a
    /// TLS 1.3 session). A session with a ticket keeps it in its [`Ticket`](crate::Ticket).
    pub ticket_lifetime_hint: u64,
    /// The `ticket_age_add` of a session that has no ticket (a server's own copy of a TLS 1.3
    /// session). A session with a ticket keeps it in its [`Ticket`](crate::Ticket).
    pub ticket_age_add: u32,
}

impl OpensslExtras {
    /// Whether every field is at its default (a session then stores nothing for them).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Debug for OpensslExtras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |b: &Option<Box<[u8]>>| b.as_ref().map(|b| b.len());
        f.debug_struct("OpensslExtras")
            .field("kex_group", &self.kex_group)
            .field("psk_identity_hint_len", &len(&self.psk_identity_hint))
            .field("psk_identity_len", &len(&self.psk_identity))
            .field("srp_username_len", &len(&self.srp_username))
            .field("compression", &self.compression)
            .field("max_fragment_len_mode", &self.max_fragment_len_mode)
            .field("ticket_appdata_len", &len(&self.ticket_appdata))
            .field("peer_raw_public_key_len", &len(&self.peer_raw_public_key))
            .field("other_flags", &self.other_flags)
            .field("ticket_lifetime_hint", &self.ticket_lifetime_hint)
            .finish_non_exhaustive()
    }
}
