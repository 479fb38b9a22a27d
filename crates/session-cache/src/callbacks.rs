//! The application's callbacks, published read-copy-update style with `arc-swap`.
//!
//! Every removal, eviction, flush and miss reads the callback set, from any number of threads
//! at once; the application replaces it rarely. A reader loads the current set without a
//! lock (arc-swap's thread-local debt slots), and a cache with no callbacks does not even do
//! that: one flag says whether any is set. A replaced set is dropped when its last reader
//! lets go of it; readers run with no cache lock held, so its closures are never dropped
//! under one.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use session_core::Session;

use crate::{LookupRequest, Miss, SessionCache};

use crate::sync::{lock, AtomicBool, Mutex, Ordering};

/// Why a session left the cache, as told to the remove callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// [`SessionCache::remove`](crate::SessionCache::remove) was asked for it (whether or not
    /// it was cached, as OpenSSL calls the callback either way).
    Removed,
    /// [`SessionCache::take`](crate::SessionCache::take) handed it out.
    Taken,
    /// A lookup found it expired.
    Expired,
    /// It was evicted to make room.
    Evicted,
    /// A flush removed it.
    Flushed,
}

// Every callback receives the cache it belongs to, so that one that calls back into the
// cache has no reason to hold a handle to it (or to its context): the cache owns its
// callbacks, so a strong handle captured in one is a cycle that keeps the cache alive, never
// flushed and never wiped, after its owner lets go.

/// Called after a handshake established a session (`SSL_CTX_sess_set_new_cb`), with the cache
/// it belongs to. To keep the session, clone the handle: no return value decides who owns
/// what.
pub type NewSessionCallback = Arc<dyn Fn(&SessionCache, &Session) + Send + Sync>;

/// Called for every session that leaves the cache (`SSL_CTX_sess_set_remove_cb`), with the
/// cache, after it has released its locks: the callback may call back into the cache through
/// its first argument (an add it makes there does not evict:
/// [`Error::FullInRemoveCallback`](crate::Error::FullInRemoveCallback)).
pub type RemoveSessionCallback = Arc<dyn Fn(&SessionCache, &Session, RemovalCause) + Send + Sync>;

/// Asked on an internal miss (`SSL_CTX_sess_set_get_cb`), with the cache and the whole
/// request (version, offered id, session id context): an external cache returns an owned
/// reference, or why it has none (OpenSSL's `NULL` is [`Miss::UnknownId`]; a store that
/// could not answer says [`Miss::StoreUnavailable`]). There is no `copy` flag to get wrong.
pub type GetSessionCallback =
    Arc<dyn Fn(&SessionCache, &LookupRequest<'_>) -> Result<Session, Miss> + Send + Sync>;

/// The external cache's single-use lookup, asked by
/// [`SessionCache::lookup_take`](crate::SessionCache::lookup_take) (a TLS 1.3 stateful
/// ticket), with the cache, the request and the ticket the internal cache just gave up (if
/// it had a live one). It returns the session to resume, or why it refuses
/// ([`Miss::AlreadyUsed`] for a ticket used elsewhere).
///
/// An external cache shared by several servers is where single use is decided: a ticket
/// taken from one server's internal cache may already have been used on another, and one
/// missing here may be in the shared store. The callback claims the ticket there, atomically,
/// so that it resumes once in the whole fleet.
pub type TakeSessionCallback = Arc<
    dyn Fn(&SessionCache, &LookupRequest<'_>, Option<Session>) -> Result<Session, Miss>
        + Send
        + Sync,
>;

/// What a prefetch callback returns: the fetch, to be awaited (it owns what it needs), or
/// `None` when there is nothing to fetch.
pub type PrefetchFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The external cache's asynchronous fetch, asked by
/// [`SessionCache::prefetch`](crate::SessionCache::prefetch) before a handshake's synchronous
/// lookup, with the cache, the request, and the session the internal cache holds under its
/// key (if any). It starts what the get- or take-session callback would ask of a remote
/// store (for a TLS 1.3 ticket, the claim) and keeps the answer where that callback finds it,
/// so that the lookup answers from memory. Concurrent prefetches of one key may share one
/// fetch. The returned future runs on the caller's executor and must not block it.
pub type PrefetchCallback = Arc<
    dyn Fn(&SessionCache, &LookupRequest<'_>, Option<Session>) -> Option<PrefetchFuture>
        + Send
        + Sync,
>;

thread_local! {
    /// How many remove callbacks (of any cache) this thread is running right now.
    static IN_REMOVE_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

/// Whether this thread is inside a remove callback: an add made there may not evict, since
/// the eviction would run a remove callback again, and a callback that adds for every
/// removal would never end.
pub(crate) fn in_remove_callback() -> bool {
    IN_REMOVE_CALLBACK.with(Cell::get) > 0
}

/// Runs `cb` for each session, marked as inside a remove callback for
/// [`in_remove_callback`] (also if it panics).
pub(crate) fn run_remove_callback(
    cb: &RemoveSessionCallback,
    cache: &SessionCache,
    sessions: &[Session],
    cause: RemovalCause,
) {
    struct Inside;
    impl Drop for Inside {
        fn drop(&mut self) {
            IN_REMOVE_CALLBACK.with(|depth| depth.set(depth.get() - 1));
        }
    }
    IN_REMOVE_CALLBACK.with(|depth| depth.set(depth.get() + 1));
    let _inside = Inside;
    for s in sessions {
        cb(cache, s, cause);
    }
}

#[derive(Clone, Default)]
struct Set {
    new_session: Option<NewSessionCallback>,
    remove_session: Option<RemoveSessionCallback>,
    get_session: Option<GetSessionCallback>,
    take_session: Option<TakeSessionCallback>,
    prefetch: Option<PrefetchCallback>,
}

/// The current callback set.
pub(crate) struct Callbacks {
    current: ArcSwap<Set>,
    /// Whether any callback is set: paths that find none skip loading the set.
    any: AtomicBool,
    /// Serializes writers, so that two setters cannot lose each other's change.
    writer: Mutex<()>,
}

impl Callbacks {
    pub(crate) fn new() -> Self {
        Self {
            current: ArcSwap::from_pointee(Set::default()),
            any: AtomicBool::new(false),
            writer: Mutex::new(()),
        }
    }

    /// Reads one callback out of the current set.
    fn read<T>(&self, pick: impl FnOnce(&Set) -> Option<T>) -> Option<T> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        pick(&self.current.load())
    }

    fn update(&self, change: impl FnOnce(&mut Set)) {
        let _writer = lock(&self.writer);
        let mut next = Set::clone(&self.current.load());
        change(&mut next);
        let any = next.new_session.is_some()
            || next.remove_session.is_some()
            || next.get_session.is_some()
            || next.take_session.is_some()
            || next.prefetch.is_some();
        self.current.store(Arc::new(next));
        self.any.store(any, Ordering::Release);
    }

    pub(crate) fn new_session(&self) -> Option<NewSessionCallback> {
        self.read(|s| s.new_session.clone())
    }

    pub(crate) fn remove_session(&self) -> Option<RemoveSessionCallback> {
        self.read(|s| s.remove_session.clone())
    }

    pub(crate) fn get_session(&self) -> Option<GetSessionCallback> {
        self.read(|s| s.get_session.clone())
    }

    pub(crate) fn take_session(&self) -> Option<TakeSessionCallback> {
        self.read(|s| s.take_session.clone())
    }

    pub(crate) fn prefetch(&self) -> Option<PrefetchCallback> {
        self.read(|s| s.prefetch.clone())
    }

    pub(crate) fn set_prefetch(&self, cb: Option<PrefetchCallback>) {
        self.update(|s| s.prefetch = cb);
    }

    pub(crate) fn set_new_session(&self, cb: Option<NewSessionCallback>) {
        self.update(|s| s.new_session = cb);
    }

    pub(crate) fn set_remove_session(&self, cb: Option<RemoveSessionCallback>) {
        self.update(|s| s.remove_session = cb);
    }

    pub(crate) fn set_get_session(&self, cb: Option<GetSessionCallback>) {
        self.update(|s| s.get_session = cb);
    }

    pub(crate) fn set_take_session(&self, cb: Option<TakeSessionCallback>) {
        self.update(|s| s.take_session = cb);
    }
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("new_session", &self.new_session().is_some())
            .field("remove_session", &self.remove_session().is_some())
            .field("get_session", &self.get_session().is_some())
            .field("take_session", &self.take_session().is_some())
            .field("prefetch", &self.prefetch().is_some())
            .finish()
    }
}
