//! [`Tier`]: the store behind a cache's hooks, and the writer and prober off the handshake's
//! path.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Cmd, Value};
use session_cache::{LookupRequest, Miss, RemovalCause, SessionCache};
use session_core::{ProtocolVersion, Session, SidCtx};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc;
use tracing::{debug, trace};
use zeroize::Zeroizing;

use crate::keys::KeyRing;
use crate::stats::{BreakerState, Counters, TierStats};
use crate::store::{self, Breaker, Conn, Slot};
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
    /// Failures in a row (timeouts or errors) that open the breaker.
    pub breaker_failures: u32,
    /// How often the prober pings the store while the breaker is open.
    pub probe_interval: Duration,
    /// What every name in the store starts with.
    pub prefix: String,
    /// The store's password (`AUTH`), given to every URL's connection in place of one in the
    /// URL; `None` (the default) leaves the URLs as they are. Kept out of the URLs so that it
    /// need not be on a command line; zeroized when dropped, never in Debug output.
    pub password: Option<Zeroizing<String>>,
}

impl fmt::Debug for TierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TierConfig")
            .field("urls", &self.urls)
            .field("keys", &self.keys)
            .field("budget", &self.budget)
            .field("write_budget", &self.write_budget)
            .field("connect_timeout", &self.connect_timeout)
            .field("queue", &self.queue)
            .field("breaker_failures", &self.breaker_failures)
            .field("probe_interval", &self.probe_interval)
            .field("prefix", &self.prefix)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl TierConfig {
    /// A configuration with the defaults: a 5 ms budget, a queue of 4096, the breaker open
    /// after 5 failures in a row and probed every 500 ms, names under `sesscache:`, no
    /// password beyond what the URLs say.
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
            password: None,
        }
    }
}

/// A write or delete for the writer.
enum Job {
    /// Seal and write a new session, to expire at `expires` (Unix seconds, the system
    /// clock's).
    Put { session: Session, expires: u64 },
    /// Delete a session's value under every key's name.
    Delete {
        version: u16,
        id: Zeroizing<Vec<u8>>,
    },
}

/// What the handshake's path, the writer and the prober share.
struct Shared {
    conn: Arc<Slot>,
    keys: KeyRing,
    prefix: Vec<u8>,
    budget: Duration,
    write_budget: Duration,
    breaker: Breaker,
    counters: Counters,
    queued: AtomicU64,
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

    fn command(&self, job: &Job) -> Vec<Cmd> {
        match job {
            Job::Put { session, expires } => {
                let name = self
                    .keys
                    .newest()
                    .index(session.version().wire(), session.id().as_bytes());
                let sealed = value::plaintext(session)
                    .and_then(|plain| value::seal(&self.keys, &name, session.sid_ctx(), &plain));
                let Some(sealed) = sealed else {
                    debug!("a session OpenSSL's form cannot hold is not shared");
                    return Vec::new();
                };
                let mut set = redis::cmd("SET");
                // NX: a used ticket's tombstone is never overwritten by a late write.
                set.arg(self.key(&name))
                    .arg(sealed)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(*expires);
                vec![set]
            }
            Job::Delete { version, id } => self
                .keys
                .all()
                .iter()
                .map(|k| {
                    let mut del = redis::cmd("DEL");
                    del.arg(self.key(&k.index(*version, id)));
                    del
                })
                .collect(),
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
        let conn = store::connect(
            &config.urls,
            config.password.as_deref().map(String::as_str),
            config.connect_timeout,
            &handle,
        )?;
        let shared = Arc::new(Shared {
            conn,
            keys: config.keys,
            prefix: config.prefix.into_bytes(),
            budget: config.budget,
            write_budget: config.write_budget,
            breaker: Breaker::new(config.breaker_failures),
            counters: Counters::default(),
            queued: AtomicU64::new(0),
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

    /// Sets `cache`'s new-session, get-session, take-session and remove-session callbacks to
    /// this tier's (replacing any set before). The callbacks hold the tier, not the cache.
    pub fn attach(&self, cache: &SessionCache) {
        let tier = self.clone();
        cache.set_new_session_callback(Some(Arc::new(move |cache: &SessionCache, s: &Session| {
            tier.save(cache, s);
        })));
        let tier = self.clone();
        cache.set_get_session_callback(Some(Arc::new(
            move |cache: &SessionCache, request: &LookupRequest<'_>| tier.fetch(cache, request),
        )));
        let tier = self.clone();
        cache.set_take_session_callback(Some(Arc::new(
            move |cache: &SessionCache, request: &LookupRequest<'_>, local: Option<Session>| {
                tier.claim(cache, request, local)
            },
        )));
        let tier = self.clone();
        cache.set_remove_session_callback(Some(Arc::new(
            move |_: &SessionCache, s: &Session, cause: RemovalCause| {
                // Evictions and flushes are this server's business: the fleet keeps the
                // session. A lookup that found it expired leaves it to the store's own
                // expiry; a taken ticket was claimed in the store already.
                if cause == RemovalCause::Removed {
                    tier.delete(s);
                }
            },
        )));
    }

    /// The name this server writes a session under in the store (the configured prefix and
    /// a keyed hash of the version and id under the newest key): for operators looking into
    /// the store, and for tests.
    pub fn name_of(&self, version: ProtocolVersion, id: &[u8]) -> Vec<u8> {
        let shared = &self.0.shared;
        shared.key(&shared.keys.newest().index(version.wire(), id))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TierStats {
        let shared = &self.0.shared;
        let breaker = if shared.breaker.is_open() {
            BreakerState::Open
        } else {
            BreakerState::Closed
        };
        shared.counters.snapshot(
            breaker,
            shared.breaker.opens(),
            shared.queued.load(Ordering::Relaxed),
        )
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
        if shared.breaker.is_open() {
            shared.counters.dropped_writes.inc();
            return;
        }
        shared.queued.fetch_add(1, Ordering::AcqRel);
        if self.0.writes.try_send(job).is_err() {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            shared.counters.dropped_writes.inc();
        }
    }

    /// The new-session hook: queue the session for the writer.
    fn save(&self, cache: &SessionCache, session: &Session) {
        if session.id().is_empty() || !session.is_resumable() {
            return;
        }
        if let Some(expires) = system_expiry(cache, session) {
            self.enqueue(Job::Put {
                session: session.clone(),
                expires,
            });
        }
    }

    fn delete(&self, session: &Session) {
        if session.id().is_empty() {
            return;
        }
        self.enqueue(Job::Delete {
            version: session.version().wire(),
            id: Zeroizing::new(session.id().as_bytes().to_vec()),
        });
    }

    /// A store call on the handshake's path (see [`store::call`]); `None` for anything but an
    /// answer within the budget.
    fn call<T, F>(&self, work: impl FnOnce(Conn) -> F) -> Option<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let shared = &self.0.shared;
        let Some(conn) = shared.conn.get() else {
            // A cluster that has not answered yet.
            shared.counters.errors.inc();
            return None;
        };
        store::call(
            &self.0.handle,
            shared.budget,
            &shared.breaker,
            &shared.counters,
            work(conn),
        )
    }

    /// Whether the breaker is open, counting the lookup as skipped: checked before any work
    /// for the store is done (naming the value is a keyed hash per key).
    fn skipped(&self) -> bool {
        let shared = &self.0.shared;
        if shared.breaker.is_open() {
            shared.counters.skipped.inc();
            return true;
        }
        false
    }

    /// The names a session may have in the store: one per key, newest first.
    fn names(&self, request: &LookupRequest<'_>) -> Vec<[u8; 32]> {
        let version = request.version.wire();
        self.0
            .shared
            .keys
            .all()
            .iter()
            .map(|k| k.index(version, request.id))
            .collect()
    }

    /// Asks the store for each name with `command` (all at once), and opens the first value
    /// found.
    fn ask(
        &self,
        cache: &SessionCache,
        request: &LookupRequest<'_>,
        command: impl Fn(Vec<u8>) -> Cmd,
    ) -> Result<Session, Miss> {
        let shared = &self.0.shared;
        if self.skipped() {
            return Err(Miss::StoreUnavailable);
        }
        let names = self.names(request);
        let cmds: Vec<Cmd> = names.iter().map(|n| command(shared.key(n))).collect();
        let replies = self
            .call(move |conn| conn.run_all(cmds))
            .ok_or(Miss::StoreUnavailable)?;
        for (name, reply) in names.iter().zip(replies) {
            let Some(found) = bytes(reply) else { continue };
            return match Stored::classify(found) {
                Stored::Tombstone => {
                    shared.counters.already_used.inc();
                    trace!("the store says the ticket was used");
                    Err(Miss::AlreadyUsed)
                }
                Stored::Sealed(sealed) => self.open(cache, name, &request.sid_ctx, &sealed),
            };
        }
        shared.counters.remote_misses.inc();
        trace!("remote miss");
        Err(Miss::UnknownId)
    }

    fn open(
        &self,
        cache: &SessionCache,
        name: &[u8; 32],
        sid_ctx: &SidCtx,
        sealed: &[u8],
    ) -> Result<Session, Miss> {
        let shared = &self.0.shared;
        match value::open(&shared.keys, name, sid_ctx, sealed, cache.now()) {
            Ok(session) => {
                shared.counters.remote_hits.inc();
                trace!("remote hit");
                Ok(session)
            }
            Err(why) => {
                shared.counters.open_failures.inc();
                debug!(?why, "a value in the store did not open: a miss");
                // Sealed under a key this server no longer has, for another context, or
                // damaged: nothing this server can resume.
                Err(Miss::UnknownId)
            }
        }
    }

    /// The get-session hook: an internal miss asks the store.
    fn fetch(&self, cache: &SessionCache, request: &LookupRequest<'_>) -> Result<Session, Miss> {
        self.ask(cache, request, |key| {
            let mut get = redis::cmd("GET");
            get.arg(key);
            get
        })
    }

    /// The take-session hook: a TLS 1.3 ticket is claimed in the store, whether this server
    /// took it from its own cache (`local`) or not.
    fn claim(
        &self,
        cache: &SessionCache,
        request: &LookupRequest<'_>,
        local: Option<Session>,
    ) -> Result<Session, Miss> {
        let Some(local) = local else {
            // Not ours: take it from the store if it is there, leaving a tombstone with the
            // ticket's own expiry (XX: nothing is planted under a name the store lacks).
            return self.ask(cache, request, |key| {
                let mut set = redis::cmd("SET");
                set.arg(key)
                    .arg(TOMBSTONE)
                    .arg("XX")
                    .arg("GET")
                    .arg("KEEPTTL");
                set
            });
        };
        // Ours: the store decides whether it was used elsewhere. The tombstone goes in
        // unconditionally, so a write still on its way cannot bring the ticket back.
        let shared = &self.0.shared;
        if self.skipped() {
            return Err(Miss::StoreUnavailable);
        }
        // Expired since the cache took it: gone.
        let expires = system_expiry(cache, &local).ok_or(Miss::UnknownId)?;
        let name = shared
            .keys
            .newest()
            .index(request.version.wire(), request.id);
        let mut set = redis::cmd("SET");
        set.arg(shared.key(&name))
            .arg(TOMBSTONE)
            .arg("GET")
            .arg("EXAT")
            .arg(expires);
        // A store that cannot answer cannot say the ticket is unused: a full handshake.
        let before = self
            .call(move |conn| conn.run_all(vec![set]))
            .ok_or(Miss::StoreUnavailable)?;
        match before
            .into_iter()
            .next()
            .and_then(bytes)
            .map(Stored::classify)
        {
            Some(Stored::Tombstone) => {
                shared.counters.already_used.inc();
                trace!("the store says the ticket was used");
                Err(Miss::AlreadyUsed)
            }
            Some(Stored::Sealed(_)) | None => Ok(local),
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
fn system_expiry(cache: &SessionCache, session: &Session) -> Option<u64> {
    let left = session
        .expiry()
        .checked_sub(cache.now())
        .filter(|&s| s > 0)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(now.saturating_add(left))
}

/// The writer: takes jobs in batches and runs each batch as one pipeline.
async fn writer(shared: Arc<Shared>, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(64);
    while queue.recv_many(&mut batch, 64).await > 0 {
        let n = batch.len() as u64;
        let (puts, deletes) = batch.iter().fold((0, 0), |(p, d), job| match job {
            Job::Put { .. } => (p + 1, d),
            Job::Delete { .. } => (p, d + 1),
        });
        let conn = shared.conn.get().filter(|_| !shared.breaker.is_open());
        match conn {
            None => shared.counters.dropped_writes.add(n),
            Some(conn) => {
                let cmds: Vec<Cmd> = batch.iter().flat_map(|job| shared.command(job)).collect();
                batch.clear();
                match tokio::time::timeout(shared.write_budget, conn.run_all(cmds)).await {
                    Ok(Ok(_)) => {
                        shared.breaker.success();
                        shared.counters.writes.add(puts);
                        shared.counters.deletes.add(deletes);
                    }
                    failed => {
                        let error = failed.ok().and_then(Result::err).map(|e| e.kind());
                        debug!(?error, "a batch of writes failed or timed out");
                        shared.counters.write_errors.add(n);
                        shared.breaker.failure();
                    }
                }
            }
        }
        batch.clear();
        shared.queued.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The prober: while the breaker is open, pings the store now and then; the first answer
/// closes it.
async fn prober(shared: Arc<Shared>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if !shared.breaker.is_open() {
            continue;
        }
        let Some(conn) = shared.conn.get() else {
            continue;
        };
        let ping = conn.run_all(vec![redis::cmd("PING")]);
        if let Ok(Ok(_)) =
            tokio::time::timeout(shared.budget.max(Duration::from_millis(50)), ping).await
        {
            shared.breaker.success();
        }
    }
}
