//! The session ([`SessionData`]), its owned handle ([`Session`]), its borrowed handle
//! ([`SessionRef`]) and the builder that makes new sessions and changed copies.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::native::Native;
use crate::storage::Wiped;
use crate::{
    AlpnProtocol, CertificateDer, CipherSuite, HostName, MasterKey, OpensslExtras, ProtocolVersion,
    SessionId, SidCtx, Ticket, UnixTime,
};

/// The timeout of a session made outside a handshake, in seconds (OpenSSL's
/// `SSL_SESSION_new` default; a context's own default is usually 7200).
pub const DEFAULT_SESSION_TIMEOUT: u64 = 304;

/// Application data attached to a session (OpenSSL's `SSL_SESSION_set_app_data`), shared by
/// copies and dropped with the last reference to the last copy that holds it.
type AppData = Arc<dyn Any + Send + Sync>;

/// What a session holds. Reached through [`Session`] or [`SessionRef`]; once shared, nothing
/// in it changes but the one-way "not resumable" mark and the stack's object, attached once
/// ([`native`](Self::native)).
///
/// `repr(C)` with the cache key (version, id) first: it then sits right after the reference
/// count at the start of the allocation, so a cache lookup's key comparison and the reference
/// it takes touch the same cache line (or its adjacent-line pair) instead of two or three.
#[repr(C)]
#[derive(Clone)]
pub struct SessionData {
    version: ProtocolVersion,
    id: SessionId,
    cipher: CipherSuite,
    extended_master_secret: bool,
    not_resumable: Mark,
    max_early_data: u32,
    sid_ctx: SidCtx,
    time: UnixTime,
    timeout: u64,
    verify_result: i64,
    master_key: MasterKey,
    peer_certificates: Option<Arc<[CertificateDer]>>,
    host_name: Option<HostName>,
    alpn: Option<AlpnProtocol>,
    ticket: Option<Ticket>,
    app_data: Option<AppData>,
    extras: Option<Box<OpensslExtras>>,
    /// The TLS stack's own object for this session, attached once by the stack's adapter.
    native: Native,
    /// The session this one is a renewed copy of ([`Session::with_time`],
    /// [`Session::with_timeout`]), the first of the chain: in OpenSSL both would be one object
    /// whose time changed. Weak, so it keeps no secret alive.
    renews: Option<std::sync::Weak<Wiped>>,
}

/// The one-way "not resumable" mark. A copy of a session's data is a new session, so a
/// cloned mark starts unmarked (a `dup` copies it on purpose).
#[repr(transparent)]
#[derive(Default)]
struct Mark(AtomicBool);

impl Clone for Mark {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// The extras of a session that has none stored.
static NO_EXTRAS: std::sync::LazyLock<OpensslExtras> =
    std::sync::LazyLock::new(OpensslExtras::default);

impl SessionData {
    /// The protocol version the session was negotiated with.
    #[inline]
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The cipher suite.
    pub fn cipher(&self) -> CipherSuite {
        self.cipher
    }

    /// The session id (possibly empty).
    #[doc(alias = "SSL_SESSION_get_id")]
    #[inline]
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The session id context.
    #[doc(alias = "SSL_SESSION_get0_id_context")]
    #[inline]
    pub fn sid_ctx(&self) -> &SidCtx {
        &self.sid_ctx
    }

    /// The master key or resumption secret.
    #[doc(alias = "SSL_SESSION_get_master_key")]
    #[inline]
    pub fn master_key(&self) -> &[u8] {
        self.master_key.as_bytes()
    }

    /// When the session was made (or last renewed), in seconds since the Unix epoch.
    #[doc(alias = "SSL_SESSION_get_time")]
    #[inline]
    pub fn time(&self) -> UnixTime {
        self.time
    }

    /// How long the session lives after [`time`](Self::time), in seconds.
    #[doc(alias = "SSL_SESSION_get_timeout")]
    #[inline]
    pub fn timeout(&self) -> u64 {
        self.timeout
    }

    /// `time + timeout`, saturating: a sum that would overflow is a session that never
    /// expires, never one that wraps into the past.
    #[inline]
    pub fn expiry(&self) -> UnixTime {
        self.time.saturating_add(self.timeout)
    }

    /// Whether the session has expired at `now`: strictly after its expiry, as OpenSSL counts.
    #[inline]
    pub fn is_expired_at(&self, now: UnixTime) -> bool {
        now > self.expiry()
    }

    /// The peer's certificate chain, leaf first (empty if the peer sent none).
    #[doc(alias = "SSL_SESSION_get0_peer")]
    pub fn peer_certificates(&self) -> &[CertificateDer] {
        self.peer_certificates.as_deref().unwrap_or_default()
    }

    /// The SNI host name.
    #[doc(alias = "SSL_SESSION_get0_hostname")]
    pub fn host_name(&self) -> Option<&str> {
        self.host_name.as_ref().map(HostName::as_str)
    }

    /// The negotiated ALPN protocol.
    #[doc(alias = "SSL_SESSION_get0_alpn_selected")]
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_ref().map(AlpnProtocol::as_bytes)
    }

    /// The session ticket, with its lifetime hint and `ticket_age_add`.
    #[doc(alias = "SSL_SESSION_get0_ticket")]
    pub fn ticket(&self) -> Option<&Ticket> {
        self.ticket.as_ref()
    }

    /// The most early data (0-RTT) the session allows, in bytes.
    #[doc(alias = "SSL_SESSION_get_max_early_data")]
    pub fn max_early_data(&self) -> u32 {
        self.max_early_data
    }

    /// Whether the session used the extended master secret (RFC 7627).
    #[inline]
    pub fn extended_master_secret(&self) -> bool {
        self.extended_master_secret
    }

    /// The result of verifying the peer's certificate (`X509_V_OK` is 0).
    pub fn verify_result(&self) -> i64 {
        self.verify_result
    }

    /// Whether the session can be resumed: not marked otherwise, and with an id or a ticket.
    #[doc(alias = "SSL_SESSION_is_resumable")]
    #[inline]
    pub fn is_resumable(&self) -> bool {
        !self.not_resumable.0.load(Ordering::Acquire)
            && (!self.id.is_empty() || self.ticket.is_some())
    }

    /// Marks the session as never to be resumed again. One-way: a session cannot be made
    /// resumable again (build a new one with [`Session::to_builder`] for that; a
    /// [`dup`](Session::dup) keeps the mark, as OpenSSL's does). The cache marks every session
    /// it takes out: removed, evicted, expired, flushed or taken.
    #[inline]
    pub fn mark_not_resumable(&self) {
        self.not_resumable.0.store(true, Ordering::Release);
    }

    /// The application data attached to the session, if any.
    #[doc(alias = "SSL_SESSION_get_app_data")]
    pub fn app_data(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.app_data.as_deref()
    }

    /// The TLS stack's own object for this session, if its adapter attached one
    /// ([`attach_native`](Self::attach_native)): OpenSSL's `SSL_SESSION` for the
    /// `sesscache-openssl` adapter, which hands OpenSSL a new reference to it on a hit, as
    /// OpenSSL's own cache does. A copy of a session starts without one.
    pub fn native(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.native.get()
    }

    /// Attaches the TLS stack's own object for this session, the one that describes exactly
    /// these fields; the first one attached stays, and a later one is handed back. Never
    /// serialized, compared or printed; dropped with the session (after its secrets are
    /// zeroized, the object's own drop wipes what it holds).
    pub fn attach_native(
        &self,
        object: Box<dyn Any + Send + Sync>,
    ) -> Result<(), Box<dyn Any + Send + Sync>> {
        self.native.set(object)
    }

    /// The OpenSSL fields the cache never reads (all at their defaults unless the session
    /// was decoded from OpenSSL's form or built with them).
    pub fn extras(&self) -> &OpensslExtras {
        self.extras.as_deref().unwrap_or(&NO_EXTRAS)
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("cipher", &self.cipher)
            .field("id", &self.id)
            .field("sid_ctx", &self.sid_ctx)
            .field("time", &self.time)
            .field("timeout", &self.timeout)
            .field("peer_certificates", &self.peer_certificates().len())
            .field("host_name", &self.host_name)
            .field("alpn", &self.alpn)
            .field("ticket", &self.ticket)
            .field("max_early_data", &self.max_early_data)
            .field("extended_master_secret", &self.extended_master_secret)
            .field("verify_result", &self.verify_result)
            .field("resumable", &self.is_resumable())
            .field("extras", self.extras())
            .finish_non_exhaustive()
    }
}

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
        if self.not_resumable.0.load(Ordering::Acquire) {
            copy.mark_not_resumable();
        }
        copy
    }

    /// A builder that starts from a deep copy of this session: change it, then
    /// [`build`](SessionBuilder::build) a new session (shared sessions are immutable).
    pub fn to_builder(&self) -> SessionBuilder {
        let mut data = SessionData::clone(self);
        data.renews = None;
        SessionBuilder(data)
    }

    /// A builder for a renewed copy of this session: the same session in OpenSSL's terms,
    /// with its not-resumable mark and the same origin ([`same_origin`](Self::same_origin)).
    fn renewal(&self) -> SessionBuilder {
        let origin = self
            .renews
            .clone()
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
        self.renews
            .as_ref()
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
        &self.0 .0
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
pub struct SessionBuilder(SessionData);

impl SessionBuilder {
    /// A session of `version` made at `time`, with an empty id, an empty secret and OpenSSL's
    /// default timeout of 304 seconds.
    #[doc(alias = "SSL_SESSION_new")]
    pub fn new(version: ProtocolVersion, time: UnixTime) -> Self {
        Self(SessionData {
            version,
            id: SessionId::empty(),
            cipher: CipherSuite(0),
            extended_master_secret: false,
            not_resumable: Mark::default(),
            max_early_data: 0,
            sid_ctx: SidCtx::empty(),
            time,
            timeout: DEFAULT_SESSION_TIMEOUT,
            verify_result: 0,
            master_key: MasterKey::default(),
            peer_certificates: None,
            host_name: None,
            alpn: None,
            ticket: None,
            app_data: None,
            extras: None,
            native: Native::default(),
            renews: None,
        })
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
        Session(Arc::new(Wiped::new(self.0)))
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
    fn the_cache_key_leads_the_layout() {
        assert_eq!(std::mem::offset_of!(SessionData, version), 0);
        assert_eq!(std::mem::offset_of!(SessionData, id), 2);
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
