//! The session's owned handle ([`Session`]), its borrowed handle
//! ([`SessionRef`]) and the builder that makes new sessions and changed copies.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::data::Fields;
use crate::storage::Wiped;
use crate::{
    AlpnProtocol, CertificateDer, CipherSuite, HostName, MasterKey, OpensslExtras, ProtocolVersion,
    SessionData, SessionId, SidCtx, Ticket, UnixTime,
};

/// The timeout of a session made outside a handshake, in seconds (OpenSSL's
/// `SSL_SESSION_new` default; a context's own default is usually 7200).
pub const DEFAULT_SESSION_TIMEOUT: u64 = 304;

/// An owned reference to a session (what OpenSSL's `get1` functions return).
///
/// `clone` (or [`up_ref`](Self::up_ref)) takes another reference; `drop` (or
/// [`free`](Self::free)) gives one back. When the last reference goes, the master key and the
/// session id are zeroized before the memory is released.
#[derive(Clone)]
#[doc(alias = "SSL_SESSION")]
pub struct Session(pub(crate) Arc<Wiped>);

impl Session {
    /// Another reference to the same session.
    #[doc(alias = "SSL_SESSION_up_ref")]
    #[must_use]
    pub fn up_ref(&self) -> Self {
        self.clone()
    }

    /// Gives this reference back; the session is freed (and its secrets zeroized) if it was
    /// the last one. The same as `drop`, spelled as OpenSSL spells it.
    #[doc(alias = "SSL_SESSION_free")]
    pub fn free(self) {
        drop(self);
    }

    /// A deep copy with a count of one that belongs to no cache. Strings, secrets and the
    /// ticket are copied; the peer certificates and the application data are shared; the
    /// not-resumable mark is copied too, as OpenSSL's `SSL_SESSION_dup` copies it (build a
    /// new session with [`to_builder`](Self::to_builder) for a resumable one).
    #[doc(alias = "SSL_SESSION_dup")]
    #[must_use]
    pub fn dup(&self) -> Self {
        self.keep_mark(self.to_builder().build())
    }

    /// `copy`, marked not resumable if this session is.
    fn keep_mark(&self, copy: Session) -> Session {
        if self.is_marked() {
            copy.mark_not_resumable();
        }
        copy
    }

    /// A builder that starts from a deep copy of this session: change it, then
    /// [`build`](SessionBuilder::build) a new session (shared sessions are immutable).
    pub fn to_builder(&self) -> SessionBuilder {
        let mut fields = self.unpack();
        fields.renews = None;
        SessionBuilder(fields)
    }

    /// A builder for a renewed copy of this session: the same session in OpenSSL's terms,
    /// with its not-resumable mark and the same origin ([`same_origin`](Self::same_origin)).
    fn renewal(&self) -> SessionBuilder {
        let origin = self
            .renews()
            .cloned()
            .unwrap_or_else(|| Arc::downgrade(&self.0));
        let mut builder = self.to_builder();
        builder.0.renews = Some(origin);
        builder
    }

    /// Whether the two are one session in OpenSSL's terms, which changes a session's time
    /// and timeout in place: the same handle, or one a renewed copy
    /// ([`with_time`](Self::with_time), [`with_timeout`](Self::with_timeout)) of the other, or
    /// both renewed copies of one original. The cache treats adding such a session as adding
    /// the one it holds.
    pub fn same_origin(&self, other: &Session) -> bool {
        std::ptr::eq(self.origin(), other.origin())
    }

    /// The address of the first session of this one's chain of renewals. Kept allocated (by
    /// `renews`, a weak count) while this one lives, so no other session can have it.
    fn origin(&self) -> *const Wiped {
        self.renews()
            .map_or(Arc::as_ptr(&self.0), std::sync::Weak::as_ptr)
    }

    /// A copy with another time: how a session is renewed (`SSL_SESSION_set_time` on a
    /// private copy).
    #[doc(alias = "SSL_SESSION_set_time")]
    #[must_use]
    pub fn with_time(&self, time: UnixTime) -> Self {
        self.keep_mark(self.renewal().time(time).build())
    }

    /// A copy with another timeout (`SSL_SESSION_set_timeout` on a private copy).
    #[doc(alias = "SSL_SESSION_set_timeout")]
    #[must_use]
    pub fn with_timeout(&self, timeout: u64) -> Self {
        self.keep_mark(self.renewal().timeout(timeout).build())
    }

    /// Borrows the session without taking a reference (OpenSSL's `get0`).
    pub fn borrowed(&self) -> SessionRef<'_> {
        SessionRef(self)
    }

    /// Whether two handles are references to the very same session (not merely equal ones).
    #[inline]
    pub fn ptr_eq(&self, other: &Session) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A handle that does not keep the session alive and does not count as a reference.
    #[inline]
    pub fn downgrade(&self) -> WeakSession {
        WeakSession(Arc::downgrade(&self.0))
    }

    /// How many references to this session exist now (OpenSSL's `references`). Only a
    /// snapshot: other threads may take or give back references at any time.
    #[inline]
    pub fn ref_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// The address of the session: equal for two handles exactly when
    /// [`ptr_eq`](Self::ptr_eq) holds. Never dereferenced by anyone who only compares it.
    #[inline]
    pub fn as_ptr(&self) -> *const () {
        Arc::as_ptr(&self.0).cast()
    }
}

impl Deref for Session {
    type Target = SessionData;

    #[inline]
    fn deref(&self) -> &SessionData {
        self.0.get()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A non-owning handle to a session: not a reference in OpenSSL's sense. It can be turned
/// into one only while some reference still exists, so it can never dangle.
#[derive(Clone)]
pub struct WeakSession(std::sync::Weak<Wiped>);

impl WeakSession {
    /// An owned reference, if the session has not been freed.
    #[inline]
    pub fn upgrade(&self) -> Option<Session> {
        self.0.upgrade().map(Session)
    }
}

impl fmt::Debug for WeakSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakSession")
    }
}

/// A borrowed session (OpenSSL's `get0`): readable for as long as what it was borrowed from
/// lives, with no `free` to call. [`up_ref`](Self::up_ref) turns it into an owned reference.
#[derive(Clone, Copy)]
pub struct SessionRef<'a>(&'a Session);

impl<'a> SessionRef<'a> {
    /// An owned reference to the borrowed session (turns `get0` into `get1`).
    #[doc(alias = "SSL_SESSION_up_ref")]
    #[must_use]
    pub fn up_ref(self) -> Session {
        self.0.clone()
    }

    /// Whether this is the very same session as `other`.
    #[inline]
    pub fn ptr_eq(self, other: &Session) -> bool {
        self.0.ptr_eq(other)
    }
}

impl<'a> From<&'a Session> for SessionRef<'a> {
    fn from(session: &'a Session) -> Self {
        SessionRef(session)
    }
}

impl Deref for SessionRef<'_> {
    type Target = SessionData;

    #[inline]
    fn deref(&self) -> &SessionData {
        self.0
    }
}

impl fmt::Debug for SessionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// Makes a new session, or a changed copy of one ([`Session::to_builder`]).
///
/// Every value it takes is already checked (a [`SessionId`], a [`MasterKey`], ...), so
/// [`build`](Self::build) cannot fail.
pub struct SessionBuilder(Fields);

impl SessionBuilder {
    /// A session of `version` made at `time`, with an empty id, an empty secret and OpenSSL's
    /// default timeout of 304 seconds.
    #[doc(alias = "SSL_SESSION_new")]
    pub fn new(version: ProtocolVersion, time: UnixTime) -> Self {
        Self(Fields::new(version, time))
    }

    /// The protocol version.
    #[doc(alias = "SSL_SESSION_set_protocol_version")]
    #[inline]
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.0.version = version;
        self
    }

    /// The cipher suite.
    #[doc(alias = "SSL_SESSION_set_cipher")]
    pub fn cipher(mut self, cipher: CipherSuite) -> Self {
        self.0.cipher = cipher;
        self
    }

    /// The session id.
    #[doc(alias = "SSL_SESSION_set1_id")]
    #[inline]
    pub fn id(mut self, id: SessionId) -> Self {
        self.0.id = id;
        self
    }

    /// The session id context.
    #[doc(alias = "SSL_SESSION_set1_id_context")]
    #[inline]
    pub fn sid_ctx(mut self, sid_ctx: SidCtx) -> Self {
        self.0.sid_ctx = sid_ctx;
        self
    }

    /// The master key or resumption secret.
    #[doc(alias = "SSL_SESSION_set1_master_key")]
    #[inline]
    pub fn master_key(mut self, key: MasterKey) -> Self {
        self.0.master_key = key;
        self
    }

    /// The time the session was made, in seconds since the Unix epoch.
    #[doc(alias = "SSL_SESSION_set_time")]
    #[inline]
    pub fn time(mut self, time: UnixTime) -> Self {
        self.0.time = time;
        self
    }

    /// The timeout, in seconds.
    #[doc(alias = "SSL_SESSION_set_timeout")]
    #[inline]
    pub fn timeout(mut self, timeout: u64) -> Self {
        self.0.timeout = timeout;
        self
    }

    /// The peer's certificate chain, leaf first. Copies made from this session share it.
    pub fn peer_certificates(mut self, chain: Vec<CertificateDer>) -> Self {
        self.0.peer_certificates = if chain.is_empty() {
            None
        } else {
            Some(chain.into())
        };
        self
    }

    /// The SNI host name.
    #[doc(alias = "SSL_SESSION_set1_hostname")]
    pub fn host_name(mut self, name: Option<HostName>) -> Self {
        self.0.host_name = name;
        self
    }

    /// The ALPN protocol.
    #[doc(alias = "SSL_SESSION_set1_alpn_selected")]
    pub fn alpn(mut self, alpn: Option<AlpnProtocol>) -> Self {
        self.0.alpn = alpn;
        self
    }

    /// The session ticket.
    pub fn ticket(mut self, ticket: Option<Ticket>) -> Self {
        self.0.ticket = ticket;
        self
    }

    /// The most early data the session allows.
    #[doc(alias = "SSL_SESSION_set_max_early_data")]
    pub fn max_early_data(mut self, bytes: u32) -> Self {
        self.0.max_early_data = bytes;
        self
    }

    /// Whether the extended master secret was used.
    #[inline]
    pub fn extended_master_secret(mut self, ems: bool) -> Self {
        self.0.extended_master_secret = ems;
        self
    }

    /// The peer certificate's verify result.
    pub fn verify_result(mut self, result: i64) -> Self {
        self.0.verify_result = result;
        self
    }

    /// Application data, shared with copies and dropped with the last one.
    #[doc(alias = "SSL_SESSION_set_app_data")]
    pub fn app_data(mut self, data: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        self.0.app_data = data;
        self
    }

    /// Sets the OpenSSL fields the cache never reads (see [`OpensslExtras`]).
    pub fn extras(mut self, extras: OpensslExtras) -> Self {
        self.0.extras = (!extras.is_default()).then(|| Box::new(extras));
        self
    }

    /// The session, with a reference count of one.
    #[doc(alias = "SSL_SESSION_new")]
    pub fn build(self) -> Session {
        Session(Arc::new(Wiped::new(SessionData::pack(self.0))))
    }
}

impl fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("version", &self.0.version)
            .field("id", &self.0.id)
            .field("time", &self.0.time)
            .field("timeout", &self.0.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &[u8]) -> Session {
        SessionBuilder::new(ProtocolVersion::TLS1_2, 1000)
            .id(SessionId::new(id).unwrap())
            .master_key(MasterKey::new(&[0x42; 48]).unwrap())
            .cipher(CipherSuite(0xC02F))
            .timeout(300)
            .build()
    }

    #[test]
    fn new_has_count_one_and_openssl_defaults() {
        let s = SessionBuilder::new(ProtocolVersion::TLS1_3, 5).build();
        assert_eq!(s.ref_count(), 1);
        assert_eq!(s.timeout(), DEFAULT_SESSION_TIMEOUT);
        assert_eq!(s.time(), 5);
        assert!(s.id().is_empty());
        assert!(!s.is_resumable(), "no id and no ticket: nothing to resume");
    }

    #[test]
    fn up_ref_and_free_move_the_count() {
        let s = session(b"a");
        let t = s.up_ref();
        assert_eq!(s.ref_count(), 2);
        assert!(s.ptr_eq(&t));
        t.free();
        assert_eq!(s.ref_count(), 1);
        let borrowed = s.borrowed();
        let owned = borrowed.up_ref();
        assert_eq!(s.ref_count(), 2);
        assert!(borrowed.ptr_eq(&owned));
    }

    #[test]
    fn a_native_object_is_attached_once_not_copied_and_dropped_with_the_session() {
        let s = session(b"a");
        let object = Arc::new(7u32);
        assert!(s.native().is_none());
        s.attach_native(Box::new(object.clone())).unwrap();
        assert!(
            s.attach_native(Box::new(0u8)).is_err(),
            "the first one attached stays"
        );
        let kept = s.native().and_then(|n| n.downcast_ref::<Arc<u32>>());
        assert_eq!(kept.map(|k| **k), Some(7));
        for copy in [s.dup(), s.with_time(9), s.to_builder().build()] {
            assert!(copy.native().is_none(), "a copy's fields may differ");
        }
        assert_eq!(Arc::strong_count(&object), 2);
        let other = s.up_ref();
        drop(s);
        assert_eq!(
            Arc::strong_count(&object),
            2,
            "kept while the session lives"
        );
        drop(other);
        assert_eq!(Arc::strong_count(&object), 1, "dropped with it");
    }

    #[test]
    fn dup_is_a_deep_copy_with_count_one_and_the_same_mark() {
        let chain = CertificateDer::chain([[0x30, 0x00]]).unwrap();
        let s = SessionBuilder::new(ProtocolVersion::TLS1_2, 10)
            .id(SessionId::new(b"id").unwrap())
            .peer_certificates(chain)
            .host_name(Some(HostName::new("example.com").unwrap()))
            .build();
        let _held = s.up_ref();
        s.mark_not_resumable();
        let d = s.dup();
        assert_eq!(d.ref_count(), 1);
        assert!(!d.ptr_eq(&s));
        assert!(
            !d.is_resumable(),
            "dup copies not_resumable, as SSL_SESSION_dup does"
        );
        assert!(!s.is_resumable());
        assert_eq!(d.id(), s.id());
        assert_eq!(d.host_name(), Some("example.com"));
        assert!(
            std::ptr::eq(d.peer_certificates(), s.peer_certificates()),
            "peer certificates are shared between copies"
        );
    }

    #[test]
    fn renewed_copies_share_their_origin_and_keep_its_mark() {
        let s = session(b"r");
        let t = s.with_time(99);
        let u = t.with_timeout(5);
        assert!(t.same_origin(&s) && u.same_origin(&s) && u.same_origin(&t));
        assert!(s.same_origin(&s) && s.same_origin(&u));
        assert!(!s.dup().same_origin(&s) && !s.to_builder().build().same_origin(&s));
        assert!(
            s.dup().is_resumable(),
            "a resumable session's dup is resumable"
        );
        s.mark_not_resumable();
        assert!(!s.with_time(1).is_resumable() && !s.with_timeout(1).is_resumable());
        assert!(
            s.to_builder().build().is_resumable(),
            "a new session from the builder"
        );
    }

    #[test]
    fn weak_handles_do_not_count_and_cannot_dangle() {
        let s = session(b"w");
        let weak = s.downgrade();
        assert_eq!(s.ref_count(), 1);
        assert!(weak.upgrade().unwrap().ptr_eq(&s));
        drop(s);
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn resumable_needs_an_id_or_a_ticket() {
        assert!(session(b"x").is_resumable());
        let ticket_only = SessionBuilder::new(ProtocolVersion::TLS1_3, 0)
            .ticket(Some(Ticket::new(b"t", 7200, 1).unwrap()))
            .build();
        assert!(ticket_only.is_resumable());
    }

    #[test]
    fn expiry_saturates_instead_of_wrapping() {
        let s = session(b"x")
            .to_builder()
            .time(u64::MAX - 5)
            .timeout(10)
            .build();
        assert_eq!(s.expiry(), u64::MAX);
        assert!(
            !s.is_expired_at(u64::MAX),
            "an overflowing expiry never expires"
        );
        let t = session(b"x").to_builder().time(100).timeout(10).build();
        assert!(
            !t.is_expired_at(110),
            "at exactly the expiry second it is still live"
        );
        assert!(t.is_expired_at(111));
    }

    #[test]
    fn with_time_and_timeout_leave_the_shared_session_alone() {
        let s = session(b"x");
        let renewed = s.with_timeout(5).with_time(7);
        assert_eq!((s.time(), s.timeout()), (1000, 300));
        assert_eq!((renewed.time(), renewed.timeout()), (7, 5));
        assert_eq!(renewed.master_key(), s.master_key());
    }

    #[test]
    fn debug_shows_no_secret() {
        let s = session(&[0x77; 32]);
        let text = format!("{s:?} {:?} {:?}", s.borrowed(), s.to_builder());
        assert!(!text.contains("66"), "{text}"); // 0x42 = 66
        assert!(!text.contains("119"), "{text}"); // 0x77 = 119
        assert!(!text.to_lowercase().contains("4242"), "{text}");
        assert!(text.contains("TLSv1.2"), "{text}");
    }
}
