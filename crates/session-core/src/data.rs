//! [`SessionData`]: what a session holds, laid out to store only the bytes a session uses.
//!
//! A session is 136 bytes (152 with its reference counts): the cache key (version and id,
//! first, beside the counts), the cipher, the flags, the session id context, a secret of up
//! to 48 bytes, the time and timeout packed in one word, and one pointer to the fields most
//! sessions leave empty. Those live out of line in two levels, each allocated only when used:
//! [`Rare`] (host name, ALPN, the stack's object, the renewal origin) and [`More`]
//! (certificates, ticket, application data, OpenSSL's extras, and the values too large for
//! their inline room: a longer secret, a time of 2^40 - 1 or later, a timeout that
//! [`timeout_code`] cannot hold, a verify result or early-data limit other than 0).
//!
//! The builder keeps the plain form ([`Fields`]); [`SessionData::pack`] and
//! [`SessionData::unpack`] convert between the two.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Weak};

use once_cell::race::OnceBox;
use zeroize::Zeroize;

use crate::storage::Wiped;
use crate::{
    AlpnProtocol, CertificateDer, CipherSuite, HostName, MasterKey, OpensslExtras, ProtocolVersion,
    SessionId, SidCtx, Ticket, UnixTime,
};

/// Application data attached to a session (OpenSSL's `SSL_SESSION_set_app_data`), shared by
/// copies and dropped with the last reference to the last copy that holds it.
pub(crate) type AppData = Arc<dyn Any + Send + Sync>;

/// The TLS stack's own object for a session.
type NativeObject = Box<dyn Any + Send + Sync>;

/// The longest secret kept inline: every master key, and the resumption secrets of SHA-256
/// and SHA-384 suites.
const INLINE_KEY: usize = 48;
/// `flags` bits 0-5: the inline secret's length, or [`KEY_ELSEWHERE`].
const KEY_LEN: u8 = 0x3F;
/// The secret is longer than [`INLINE_KEY`] and lives in [`More`].
const KEY_ELSEWHERE: u8 = 0x3F;
/// The extended master secret was used.
const EMS: u8 = 0x40;
/// The one-way "not resumable" mark.
const NOT_RESUMABLE: u8 = 0x80;

/// `when` bits 0-39: the time, or [`TIME_ELSEWHERE`] (a time of 2^40 - 1 or more, which
/// lives in [`More`]).
const TIME_ELSEWHERE: u64 = (1 << 40) - 1;
/// `when` bits 40-63: the timeout, coded by [`timeout_code`]; [`TIMEOUT_ELSEWHERE`] means
/// it lives in [`More`].
const TIMEOUT_ELSEWHERE: u64 = (1 << 24) - 1;
const TIMEOUT_SHIFT: u32 = 40;
/// A timeout code with this bit set is a mantissa (bits 0-17) shifted left by bits 18-22.
const TIMEOUT_SCALED: u64 = 1 << 23;
const TIMEOUT_MANTISSA: u64 = (1 << 18) - 1;

/// The 24-bit code of a timeout: below 2^23 seconds (97 days) the number itself; above, a
/// round figure below 2^49 (a year, or 2^40 for "never") as an 18-bit mantissa and a shift;
/// any other timeout [`TIMEOUT_ELSEWHERE`].
fn timeout_code(timeout: u64) -> u64 {
    if timeout < TIMEOUT_SCALED {
        return timeout;
    }
    let shift = timeout.trailing_zeros().min(31);
    let mantissa = timeout >> shift;
    let code = TIMEOUT_SCALED | u64::from(shift) << 18 | mantissa;
    if mantissa <= TIMEOUT_MANTISSA && code != TIMEOUT_ELSEWHERE {
        code
    } else {
        TIMEOUT_ELSEWHERE
    }
}

/// The timeout a [`timeout_code`] stands for, or `None` for [`TIMEOUT_ELSEWHERE`].
#[inline]
fn timeout_of(code: u64) -> Option<u64> {
    match code {
        TIMEOUT_ELSEWHERE => None,
        plain if plain < TIMEOUT_SCALED => Some(plain),
        scaled => Some((scaled & TIMEOUT_MANTISSA) << ((scaled >> 18) & 31)),
    }
}

/// The fields of a session in their plain form: what a [`SessionBuilder`](crate::SessionBuilder)
/// fills in, packed into a [`SessionData`] when it builds.
#[derive(Clone)]
pub(crate) struct Fields {
    pub(crate) version: ProtocolVersion,
    pub(crate) id: SessionId,
    pub(crate) cipher: CipherSuite,
    pub(crate) extended_master_secret: bool,
    pub(crate) max_early_data: u32,
    pub(crate) sid_ctx: SidCtx,
    pub(crate) time: UnixTime,
    pub(crate) timeout: u64,
    pub(crate) verify_result: i64,
    pub(crate) master_key: MasterKey,
    pub(crate) peer_certificates: Option<Arc<[CertificateDer]>>,
    pub(crate) host_name: Option<HostName>,
    pub(crate) alpn: Option<AlpnProtocol>,
    pub(crate) ticket: Option<Ticket>,
    pub(crate) app_data: Option<AppData>,
    pub(crate) extras: Option<Box<OpensslExtras>>,
    /// The session this one is a renewed copy of, the first of the chain. Weak, so it keeps
    /// no secret alive.
    pub(crate) renews: Option<Weak<Wiped>>,
}

/// What a session holds. Reached through [`Session`](crate::Session) or
/// [`SessionRef`](crate::SessionRef); once shared, nothing in it changes but the one-way
/// "not resumable" mark and the stack's object, attached once ([`native`](Self::native)).
///
/// `repr(C)` with the cache key (version, id) first: it then sits right after the reference
/// counts at the start of the allocation, so a cache lookup's key comparison and the
/// reference it takes touch the same cache line (or its adjacent-line pair).
#[repr(C)]
pub struct SessionData {
    version: ProtocolVersion,
    id: SessionId,
    /// The inline secret's length, EMS and the not-resumable mark (the only bit that changes).
    flags: AtomicU8,
    cipher: CipherSuite,
    sid_ctx: SidCtx,
    key: [u8; INLINE_KEY],
    /// The time (bits 0-39) and the timeout (bits 40-63).
    when: u64,
    rare: OnceBox<Wiped<Rare>>,
}

/// Fields a session carries only when it uses them (boxed, and wiped whole when freed).
/// Fields drop in order: a long secret (in `more`) is zeroized before the stack's object goes.
#[derive(Default)]
struct Rare {
    host_name: Option<HostName>,
    alpn: Option<AlpnProtocol>,
    renews: Option<Weak<Wiped>>,
    more: Option<Box<Wiped<More>>>,
    /// The TLS stack's own object for this session, attached at most once, so that a cache
    /// hit hands the stack a new reference to it instead of a copy decoded again from the
    /// session's bytes. A copy of the session starts without one, since its fields may
    /// differ; it is never serialized, compared or printed.
    native: OnceBox<NativeObject>,
}

/// Fields rarer still, and the values too large for their inline room.
struct More {
    peer_certificates: Option<Arc<[CertificateDer]>>,
    ticket: Option<Ticket>,
    app_data: Option<AppData>,
    extras: Option<Box<OpensslExtras>>,
    /// A secret longer than [`INLINE_KEY`] (zeroized when dropped).
    long_key: Option<Box<[u8]>>,
    time: u64,
    timeout: u64,
    verify_result: i64,
    max_early_data: u64,
}

impl Drop for More {
    fn drop(&mut self) {
        self.long_key.zeroize();
    }
}

/// The extras of a session that has none stored.
static NO_EXTRAS: LazyLock<OpensslExtras> = LazyLock::new(OpensslExtras::default);

impl Fields {
    /// A session of `version` made at `time`, every other field at OpenSSL's default.
    pub(crate) fn new(version: ProtocolVersion, time: UnixTime) -> Self {
        Self {
            version,
            id: SessionId::empty(),
            cipher: CipherSuite(0),
            extended_master_secret: false,
            max_early_data: 0,
            sid_ctx: SidCtx::empty(),
            time,
            timeout: crate::DEFAULT_SESSION_TIMEOUT,
            verify_result: 0,
            master_key: MasterKey::default(),
            peer_certificates: None,
            host_name: None,
            alpn: None,
            ticket: None,
            app_data: None,
            extras: None,
            renews: None,
        }
    }
}

impl SessionData {
    /// Packs the plain fields into a session's layout, unmarked and with no stack object.
    pub(crate) fn pack(fields: Fields) -> Self {
        let Fields {
            version,
            id,
            cipher,
            extended_master_secret,
            max_early_data,
            sid_ctx,
            time,
            timeout,
            verify_result,
            master_key,
            peer_certificates,
            host_name,
            alpn,
            ticket,
            app_data,
            extras,
            renews,
        } = fields;
        let secret = master_key.as_bytes();
        let mut key = [0u8; INLINE_KEY];
        let (key_len, long_key) = match key.get_mut(..secret.len()) {
            Some(inline) => {
                inline.copy_from_slice(secret);
                (secret.len() as u8, None)
            }
            None => (KEY_ELSEWHERE, Some(Box::<[u8]>::from(secret))),
        };
        let time_inline = time.min(TIME_ELSEWHERE);
        let timeout_inline = timeout_code(timeout);
        let more = (peer_certificates.is_some()
            || ticket.is_some()
            || app_data.is_some()
            || extras.is_some()
            || long_key.is_some()
            || time_inline == TIME_ELSEWHERE
            || timeout_inline == TIMEOUT_ELSEWHERE
            || verify_result != 0
            || max_early_data != 0)
            .then(|| {
                Box::new(Wiped::new(More {
                    peer_certificates,
                    ticket,
                    app_data,
                    extras,
                    long_key,
                    time,
                    timeout,
                    verify_result,
                    max_early_data: u64::from(max_early_data),
                }))
            });
        let rare = OnceBox::new();
        if host_name.is_some() || alpn.is_some() || renews.is_some() || more.is_some() {
            let filled = Rare {
                host_name,
                alpn,
                renews,
                more,
                native: OnceBox::new(),
            };
            let _ = rare.set(Box::new(Wiped::new(filled)));
        }
        Self {
            version,
            id,
            flags: AtomicU8::new(key_len | if extended_master_secret { EMS } else { 0 }),
            cipher,
            sid_ctx,
            key,
            when: time_inline | timeout_inline << TIMEOUT_SHIFT,
            rare,
        }
    }

    /// The plain fields, copied (the stack's object and the mark are not among them).
    pub(crate) fn unpack(&self) -> Fields {
        let more = self.more();
        Fields {
            version: self.version,
            id: self.id.clone(),
            cipher: self.cipher,
            extended_master_secret: self.extended_master_secret(),
            max_early_data: self.max_early_data(),
            sid_ctx: self.sid_ctx,
            time: self.time(),
            timeout: self.timeout(),
            verify_result: self.verify_result(),
            master_key: MasterKey::new(self.master_key()).expect("a session's own secret fits"),
            peer_certificates: more.and_then(|m| m.peer_certificates.clone()),
            host_name: self.rare().and_then(|r| r.host_name.clone()),
            alpn: self.rare().and_then(|r| r.alpn.clone()),
            ticket: more.and_then(|m| m.ticket.clone()),
            app_data: more.and_then(|m| m.app_data.clone()),
            extras: more.and_then(|m| m.extras.clone()),
            renews: self.renews().cloned(),
        }
    }

    #[inline]
    fn rare(&self) -> Option<&Rare> {
        self.rare.get().map(Wiped::get)
    }

    #[inline]
    fn more(&self) -> Option<&More> {
        self.rare()?.more.as_deref().map(Wiped::get)
    }

    /// The session this one is a renewed copy of, if it is one.
    pub(crate) fn renews(&self) -> Option<&Weak<Wiped>> {
        self.rare()?.renews.as_ref()
    }

    /// Whether the not-resumable mark is set.
    #[inline]
    pub(crate) fn is_marked(&self) -> bool {
        self.flags.load(Ordering::Acquire) & NOT_RESUMABLE != 0
    }

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
        match self.flags.load(Ordering::Relaxed) & KEY_LEN {
            KEY_ELSEWHERE => self
                .more()
                .and_then(|m| m.long_key.as_deref())
                .unwrap_or_default(),
            len => &self.key[..usize::from(len)],
        }
    }

    /// When the session was made (or last renewed), in seconds since the Unix epoch.
    #[doc(alias = "SSL_SESSION_get_time")]
    #[inline]
    pub fn time(&self) -> UnixTime {
        match self.when & TIME_ELSEWHERE {
            TIME_ELSEWHERE => self.more().map_or(TIME_ELSEWHERE, |m| m.time),
            time => time,
        }
    }

    /// How long the session lives after [`time`](Self::time), in seconds.
    #[doc(alias = "SSL_SESSION_get_timeout")]
    #[inline]
    pub fn timeout(&self) -> u64 {
        match timeout_of(self.when >> TIMEOUT_SHIFT) {
            Some(timeout) => timeout,
            None => self.more().map_or(TIMEOUT_ELSEWHERE, |m| m.timeout),
        }
    }

    /// `time + timeout`, saturating: a sum that would overflow is a session that never
    /// expires, never one that wraps into the past.
    #[inline]
    pub fn expiry(&self) -> UnixTime {
        self.time().saturating_add(self.timeout())
    }

    /// Whether the session has expired at `now`: strictly after its expiry, as OpenSSL counts.
    #[inline]
    pub fn is_expired_at(&self, now: UnixTime) -> bool {
        now > self.expiry()
    }

    /// The peer's certificate chain, leaf first (empty if the peer sent none).
    #[doc(alias = "SSL_SESSION_get0_peer")]
    pub fn peer_certificates(&self) -> &[CertificateDer] {
        self.more()
            .and_then(|m| m.peer_certificates.as_deref())
            .unwrap_or_default()
    }

    /// The SNI host name.
    #[doc(alias = "SSL_SESSION_get0_hostname")]
    pub fn host_name(&self) -> Option<&str> {
        self.rare()?.host_name.as_ref().map(HostName::as_str)
    }

    /// The negotiated ALPN protocol.
    #[doc(alias = "SSL_SESSION_get0_alpn_selected")]
    pub fn alpn(&self) -> Option<&[u8]> {
        self.rare()?.alpn.as_ref().map(AlpnProtocol::as_bytes)
    }

    /// The session ticket, with its lifetime hint and `ticket_age_add`.
    #[doc(alias = "SSL_SESSION_get0_ticket")]
    pub fn ticket(&self) -> Option<&Ticket> {
        self.more()?.ticket.as_ref()
    }

    /// The most early data (0-RTT) the session allows, in bytes.
    #[doc(alias = "SSL_SESSION_get_max_early_data")]
    pub fn max_early_data(&self) -> u32 {
        self.more().map_or(0, |m| m.max_early_data as u32)
    }

    /// Whether the session used the extended master secret (RFC 7627).
    #[inline]
    pub fn extended_master_secret(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & EMS != 0
    }

    /// The result of verifying the peer's certificate (`X509_V_OK` is 0).
    pub fn verify_result(&self) -> i64 {
        self.more().map_or(0, |m| m.verify_result)
    }

    /// Whether the session can be resumed: not marked otherwise, and with an id or a ticket.
    #[doc(alias = "SSL_SESSION_is_resumable")]
    #[inline]
    pub fn is_resumable(&self) -> bool {
        !self.is_marked() && (!self.id.is_empty() || self.ticket().is_some())
    }

    /// Marks the session as never to be resumed again. One-way: a session cannot be made
    /// resumable again (build a new one with [`Session::to_builder`](crate::Session::to_builder)
    /// for that; a [`dup`](crate::Session::dup) keeps the mark, as OpenSSL's does). The cache
    /// marks every session it takes out: removed, evicted, expired, flushed or taken.
    #[inline]
    pub fn mark_not_resumable(&self) {
        // The mark is the only bit that ever changes, so a plain store of the bits read is
        // exact: every writer stores the same value.
        let flags = self.flags.load(Ordering::Relaxed);
        if flags & NOT_RESUMABLE == 0 {
            self.flags.store(flags | NOT_RESUMABLE, Ordering::Release);
        }
    }

    /// The application data attached to the session, if any.
    #[doc(alias = "SSL_SESSION_get_app_data")]
    pub fn app_data(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.more()?.app_data.as_deref()
    }

    /// The TLS stack's own object for this session, if its adapter attached one
    /// ([`attach_native`](Self::attach_native)): OpenSSL's `SSL_SESSION` for the
    /// `sesscache-openssl` adapter, which hands OpenSSL a new reference to it on a hit, as
    /// OpenSSL's own cache does. A copy of a session starts without one.
    pub fn native(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.rare()?.native.get().map(|object| &**object)
    }

    /// Attaches the TLS stack's own object for this session, the one that describes exactly
    /// these fields; the first one attached stays, and a later one is handed back. Never
    /// serialized, compared or printed; dropped with the session (after its secrets are
    /// zeroized, the object's own drop wipes what it holds).
    pub fn attach_native(&self, object: NativeObject) -> Result<(), NativeObject> {
        let rare = self
            .rare
            .get_or_init(|| Box::new(Wiped::new(Rare::default())));
        rare.get()
            .native
            .set(Box::new(object))
            .map_err(|back| *back)
    }

    /// The OpenSSL fields the cache never reads (all at their defaults unless the session
    /// was decoded from OpenSSL's form or built with them).
    pub fn extras(&self) -> &OpensslExtras {
        self.more()
            .and_then(|m| m.extras.as_deref())
            .unwrap_or(&NO_EXTRAS)
    }
}

/// A copy is a new session: unmarked, and without the stack's object.
impl Clone for SessionData {
    fn clone(&self) -> Self {
        Self::pack(self.unpack())
    }
}

impl Drop for SessionData {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("cipher", &self.cipher)
            .field("id", &self.id)
            .field("sid_ctx", &self.sid_ctx)
            .field("time", &self.time())
            .field("timeout", &self.timeout())
            .field("peer_certificates", &self.peer_certificates().len())
            .field("host_name", &self.host_name())
            .field("alpn", &self.rare().and_then(|r| r.alpn.as_ref()))
            .field("ticket", &self.ticket())
            .field("max_early_data", &self.max_early_data())
            .field("extended_master_secret", &self.extended_master_secret())
            .field("verify_result", &self.verify_result())
            .field("resumable", &self.is_resumable())
            .field("extras", self.extras())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_stores_only_what_it_uses() {
        assert_eq!(size_of::<SessionData>(), 136);
        assert_eq!(std::mem::offset_of!(SessionData, version), 0);
        assert_eq!(std::mem::offset_of!(SessionData, id), 2);
    }

    fn fields() -> Fields {
        let mut f = Fields::new(ProtocolVersion::TLS1_2, 1_700_000_000);
        f.id = SessionId::new(&[1; 32]).unwrap();
        f.cipher = CipherSuite(0xC02F);
        f.extended_master_secret = true;
        f.sid_ctx = SidCtx::new(b"ctx").unwrap();
        f.timeout = 7200;
        f.master_key = MasterKey::new(&[2; 48]).unwrap();
        f
    }

    #[test]
    fn values_past_their_inline_room_round_trip_through_the_boxes() {
        let plain = SessionData::pack(fields());
        assert!(plain.rare().is_none(), "nothing rare: no box");
        let edges = [
            (0, 0, 0, 0, 0),
            (TIME_ELSEWHERE - 1, TIMEOUT_SCALED - 1, 48, 0, 0),
            (TIME_ELSEWHERE, TIMEOUT_SCALED + 1, 49, -1, 1),
            (1, TIMEOUT_ELSEWHERE, 0, 0, 0),
            (1, TIMEOUT_MANTISSA << 31, 0, 0, 0),
            (1, (TIMEOUT_MANTISSA + 2) << 31, 0, 0, 0),
            (u64::MAX, u64::MAX, 512, i64::MIN, u32::MAX),
        ];
        for (time, timeout, key_len, verify, early) in edges {
            let mut f = fields();
            f.time = time;
            f.timeout = timeout;
            f.master_key = MasterKey::new(&vec![9; key_len]).unwrap();
            f.verify_result = verify;
            f.max_early_data = early;
            let data = SessionData::pack(f);
            assert_eq!(
                (data.time(), data.timeout(), data.master_key().len()),
                (time, timeout, key_len)
            );
            assert_eq!(
                (data.verify_result(), data.max_early_data()),
                (verify, early)
            );
            assert!(data.master_key().iter().all(|&b| b == 9));
            assert!(data.extended_master_secret());
            assert_eq!(data.expiry(), time.saturating_add(timeout));
            let copy = data.clone();
            assert_eq!((copy.time(), copy.timeout()), (time, timeout));
            assert_eq!(copy.master_key(), data.master_key());
        }
    }

    #[test]
    fn round_timeouts_past_97_days_stay_inline_and_others_go_out_of_line() {
        let inline = [
            TIMEOUT_SCALED - 1,
            TIMEOUT_SCALED,
            365 * 86_400,
            1 << 40,
            (TIMEOUT_MANTISSA - 1) << 31,
            TIMEOUT_MANTISSA << 30,
            1 << 48,
        ];
        let boxed = [
            TIMEOUT_SCALED + 1,
            (TIMEOUT_MANTISSA + 2) << 10,
            TIMEOUT_MANTISSA << 31,
            1 << 49,
            u64::MAX,
        ];
        for (timeout, out_of_line) in inline
            .map(|t| (t, false))
            .into_iter()
            .chain(boxed.map(|t| (t, true)))
        {
            let mut f = fields();
            f.timeout = timeout;
            let data = SessionData::pack(f);
            assert_eq!(data.timeout(), timeout);
            assert_eq!(data.more().is_some(), out_of_line, "timeout {timeout}");
        }
    }

    #[test]
    fn the_mark_is_one_way_and_leaves_the_other_flags() {
        let data = SessionData::pack(fields());
        data.mark_not_resumable();
        data.mark_not_resumable();
        assert!(data.is_marked() && !data.is_resumable());
        assert!(data.extended_master_secret());
        assert_eq!(data.master_key(), &[2; 48]);
        assert!(!data.clone().is_marked(), "a copy is a new session");
    }

    #[test]
    fn a_native_object_can_be_attached_to_a_session_without_rare_fields() {
        let data = SessionData::pack(fields());
        data.attach_native(Box::new(5u8)).unwrap();
        assert_eq!(data.native().and_then(|n| n.downcast_ref::<u8>()), Some(&5));
        assert!(data.host_name().is_none() && data.extras().is_default());
        let mut f = fields();
        f.host_name = Some(HostName::new("example.com").unwrap());
        let named = SessionData::pack(f);
        named.attach_native(Box::new(6u8)).unwrap();
        assert_eq!(named.host_name(), Some("example.com"));
        assert!(named.clone().native().is_none());
    }
}
