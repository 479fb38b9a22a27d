//! [`Tier`]: the store behind a cache's hooks, and the writer and prober off the handshake's
//! path.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Cmd, Value};
use session_cache::{ExtendedMasterSecret, LookupRequest, Miss, RemovalCause, SessionCache};
use session_core::{ProtocolVersion, Session, SidCtx};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc;
use tracing::{debug, trace};
use zeroize::Zeroizing;

use crate::keys::KeyRing;
use crate::stats::{Breakers, Counters, TierStats};
use crate::store::{self, Called, Dial, InFlight, Node, Slot, Topology};
use crate::value::{self, Stored, TOMBSTONE};
use crate::Error;

/// The default budget of one remote call on a handshake's path.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(5);

/// How the tier reaches its store and what it may cost.
#[non_exhaustive]
pub struct TierConfig {
    /// One `redis://` URL for a single server (Redis or Valkey), several for a Redis Cluster's
    /// nodes (any of them; the client finds the rest).
    pub urls: Vec<String>,
    /// The keys that seal and open values.
    pub keys: KeyRing,
    /// The most a handshake waits for the store ([`DEFAULT_BUDGET`]).
    pub budget: Duration,
    /// The most the writer waits for one batch of writes (off the handshake's path).
    pub write_budget: Duration,
    /// The most a (re)connection attempt takes (off the handshake's path).
    pub connect_timeout: Duration,
    /// Writes and deletes waiting for the writer; a write that finds the queue full is
    /// dropped and counted.
    pub queue: usize,
    /// Failures in a row (timeouts or errors) of one node that open its breaker, for
    /// lookups and writes apart.
    pub breaker_failures: u32,
    /// How often the prober pings every node of the store (and closes an open breaker).
    pub probe_interval: Duration,
    /// What every name in the store starts with.
    pub prefix: String,
    /// How much longer than its ticket a used ticket's tombstone (and a ticket's value)
    /// lives in the store: room for clocks that disagree between servers and the store.
    pub tombstone_margin: Duration,
    /// The store's password, for every URL (instead of one in a URL, which `ps` shows).
    pub password: Option<Zeroizing<String>>,
}

impl fmt::Debug for TierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TierConfig")
            .field(
                "urls",
                &self
                    .urls
                    .iter()
                    .map(|u| store::redact(u))
                    .collect::<Vec<_>>(),
            )
            .field("keys", &self.keys)
            .field("budget", &self.budget)
            .field("write_budget", &self.write_budget)
            .field("connect_timeout", &self.connect_timeout)
            .field("queue", &self.queue)
            .field("breaker_failures", &self.breaker_failures)
            .field("probe_interval", &self.probe_interval)
            .field("prefix", &self.prefix)
            .field("tombstone_margin", &self.tombstone_margin)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl TierConfig {
    /// A configuration with the defaults: a 5 ms budget, a queue of 4096, the breaker open
    /// after 5 failures in a row and probed every 500 ms, names under `sesscache:`,
    /// tombstones kept 5 minutes past their ticket, no password beyond the URL's.
    pub fn new(urls: Vec<String>, keys: KeyRing) -> Self {
        Self {
            urls,
            keys,
            budget: DEFAULT_BUDGET,
            write_budget: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            queue: 4096,
            breaker_failures: 5,
            probe_interval: Duration::from_millis(500),
            prefix: "sesscache:".to_owned(),
            tombstone_margin: Duration::from_secs(300),
            password: None,
        }
    }
}

/// The most TLS 1.3 tickets whose write has not left this server that it keeps track of;
/// past it, a new ticket counts as written (its claim asks the store: fail closed).
const UNSENT_LIMIT: usize = 1 << 18;

/// A write or delete for the writer.
enum Job {
    /// Seal and write a new session, to expire at `expires` (Unix seconds, the system
    /// clock's). A TLS 1.3 ticket's name is in the unsent set until the writer sends it.
    Put {
        session: Session,
        expires: u64,
        ticket: Option<[u8; 32]>,
    },
    /// Delete a session's value under every key's name.
    Delete {
        version: u16,
        sid_ctx: SidCtx,
        id: Zeroizing<Vec<u8>>,
    },
}

/// What the handshake's path, the writer and the prober share.
struct Shared {
    conn: Arc<Slot>,
    topology: Topology,
    keys: KeyRing,
    prefix: Vec<u8>,
    budget: Duration,
    write_budget: Duration,
    connect_timeout: Duration,
    margin: u64,
    counters: Counters,
    queued: AtomicU64,
    /// The names of the TLS 1.3 tickets this server issued whose write has not left it
    /// (queued, or dropped), with their expiry (Unix seconds): only such a ticket may be
    /// claimed without the store. The prober sweeps out the expired.
    unsent: Mutex<HashMap<[u8; 32], u64>>,
    /// What prefetches found, by name, for the handshakes' synchronous lookups: the answer,
    /// until when it waits, and for how many lookups (one per prefetch that asked for it).
    prefetched: Mutex<HashMap<[u8; 32], (Prefetched, Instant, usize)>>,
    /// The prefetches in flight, by name, and how many wait for each: a second one of the
    /// same name waits for the first.
    inflight: Mutex<HashMap<[u8; 32], InFlightPrefetch>>,
}

/// A prefetch in flight: its end, and how many prefetches wait for it.
type InFlightPrefetch = (tokio::sync::watch::Receiver<bool>, usize);

/// What a prefetch found for one name.
#[derive(Clone)]
enum Prefetched {
    /// A session from the store (a TLS 1.3 ticket's already claimed there).
    Found(Session),
    /// A TLS 1.3 ticket this server holds, claimed in the store.
    ClaimedHere,
    /// Nothing to resume, and why.
    Missed(Miss),
}

/// A lookup request a prefetch owns, to run it on another thread.
struct Owned {
    version: ProtocolVersion,
    id: Zeroizing<Vec<u8>>,
    sid_ctx: SidCtx,
    extended_master_secret: ExtendedMasterSecret,
}

impl Owned {
    fn of(request: &LookupRequest<'_>) -> Self {
        Self {
            version: request.version,
            id: Zeroizing::new(request.id.to_vec()),
            sid_ctx: request.sid_ctx,
            extended_master_secret: request.extended_master_secret,
        }
    }

    /// The handshake's first offer (a prefetch is for nothing else).
    fn request(&self) -> LookupRequest<'_> {
        LookupRequest::new(
            self.version,
            &self.id,
            self.sid_ctx,
            self.extended_master_secret,
        )
    }
}

/// How long a prefetched answer waits for its handshake's lookup (which follows at once: the
/// handshake goes on as soon as the prefetch is done).
const PREFETCHED_FOR: Duration = Duration::from_secs(2);

/// The most prefetched answers kept at once; past it, a handshake's lookup asks the store.
const PREFETCHED_LIMIT: usize = 1 << 16;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The store's name for a value: the prefix and the hex of its 32-byte index.
    fn key(&self, name: &[u8; 32]) -> Vec<u8> {
        let mut hex = String::with_capacity(64);
        crate::keys::push_hex(&mut hex, name);
        let mut key = self.prefix.clone();
        key.extend_from_slice(hex.as_bytes());
        key
    }

    /// The name a session of (version, context, id) has under the newest key.
    fn newest_name(&self, version: u16, sid_ctx: &SidCtx, id: &[u8]) -> [u8; 32] {
        self.keys.newest().index(version, sid_ctx.as_bytes(), id)
    }

    fn unsent(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], u64>> {
        self.unsent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `name` out of the unsent set: true if it was there (the caller, writer or
    /// claimer, now owns the ticket's one way out).
    fn take_unsent(&self, name: &[u8; 32]) -> bool {
        self.unsent().remove(name).is_some()
    }

    /// The commands of a job, each with the store key it touches.
    fn command(&self, job: &Job) -> Vec<(Vec<u8>, Cmd)> {
        match job {
            Job::Put {
                session,
                expires,
                ticket,
            } => {
                // A tracked ticket's name was made when it was queued.
                let name = ticket.unwrap_or_else(|| {
                    self.newest_name(
                        session.version().wire(),
                        session.sid_ctx(),
                        session.id().as_bytes(),
                    )
                });
                let sealed = value::plaintext(session)
                    .and_then(|plain| value::seal(&self.keys, &name, session.sid_ctx(), &plain));
                let Some(sealed) = sealed else {
                    debug!("a session OpenSSL's form cannot hold is not shared");
                    return Vec::new();
                };
                let key = self.key(&name);
                let mut set = redis::cmd("SET");
                // NX: a used ticket's tombstone is never overwritten by a late write. The
                // value outlives the session by the margin, and so does a tombstone that
                // keeps its time to live.
                set.arg(&key)
                    .arg(sealed)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(expires.saturating_add(self.margin));
                vec![(key, set)]
            }
            Job::Delete {
                version,
                sid_ctx,
                id,
            } => self
                .keys
                .all()
                .iter()
                .map(|k| {
                    let key = self.key(&k.index(*version, sid_ctx.as_bytes(), id));
                    let mut del = redis::cmd("DEL");
                    del.arg(&key);
                    (key, del)
                })
                .collect(),
        }
    }

    /// Summary of the nodes' breakers.
    fn breakers(&self) -> Breakers {
        let nodes = self.topology.nodes();
        Breakers {
            open: nodes.iter().filter(|n| n.breaker.is_open()).count() as u64,
            opens: nodes.iter().map(|n| n.breaker.opens()).sum(),
        }
    }
}

/// The runtime the store's client runs on, shut down when the last handle goes.
struct Engine {
    runtime: Option<Runtime>,
    handle: Handle,
    shared: Arc<Shared>,
    writes: mpsc::Sender<Job>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A fleet's shared second tier: sessions sealed in Redis or Valkey, attached to a cache
/// through its hooks ([`attach`](Self::attach)).
///
/// - A new session is written by a background writer (a bounded queue; full, it drops and
///   counts), sealed, with the session's expiry as the value's.
/// - An internal miss asks the store (TLS 1.2: `GET`); a hit fills the internal cache.
/// - A TLS 1.3 ticket is claimed in the store in one atomic step (`SET … GET`, leaving a
///   tombstone), whether this server's internal cache had it or not, so that it resumes once
///   in the whole fleet.
/// - A removal deletes it from the store too.
///
/// Every call a handshake makes waits at most the budget; a store that is slow, down or
/// answers garbage makes a miss, counted, never an error. After repeated failures a breaker
/// skips the store until a background ping gets an answer.
#[derive(Clone)]
pub struct Tier(Arc<Engine>);

impl Tier {
    /// Starts the tier's runtime, writer and prober. Nothing waits for the store: a store
    /// that is not up yet is a miss until it is.
    pub fn new(config: TierConfig) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sesscache-redis")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let handle = runtime.handle().clone();
        let dial = Dial {
            urls: &config.urls,
            password: config.password.as_ref().map(|p| p.as_str()),
            connect_timeout: config.connect_timeout,
            // A request may live as long as the longer of the two budgets, never longer.
            response_timeout: config.write_budget.max(config.budget),
        };
        let conn = store::connect(&dial, &handle)?;
        let first = if config.urls.len() == 1 {
            "store"
        } else {
            "cluster"
        };
        let shared = Arc::new(Shared {
            conn,
            topology: Topology::new(config.breaker_failures, first),
            keys: config.keys,
            prefix: config.prefix.into_bytes(),
            budget: config.budget,
            write_budget: config.write_budget,
            connect_timeout: config.connect_timeout,
            margin: config.tombstone_margin.as_secs(),
            counters: Counters::default(),
            queued: AtomicU64::new(0),
            unsent: Mutex::new(HashMap::new()),
            prefetched: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        });
        let (writes, queue) = mpsc::channel(config.queue.max(1));
        handle.spawn(writer(shared.clone(), queue));
        handle.spawn(prober(shared.clone(), config.probe_interval));
        Ok(Self(Arc::new(Engine {
            runtime: Some(runtime),
            handle,
            shared,
            writes,
        })))
    }

    /// Sets `cache`'s new-session, get-session, take-session, remove-session and prefetch
    /// callbacks to this tier's (replacing any set before). The callbacks hold the tier, not
    /// the cache.
    pub fn attach(&self, cache: &SessionCache) {
        let tier = self.clone();
        cache.set_new_session_callback(Some(Arc::new(move |cache: &SessionCache, s: &Session| {
            tier.save(cache, s);
        })));
        let tier = self.clone();
        cache.set_get_session_callback(Some(Arc::new(
            move |cache: &SessionCache, request: &LookupRequest<'_>| {
                tier.fetch(cache.now(), request)
            },
        )));
        let tier = self.clone();
        cache.set_take_session_callback(Some(Arc::new(
            move |cache: &SessionCache, request: &LookupRequest<'_>, local: Option<Session>| {
                tier.claim(cache.now(), request, local)
            },
        )));
        let tier = self.clone();
        cache.set_prefetch_callback(Some(Arc::new(
            move |cache: &SessionCache, request: &LookupRequest<'_>, held: Option<Session>| {
                tier.prefetch(cache.now(), request, held)
            },
        )));
        let tier = self.clone();
        cache.set_remove_session_callback(Some(Arc::new(
            move |_: &SessionCache, s: &Session, cause: RemovalCause| match cause {
                // A removal (a connection that ended badly) removes it from the fleet.
                RemovalCause::Removed => tier.delete(s),
                // A taken ticket is claimed by the take-session callback, which needs to
                // know whether its write left.
                RemovalCause::Taken => {}
                // An expired ticket whose write never left is gone for good.
                RemovalCause::Expired => tier.forget_unsent(s),
                // Evictions and flushes are this server's business: the fleet keeps the
                // session (the store expires it), and a ticket's queued write still goes.
                _ => {}
            },
        )));
    }

    /// The name this server writes a session under in the store (the configured prefix and
    /// a keyed hash of the kind, version, session id context and id under the newest key):
    /// for operators looking into the store, and for tests.
    pub fn name_of(&self, version: ProtocolVersion, sid_ctx: &SidCtx, id: &[u8]) -> Vec<u8> {
        let shared = &self.0.shared;
        shared.key(&shared.newest_name(version.wire(), sid_ctx, id))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TierStats {
        let shared = &self.0.shared;
        let mut stats = shared
            .counters
            .snapshot(shared.breakers(), shared.queued.load(Ordering::Relaxed));
        stats.refused += shared.conn.refused.load(Ordering::Relaxed);
        stats
    }

    /// Whether the store answers a `PING` within `timeout` (retrying while a cluster is still
    /// connecting); not counted, and the breaker is not told. For startup checks and tests.
    pub fn ping(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(conn) = self.0.shared.conn.get() {
                let left = deadline.saturating_duration_since(Instant::now());
                let ping = conn.run_all(vec![redis::cmd("PING")]);
                if let Some(Ok(_)) = store::wait_on(&self.0.handle, left, ping) {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every queued write and delete has been tried, at most `timeout`; returns
    /// whether the queue is empty.
    pub fn flush_writes(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.0.shared.queued.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    fn enqueue(&self, job: Job) {
        let shared = &self.0.shared;
        let is_delete = matches!(job, Job::Delete { .. });
        shared.queued.fetch_add(1, Ordering::AcqRel);
        if self.0.writes.try_send(job).is_err() {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            if is_delete {
                shared.counters.dropped_deletes.inc();
            } else {
                // A dropped ticket stays in the unsent set: it never left.
                shared.counters.dropped_writes.inc();
            }
        }
    }

    /// The new-session hook: queue the session for the writer; a TLS 1.3 ticket's name goes
    /// into the unsent set first.
    fn save(&self, cache: &SessionCache, session: &Session) {
        if session.id().is_empty() || !session.is_resumable() {
            return;
        }
        let Some(expires) = system_expiry(cache.now(), session) else {
            return;
        };
        let shared = &self.0.shared;
        let ticket = session.version().is_tls13_or_later().then(|| {
            shared.newest_name(
                session.version().wire(),
                session.sid_ctx(),
                session.id().as_bytes(),
            )
        });
        // Past the limit the ticket is not tracked, so counts as sent: its claim asks the
        // store.
        let ticket = ticket.filter(|name| {
            let mut unsent = shared.unsent();
            unsent.len() < UNSENT_LIMIT && unsent.insert(*name, expires).is_none()
        });
        self.enqueue(Job::Put {
            session: session.clone(),
            expires,
            ticket,
        });
    }

    fn delete(&self, session: &Session) {
        if session.id().is_empty() {
            return;
        }
        self.forget_unsent(session);
        self.enqueue(Job::Delete {
            version: session.version().wire(),
            sid_ctx: *session.sid_ctx(),
            id: Zeroizing::new(session.id().as_bytes().to_vec()),
        });
    }

    /// A session gone from this server: if it was a ticket whose write never left, nothing
    /// may ever claim it without the store again.
    fn forget_unsent(&self, session: &Session) {
        if session.version().is_tls13_or_later() {
            let shared = &self.0.shared;
            let name = shared.newest_name(
                session.version().wire(),
                session.sid_ctx(),
                session.id().as_bytes(),
            );
            shared.take_unsent(&name);
        }
    }

    /// A store call on the handshake's path: each command to the node that holds its key,
    /// all within the budget (see [`store::call_each`]). `None` if there is no connection yet
    /// (a cluster that has not answered).
    fn call(&self, nodes: &[Arc<Node>], cmds: Vec<Cmd>) -> Option<Vec<Called>> {
        let shared = &self.0.shared;
        let Some(conn) = shared.conn.get() else {
            shared.counters.errors.inc();
            return None;
        };
        Some(store::call_each(
            &self.0.handle,
            shared.budget,
            &shared.counters,
            conn,
            nodes,
            cmds,
        ))
    }

    /// The node that holds `name`, unless its breaker is open (the lookup is then counted as
    /// skipped): checked before any work for the store is done.
    fn healthy_node(&self, key: &[u8]) -> Option<Arc<Node>> {
        let node = self.0.shared.topology.node_for(key);
        if node.breaker.is_open() {
            self.0.shared.counters.skipped.inc();
            return None;
        }
        Some(node)
    }

    /// Whether this offer may ask the store: only a handshake's first does.
    fn first_offer(&self, request: &LookupRequest<'_>) -> bool {
        if !request.first_offer {
            self.0.shared.counters.later_offers.inc();
        }
        request.first_offer
    }

    /// The names a session may have in the store: one per key, newest first.
    fn names(&self, request: &LookupRequest<'_>) -> Vec<[u8; 32]> {
        let version = request.version.wire();
        self.0
            .shared
            .keys
            .all()
            .iter()
            .map(|k| k.index(version, request.sid_ctx.as_bytes(), request.id))
            .collect()
    }

    /// Asks the store for each name with `command` (all at once), and opens the first value
    /// found.
    fn ask(
        &self,
        now: u64,
        request: &LookupRequest<'_>,
        command: impl Fn(Vec<u8>) -> Cmd,
    ) -> Result<Session, Miss> {
        let shared = &self.0.shared;
        if !self.first_offer(request) {
            return Err(Miss::UnknownId);
        }
        // Each key's name, on its node; a name whose node is skipped is not asked.
        let mut asked = Vec::new();
        for name in self.names(request) {
            let key = shared.key(&name);
            let node = shared.topology.node_for(&key);
            if !node.breaker.is_open() {
                asked.push((name, key, node));
            }
        }
        if asked.is_empty() {
            shared.counters.skipped.inc();
            return Err(Miss::StoreUnavailable);
        }
        let mut complete = asked.len() == shared.keys.all().len();
        let nodes: Vec<Arc<Node>> = asked.iter().map(|(_, _, node)| node.clone()).collect();
        let cmds: Vec<Cmd> = asked
            .iter()
            .map(|(_, key, _)| command(key.clone()))
            .collect();
        let Some(replies) = self.call(&nodes, cmds) else {
            return Err(Miss::StoreUnavailable);
        };
        for ((name, _, _), reply) in asked.iter().zip(replies) {
            let found = match reply {
                Called::Answered(value) => bytes(value),
                Called::Failed | Called::TimedOut => {
                    complete = false;
                    None
                }
            };
            let Some(found) = found else { continue };
            return match Stored::classify(found) {
                Stored::Tombstone => {
                    shared.counters.already_used.inc();
                    trace!("the store says the ticket was used");
                    Err(Miss::AlreadyUsed)
                }
                Stored::Sealed(sealed) => self.open(now, name, &request.sid_ctx, &sealed),
            };
        }
        if !complete {
            // A name the store did not answer for (or was not asked) may hold the session.
            return Err(Miss::StoreUnavailable);
        }
        shared.counters.remote_misses.inc();
        trace!("remote miss");
        Err(Miss::UnknownId)
    }

    fn open(
        &self,
        now: u64,
        name: &[u8; 32],
        sid_ctx: &SidCtx,
        sealed: &[u8],
    ) -> Result<Session, Miss> {
        let shared = &self.0.shared;
        match value::open(&shared.keys, name, sid_ctx, sealed, now) {
            Ok(session) => {
                shared.counters.remote_hits.inc();
                trace!("remote hit");
                Ok(session)
            }
            Err(why) => {
                shared.counters.open_failures.inc();
                debug!(?why, "a value in the store did not open: a miss");
                // Sealed under a key this server no longer has, or damaged: nothing this
                // server can resume.
                Err(Miss::UnknownId)
            }
        }
    }

    /// The prefetch hook: starts, on the tier's runtime, what the get- or take-session hook
    /// would ask the store for `request` (the claim, for a TLS 1.3 ticket), unless a
    /// prefetch of the same name is in flight (then waits for that one) or answered. The
    /// answer waits in `prefetched` for the handshake's lookup. The store call runs on the
    /// tier's own blocking threads, within the budget; the returned future only waits.
    fn prefetch(
        &self,
        now: u64,
        request: &LookupRequest<'_>,
        held: Option<Session>,
    ) -> Option<session_cache::PrefetchFuture> {
        let shared = &self.0.shared;
        let take = request.version.is_tls13_or_later();
        let name = shared.newest_name(request.version.wire(), &request.sid_ctx, request.id);
        if held.is_some() && (!take || lock(&shared.unsent).contains_key(&name)) {
            // Held here and needing no store: a TLS 1.2 session, or a ticket whose write
            // never left.
            return None;
        }
        let mut waiting = {
            // The answer moves from `inflight` to `prefetched` under both locks, so both are
            // read under the first: a prefetch never misses an answer in passing and asks the
            // store a second time (for a ticket, a second claim that would find it used).
            let mut inflight = lock(&shared.inflight);
            if let Some((_, _, lookups)) = lock(&shared.prefetched).get_mut(&name) {
                *lookups += 1;
                return None;
            }
            match inflight.get_mut(&name) {
                Some((rx, waiting)) => {
                    *waiting += 1;
                    rx.clone()
                }
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(false);
                    inflight.insert(name, (rx.clone(), 1));
                    let tier = self.clone();
                    let owned = Owned::of(request);
                    self.0.handle.spawn_blocking(move || {
                        let request = owned.request();
                        let found = if take {
                            let held_here = held.is_some();
                            tier.claim_from_store(now, &request, held).map(|session| {
                                if held_here {
                                    Prefetched::ClaimedHere
                                } else {
                                    Prefetched::Found(session)
                                }
                            })
                        } else {
                            tier.ask(now, &request, |key| {
                                let mut get = redis::cmd("GET");
                                get.arg(key);
                                get
                            })
                            .map(Prefetched::Found)
                        };
                        let found = found.unwrap_or_else(Prefetched::Missed);
                        let shared = &tier.0.shared;
                        {
                            let mut inflight = lock(&shared.inflight);
                            let lookups = inflight.remove(&name).map_or(1, |(_, n)| n);
                            let mut prefetched = lock(&shared.prefetched);
                            if prefetched.len() < PREFETCHED_LIMIT {
                                let until = Instant::now() + PREFETCHED_FOR;
                                prefetched.insert(name, (found, until, lookups));
                            }
                        }
                        let _ = tx.send(true);
                    });
                    rx
                }
            }
        };
        Some(Box::pin(async move {
            let _ = waiting.wait_for(|done| *done).await;
        }))
    }

    /// The answer a prefetch found for `request`, if one waits. Each prefetch's answer serves
    /// one lookup (a store's answer is not a cache of its own: the next handshake asks again);
    /// a TLS 1.3 ticket (`take`) resumes once, and the lookups after the first are told it was
    /// used.
    fn prefetched(&self, request: &LookupRequest<'_>, take: bool) -> Option<Prefetched> {
        let shared = &self.0.shared;
        let name = shared.newest_name(request.version.wire(), &request.sid_ctx, request.id);
        let mut prefetched = lock(&shared.prefetched);
        let (found, until, lookups) = prefetched.get_mut(&name)?;
        if *until <= Instant::now() {
            prefetched.remove(&name);
            return None;
        }
        let answer = found.clone();
        if take && !matches!(answer, Prefetched::Missed(_)) {
            *found = Prefetched::Missed(Miss::AlreadyUsed);
        }
        *lookups = lookups.saturating_sub(1);
        if *lookups == 0 {
            prefetched.remove(&name);
        }
        Some(answer)
    }

    /// The get-session hook: an internal miss takes what a prefetch found, or asks the store.
    fn fetch(&self, now: u64, request: &LookupRequest<'_>) -> Result<Session, Miss> {
        if let Some(found) = self.prefetched(request, false) {
            return match found {
                Prefetched::Found(session) => Ok(session),
                Prefetched::Missed(why) => Err(why),
                Prefetched::ClaimedHere => Err(Miss::UnknownId),
            };
        }
        self.ask(now, request, |key| {
            let mut get = redis::cmd("GET");
            get.arg(key);
            get
        })
    }

    /// The take-session hook: a TLS 1.3 ticket resumes once in the whole fleet.
    ///
    /// - Not held here: taken from the store if it is there, leaving a tombstone.
    /// - Held here, its write never sent: nobody else can have it; claimed here, and the
    ///   write is cancelled. No store call.
    /// - Held here and written: the store decides, and a store that has no value (restarted,
    ///   flushed, evicted) cannot show it unused, so it does not resume (fail closed).
    fn claim(
        &self,
        now: u64,
        request: &LookupRequest<'_>,
        local: Option<Session>,
    ) -> Result<Session, Miss> {
        // A prefetch already claimed it (or learnt why not): used up here, once.
        if let Some(found) = self.prefetched(request, true) {
            return match (found, local) {
                (Prefetched::Found(_) | Prefetched::ClaimedHere, Some(local)) => Ok(local),
                (Prefetched::Found(session), None) => Ok(session),
                (Prefetched::ClaimedHere, None) => Err(Miss::UnknownId),
                (Prefetched::Missed(why), _) => Err(why),
            };
        }
        self.claim_from_store(now, request, local)
    }

    /// [`claim`](Self::claim), asking the store.
    fn claim_from_store(
        &self,
        now: u64,
        request: &LookupRequest<'_>,
        local: Option<Session>,
    ) -> Result<Session, Miss> {
        let Some(local) = local else {
            // Not ours: take it from the store if it is there, leaving a tombstone with the
            // value's own expiry (XX: nothing is planted under a name the store lacks).
            return self.ask(now, request, |key| {
                let mut set = redis::cmd("SET");
                set.arg(key)
                    .arg(TOMBSTONE)
                    .arg("XX")
                    .arg("GET")
                    .arg("KEEPTTL");
                set
            });
        };
        let shared = &self.0.shared;
        let name = shared.newest_name(request.version.wire(), &request.sid_ctx, request.id);
        if shared.take_unsent(&name) {
            shared.counters.local_claims.inc();
            trace!("a ticket whose write never left: claimed here");
            return Ok(local);
        }
        if !self.first_offer(request) {
            return Err(Miss::UnknownId);
        }
        // Expired since the cache took it: gone.
        let expires = system_expiry(now, &local).ok_or(Miss::UnknownId)?;
        let key = shared.key(&name);
        let node = self.healthy_node(&key).ok_or(Miss::StoreUnavailable)?;
        let mut set = redis::cmd("SET");
        // The tombstone goes in unconditionally, so a write still on its way cannot bring
        // the ticket back.
        set.arg(key)
            .arg(TOMBSTONE)
            .arg("GET")
            .arg("EXAT")
            .arg(expires.saturating_add(shared.margin));
        // A store that cannot answer cannot say the ticket is unused: a full handshake.
        let answer = self
            .call(&[node], vec![set])
            .and_then(|mut replies| replies.pop());
        let Some(Called::Answered(before)) = answer else {
            return Err(Miss::StoreUnavailable);
        };
        match bytes(before).map(Stored::classify) {
            Some(Stored::Tombstone) => {
                shared.counters.already_used.inc();
                trace!("the store says the ticket was used");
                Err(Miss::AlreadyUsed)
            }
            Some(Stored::Sealed(_)) => Ok(local),
            None => {
                shared.counters.lost_tickets.inc();
                debug!("the store lost a ticket this server wrote: refused");
                Err(Miss::UnknownId)
            }
        }
    }
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("keys", &self.0.shared.keys)
            .field("budget", &self.0.shared.budget)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The bytes of a bulk reply; `None` for nil or anything else.
fn bytes(reply: Value) -> Option<Vec<u8>> {
    match reply {
        Value::BulkString(b) => Some(b),
        _ => None,
    }
}

/// When `session` expires, on the system clock (Unix seconds): its remaining lifetime by the
/// cache's clock, from now. In a server both clocks are the system's and this is the
/// session's time plus its timeout; a simulation's clock may run faster. `None` once expired.
fn system_expiry(now: u64, session: &Session) -> Option<u64> {
    let left = session.expiry().checked_sub(now).filter(|&s| s > 0)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(now.saturating_add(left))
}

/// Drops the unsent tickets that have expired (a dropped write's ticket that this server no
/// longer holds, or never held: its mode did not store it).
fn sweep_unsent(shared: &Shared) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    shared.unsent().retain(|_, expires| *expires >= now);
}

fn is_ticket(job: &Job) -> bool {
    matches!(
        job,
        Job::Put {
            ticket: Some(_),
            ..
        }
    )
}

/// The writer: takes jobs in batches and runs each batch at once (one pipeline on a single
/// server), skipping nodes whose writes fail.
async fn writer(shared: Arc<Shared>, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(64);
    while queue.recv_many(&mut batch, 64).await > 0 {
        let n = batch.len() as u64;
        let conn = shared.conn.get();
        let mut cmds = Vec::with_capacity(batch.len());
        let mut sent: Vec<(Arc<Node>, bool)> = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            let is_delete = matches!(job, Job::Delete { .. });
            let dropped = || {
                if is_delete {
                    shared.counters.dropped_deletes.inc();
                } else {
                    shared.counters.dropped_writes.inc();
                }
            };
            for (key, cmd) in shared.command(&job) {
                let node = shared.topology.node_for(&key);
                // A ticket is held back while lookups skip its node: no server could claim
                // it there in time, and unsent, this server may still resume it itself.
                let held_back = is_ticket(&job) && node.breaker.is_open();
                if conn.is_none() || node.breaker.writes_open() || held_back {
                    // Not sent: a ticket stays in the unsent set.
                    dropped();
                    continue;
                }
                if let Job::Put {
                    ticket: Some(name), ..
                } = &job
                {
                    // From here the write may reach the store: a claim must ask it. A
                    // ticket claimed here meanwhile is not written at all.
                    if !shared.take_unsent(name) {
                        continue;
                    }
                }
                cmds.push(cmd);
                sent.push((node, is_delete));
            }
        }
        if let (Some(conn), false) = (conn, cmds.is_empty()) {
            let _counted = InFlight::start(shared.counters.in_flight.clone());
            let replies = tokio::time::timeout(shared.write_budget, conn.run_each(cmds)).await;
            let mut failed: Vec<&str> = Vec::new();
            for (i, (node, is_delete)) in sent.iter().enumerate() {
                match replies.as_ref().map(|r| &r[i]) {
                    Ok(Ok(_)) => {
                        node.breaker.write_success();
                        if *is_delete {
                            shared.counters.deletes.inc();
                        } else {
                            shared.counters.writes.inc();
                        }
                    }
                    outcome => {
                        shared.counters.write_errors.inc();
                        if let Ok(Err(e)) = outcome {
                            if store::is_refusal(e) {
                                shared.counters.refused.inc();
                                shared.counters.refusal_log.error(e);
                            } else {
                                debug!(kind = ?e.kind(), "a write failed");
                            }
                        }
                        if !failed.contains(&node.addr.as_str()) {
                            failed.push(&node.addr);
                            node.breaker.write_failure(&node.addr);
                        }
                    }
                }
            }
        }
        shared.queued.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The prober: learns a cluster's slot map (now and then), and pings each node whose breaker
/// is open: an answer within the budget closes it; a slower one lets writes resume.
async fn prober(shared: Arc<Shared>, every: Duration) {
    let mut round: u64 = 0;
    let mut mapped = false;
    loop {
        if let Some(conn) = shared.conn.get() {
            if round == 0 && !shared.conn.is_cluster() {
                // Connects now, so that the first handshake's lookup does not pay for it.
                let ping = conn.clone().run_on_any(redis::cmd("PING"));
                let _ = tokio::time::timeout(shared.connect_timeout, ping).await;
            }
            sweep_unsent(&shared);
            let now = Instant::now();
            lock(&shared.prefetched).retain(|_, (_, until, _)| *until > now);
            if shared.conn.is_cluster() && (!mapped || round.is_multiple_of(20)) {
                let _counted = InFlight::start(shared.counters.in_flight.clone());
                let mut slots = redis::cmd("CLUSTER");
                slots.arg("SLOTS");
                match tokio::time::timeout(shared.connect_timeout, conn.clone().run_on_any(slots))
                    .await
                {
                    Ok(Ok(reply)) => {
                        shared.topology.update(&reply);
                        mapped = true;
                    }
                    Ok(Err(e)) if store::is_refusal(&e) => {
                        shared.counters.refused.inc();
                        shared.counters.refusal_log.error(&e);
                    }
                    _ => {}
                }
            }
            // Every node is pinged each round: its round trip is what a lookup costs, and
            // an open breaker closes on an answer within the budget.
            let mut slowest = Duration::ZERO;
            for node in shared.topology.nodes() {
                let _counted = InFlight::start(shared.counters.in_flight.clone());
                let began = Instant::now();
                let ping = conn.clone().run_on(&node.addr, redis::cmd("PING"));
                let answered = matches!(
                    tokio::time::timeout(shared.write_budget, ping).await,
                    Ok(Ok(_))
                );
                let took = began.elapsed();
                slowest = slowest.max(took);
                if !answered {
                    continue;
                }
                if took <= shared.budget {
                    node.breaker.close(&node.addr);
                } else {
                    node.breaker.close_writes();
                    shared
                        .counters
                        .slow_log
                        .warn_slow_node(&node.addr, took, shared.budget);
                }
            }
            shared
                .counters
                .round_trip_us
                .store(slowest.as_micros() as u64, Ordering::Relaxed);
        }
        round += 1;
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_shows_no_password() {
        let keys = KeyRing::parse(&KeyRing::generate_line().unwrap()).unwrap();
        let mut config = TierConfig::new(
            vec![
                "redis://u:hunter2@10.0.0.1:6379".into(),
                "redis://u:hun#ter2@10.0.0.2:6379/?password=hunter2".into(),
            ],
            keys,
        );
        config.password = Some(Zeroizing::new("hunter2".into()));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hun#"),
            "{shown}"
        );
        assert!(shown.contains("10.0.0.2:6379"), "{shown}");
    }
}
