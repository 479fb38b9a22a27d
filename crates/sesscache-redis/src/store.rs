//! The store: a connection to one Redis/Valkey server or to a Redis Cluster, the health of
//! each of its nodes (a circuit breaker per node), and the one way a handshake's thread calls
//! it, with a budget.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, RedisError, RedisResult, Value};
use tokio::runtime::Handle;
use tracing::{debug, error, info, warn};

use crate::stats::Counters;
use crate::Error;

/// A connection to the store: both kinds are cheap handles to one multiplexed connection
/// (per node) that reconnects by itself.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Runs commands and returns their replies in order: one pipeline on a single server;
    /// on a cluster, each command on its own (their keys are in different slots), all at once
    /// on this future (nothing is spawned: dropping the future drops every request).
    pub(crate) async fn run_all(self, cmds: Vec<Cmd>) -> RedisResult<Vec<Value>> {
        self.run_each(cmds).await.into_iter().collect()
    }

    /// Like [`run_all`](Self::run_all), with each command's own result: on a cluster one
    /// node's failure does not hide the others' answers.
    pub(crate) async fn run_each(self, cmds: Vec<Cmd>) -> Vec<RedisResult<Value>> {
        match self {
            Conn::Single(mut conn) => {
                let n = cmds.len();
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                match pipe.query_async::<Vec<Value>>(&mut conn).await {
                    Ok(values) => values.into_iter().map(Ok).collect(),
                    Err(e) => {
                        let mut out = Vec::with_capacity(n);
                        out.push(Err(e));
                        out.resize_with(n, || {
                            Err(RedisError::from((
                                redis::ErrorKind::Io,
                                "the pipeline failed",
                            )))
                        });
                        out
                    }
                }
            }
            Conn::Cluster(conn) => {
                let calls = cmds.into_iter().map(|cmd| {
                    let mut conn = conn.clone();
                    async move { cmd.query_async::<Value>(&mut conn).await }
                });
                futures_util::future::join_all(calls).await
            }
        }
    }

    /// Runs one command on any node.
    pub(crate) async fn run_on_any(self, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(mut conn) => cmd.query_async(&mut conn).await,
            Conn::Cluster(mut conn) => cmd.query_async(&mut conn).await,
        }
    }

    /// Runs one command on the node at `addr` (`host:port`); on a single server, on it.
    pub(crate) async fn run_on(self, addr: &str, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(mut conn) => cmd.query_async(&mut conn).await,
            Conn::Cluster(mut conn) => {
                // The stand-in for a cluster whose slot map is not known yet: any node.
                let Some((host, port)) = split_addr(addr) else {
                    return cmd.query_async(&mut conn).await;
                };
                conn.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }),
                )
                .await
            }
        }
    }
}

fn split_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// Where the connection lives: set at once for a single server, by a background task for a
/// cluster (whose first connection needs the nodes to answer).
pub(crate) struct Slot {
    conn: RwLock<Option<Conn>>,
    /// Connection attempts the store refused (a cluster's, before there is a connection).
    pub(crate) refused: AtomicU64,
}

impl Slot {
    pub(crate) fn get(&self) -> Option<Conn> {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, conn: Conn) {
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.get(), Some(Conn::Cluster(_)))
    }
}

/// How the client reaches the store, and what each of its waits may cost.
pub(crate) struct Dial<'a> {
    pub(crate) urls: &'a [String],
    pub(crate) password: Option<&'a str>,
    pub(crate) connect_timeout: Duration,
    /// The most any one request may stay in flight inside the client: a request to a hung
    /// node is failed and dropped after it.
    pub(crate) response_timeout: Duration,
}

/// Opens the connection: one URL is a single server, several are a cluster's seed nodes.
/// Nothing here waits for the store; a cluster connects in the background, retrying.
pub(crate) fn connect(dial: &Dial<'_>, runtime: &Handle) -> Result<Arc<Slot>, Error> {
    let slot = Arc::new(Slot {
        conn: RwLock::new(None),
        refused: AtomicU64::new(0),
    });
    let bad_url = |url: &str, e: RedisError| Error::Url {
        url: redact(url),
        reason: redact(&e.to_string()),
    };
    let info = |url: &str| -> Result<redis::ConnectionInfo, Error> {
        let mut info =
            redis::IntoConnectionInfo::into_connection_info(url).map_err(|e| bad_url(url, e))?;
        if let Some(password) = dial.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        Ok(info)
    };
    match dial.urls {
        [] => return Err(Error::NoStore),
        [url] => {
            let client = redis::Client::open(info(url)?).map_err(|e| bad_url(url, e))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(dial.connect_timeout))
                .set_response_timeout(Some(dial.response_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            let _entered = runtime.enter();
            let conn = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| bad_url(url, e))?;
            slot.set(Conn::Single(conn));
        }
        nodes => {
            let infos = nodes
                .iter()
                .map(|url| info(url))
                .collect::<Result<Vec<_>, _>>()?;
            let client = ClusterClient::builder(infos)
                .connection_timeout(dial.connect_timeout)
                .response_timeout(dial.response_timeout)
                .retries(1)
                .build()
                .map_err(|e| bad_url(&nodes[0], e))?;
            let target = slot.clone();
            runtime.spawn(async move {
                let mut wait = Duration::from_millis(50);
                let said = Every::new(Duration::from_secs(10));
                loop {
                    match client.get_async_connection().await {
                        Ok(conn) => {
                            info!("connected to the store's cluster");
                            target.set(Conn::Cluster(conn));
                            return;
                        }
                        Err(e) => {
                            if is_refusal(&e) {
                                target.refused.fetch_add(1, Ordering::Relaxed);
                                said.error(&e);
                            } else {
                                debug!(kind = ?e.kind(), "the store's cluster did not answer yet");
                            }
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(2));
                        }
                    }
                }
            });
        }
    }
    Ok(slot)
}

/// A URL (or a message quoting one) with every password in it replaced: everything between
/// each `scheme://` and the last `@` of that word (user information, whatever characters the
/// password has), and the value of any query parameter whose name mentions a password
/// (`?password=`, `?pass=`). It may hide more than the password; never less.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        let after_user = match word.rfind('@') {
            Some(user_end) => {
                out.push_str("***@");
                &word[user_end + 1..]
            }
            None => word,
        };
        out.push_str(&redact_query(after_user));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn redact_query(tail: &str) -> String {
    let Some(q) = tail.find('?') else {
        return tail.to_owned();
    };
    let (path, query) = tail.split_at(q + 1);
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if name.to_ascii_lowercase().contains("pass") => {
                format!("{name}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{path}{}", params.join("&"))
}

/// Whether an error is the store refusing the tier (a password or ACL problem), which no
/// retry fixes.
pub(crate) fn is_refusal(e: &RedisError) -> bool {
    matches!(e.code(), Some("NOPERM" | "WRONGPASS" | "NOAUTH"))
        || e.kind() == redis::ErrorKind::AuthenticationFailed
}

/// One side of a breaker: failures in a row open it; a success resets the count.
struct Side {
    failures: AtomicU32,
    open: AtomicBool,
}

impl Side {
    fn new() -> Self {
        Self {
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
        }
    }
}

/// Whether a node is skipped. Lookups and writes are judged apart: lookups wait a
/// handshake's budget and writes a longer one, so a store slower than the budget fails every
/// lookup while its writes succeed. Either side opens after `threshold` failures in a row of
/// its own kind, and a success of one kind never resets the other's count. An open lookup
/// side makes handshakes skip the node; an open write side drops writes to it. The prober
/// closes a side when the node answers a ping within that side's budget.
pub(crate) struct Breaker {
    threshold: u32,
    lookups: Side,
    writes: Side,
    opens: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            lookups: Side::new(),
            writes: Side::new(),
            opens: AtomicU64::new(0),
        }
    }

    /// Whether lookups skip the node.
    pub(crate) fn is_open(&self) -> bool {
        self.lookups.open.load(Ordering::Acquire)
    }

    /// Whether writes to the node are dropped.
    pub(crate) fn writes_open(&self) -> bool {
        self.writes.open.load(Ordering::Acquire)
    }

    /// How often either side opened.
    pub(crate) fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    pub(crate) fn lookup_success(&self) {
        self.lookups.failures.store(0, Ordering::Relaxed);
    }

    pub(crate) fn write_success(&self) {
        self.writes.failures.store(0, Ordering::Relaxed);
    }

    pub(crate) fn lookup_failure(&self, node: &str) {
        self.fail(&self.lookups, node, "lookups");
    }

    pub(crate) fn write_failure(&self, node: &str) {
        self.fail(&self.writes, node, "writes");
    }

    fn fail(&self, side: &Side, node: &str, what: &str) {
        let n = side
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n >= self.threshold && !side.open.swap(true, Ordering::AcqRel) {
            self.opens.fetch_add(1, Ordering::Relaxed);
            warn!(
                failures = n,
                node, "the store keeps failing {what}: breaker open for this node"
            );
        }
    }

    /// The node answered a ping within the lookups' budget: an open side closes, half-way
    /// for lookups: a ping is not a lookup, so the first lookup failure after it opens the
    /// breaker again (a node that answers pings and refuses or stalls lookups costs one
    /// lookup a probe), and the first success closes it for good. A closed side's count of
    /// failures is left alone: only lookups (and writes) tell how they fare.
    pub(crate) fn close(&self, node: &str) {
        let mut closed = false;
        if self.lookups.open.load(Ordering::Acquire) {
            self.lookups
                .failures
                .store(self.threshold - 1, Ordering::Relaxed);
            closed |= self.lookups.open.swap(false, Ordering::AcqRel);
        }
        if self.writes.open.load(Ordering::Acquire) {
            self.writes.failures.store(0, Ordering::Relaxed);
            closed |= self.writes.open.swap(false, Ordering::AcqRel);
        }
        if closed {
            info!(node, "the store's node answers again: breaker closed");
        }
    }

    /// The node answered, but not within the lookups' budget: writes resume.
    pub(crate) fn close_writes(&self) {
        if self.writes.open.swap(false, Ordering::AcqRel) {
            self.writes.failures.store(0, Ordering::Relaxed);
        }
    }
}

/// One node of the store and its breaker.
pub(crate) struct Node {
    /// `host:port` on a cluster; the URL's host on a single server (for logs only).
    pub(crate) addr: String,
    pub(crate) breaker: Breaker,
}

/// Which node serves which hash slot: one node for a single server; for a cluster, the slot
/// ranges of `CLUSTER SLOTS`, refreshed by the prober. Until a cluster's map is known, every
/// key is on one stand-in node.
pub(crate) struct Topology {
    threshold: u32,
    nodes: RwLock<Map>,
}

struct Map {
    nodes: Vec<Arc<Node>>,
    /// (first slot, last slot, index into `nodes`), sorted.
    ranges: Vec<(u16, u16, usize)>,
}

impl Topology {
    pub(crate) fn new(threshold: u32, first: &str) -> Self {
        Self {
            threshold,
            nodes: RwLock::new(Map {
                nodes: vec![Arc::new(Node {
                    addr: first.to_owned(),
                    breaker: Breaker::new(threshold),
                })],
                ranges: Vec::new(),
            }),
        }
    }

    /// The node that holds `key`.
    pub(crate) fn node_for(&self, key: &[u8]) -> Arc<Node> {
        let map = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        if map.ranges.is_empty() {
            return map.nodes[0].clone();
        }
        let slot = key_slot(key);
        let at = map.ranges.partition_point(|&(_, last, _)| last < slot);
        match map.ranges.get(at) {
            Some(&(first, _, node)) if first <= slot => map.nodes[node].clone(),
            _ => map.nodes[0].clone(),
        }
    }

    /// Every node.
    pub(crate) fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .nodes
            .clone()
    }

    /// Replaces the slot map with `CLUSTER SLOTS`'s reply, keeping each known node's breaker.
    pub(crate) fn update(&self, reply: &Value) {
        let Value::Array(entries) = reply else { return };
        let mut map = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        let mut ranges = Vec::new();
        for entry in entries {
            let Value::Array(fields) = entry else {
                continue;
            };
            let (Some(Value::Int(first)), Some(Value::Int(last)), Some(Value::Array(primary))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                continue;
            };
            let host = match primary.first() {
                Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                Some(Value::SimpleString(h)) => h.clone(),
                _ => continue,
            };
            let Some(Value::Int(port)) = primary.get(1) else {
                continue;
            };
            let addr = format!("{host}:{port}");
            let index = match nodes.iter().position(|n| n.addr == addr) {
                Some(i) => i,
                None => {
                    let known = map.nodes.iter().find(|n| n.addr == addr).cloned();
                    nodes.push(known.unwrap_or_else(|| {
                        Arc::new(Node {
                            addr: addr.clone(),
                            breaker: Breaker::new(self.threshold),
                        })
                    }));
                    nodes.len() - 1
                }
            };
            let (Ok(first), Ok(last)) = (u16::try_from(*first), u16::try_from(*last)) else {
                continue;
            };
            ranges.push((first, last, index));
        }
        if nodes.is_empty() {
            return;
        }
        ranges.sort_unstable();
        *map = Map { nodes, ranges };
    }
}

/// The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM) of the key, or of
/// its `{hash tag}`, modulo 16384.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let close = key[open + 1..].iter().position(|&b| b == b'}')?;
            Some(&key[open + 1..open + 1 + close])
        })
        .filter(|tag| !tag.is_empty());
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Counts a store call as in flight for as long as it lives (also when abandoned: a call the
/// handshake stopped waiting for is counted until the runtime drops it).
pub(crate) struct InFlight(Arc<AtomicU64>);

impl InFlight {
    pub(crate) fn start(counter: Arc<AtomicU64>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `work` on the runtime and waits at most `wait` for its output, from any thread (also
/// one inside another tokio runtime: nothing here blocks on a runtime). `None` if it did not
/// finish in time; the work is then dropped by the runtime at the same deadline.
pub(crate) fn wait_on<T, F>(runtime: &Handle, wait: Duration, work: F) -> Option<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = sync_channel(1);
    runtime.spawn(async move {
        if let Ok(out) = tokio::time::timeout(wait, work).await {
            let _ = tx.send(out);
        }
    });
    rx.recv_timeout(wait).ok()
}

/// What became of one command of a store call on a handshake's path.
pub(crate) enum Called {
    Answered(Value),
    Failed,
    TimedOut,
}

/// A store call on a handshake's path: `cmds`, each to its node (`nodes[i]` holds the key
/// of `cmds[i]`), all at once, waited for at most `budget`. Each command's outcome is its
/// own: a node that did not answer in time is charged (its breaker told), not the nodes that
/// did. The runtime drops what is left of the work at the same deadline; the client drops a
/// request it still has in flight at its response timeout.
pub(crate) fn call_each(
    runtime: &Handle,
    budget: Duration,
    counters: &Counters,
    conn: Conn,
    nodes: &[Arc<Node>],
    cmds: Vec<Cmd>,
) -> Vec<Called> {
    let n = cmds.len();
    let slots: Arc<Mutex<Vec<Option<RedisResult<Value>>>>> =
        Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    let filled = slots.clone();
    let counted = counters.in_flight.clone();
    let work = async move {
        let _counted = InFlight::start(counted);
        let put = |i: usize, result: RedisResult<Value>| {
            let mut slots = filled.lock().unwrap_or_else(|e| e.into_inner());
            // Empty once the caller stopped waiting: a late answer goes nowhere.
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(result);
            }
        };
        match conn {
            Conn::Single(_) => {
                let results = conn.run_each(cmds).await;
                for (i, result) in results.into_iter().enumerate() {
                    put(i, result);
                }
            }
            Conn::Cluster(conn) => {
                let calls = cmds.into_iter().enumerate().map(|(i, cmd)| {
                    let mut conn = conn.clone();
                    let put = &put;
                    async move { put(i, cmd.query_async::<Value>(&mut conn).await) }
                });
                futures_util::future::join_all(calls).await;
            }
        }
    };
    // What arrived by the deadline is in the slots, whether or not all of it did.
    let _ = wait_on(runtime, budget, work);
    let results = std::mem::take(&mut *slots.lock().unwrap_or_else(|e| e.into_inner()));
    let mut timed_out = false;
    let mut failed = false;
    let outcomes: Vec<Called> = results
        .into_iter()
        .map(|result| match result {
            Some(Ok(value)) => Called::Answered(value),
            Some(Err(e)) => {
                failed = true;
                if is_refusal(&e) {
                    counters.refused.inc();
                    counters.refusal_log.error(&e);
                } else {
                    debug!(kind = ?e.kind(), "a store call failed");
                }
                Called::Failed
            }
            None => {
                timed_out = true;
                Called::TimedOut
            }
        })
        .collect();
    // Each node once: failed if any of its commands did not answer.
    let mut told: Vec<&str> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        if told.contains(&node.addr.as_str()) {
            continue;
        }
        let bad = nodes
            .iter()
            .zip(&outcomes)
            .skip(i)
            .filter(|(other, _)| other.addr == node.addr)
            .any(|(_, outcome)| !matches!(outcome, Called::Answered(_)));
        if bad {
            node.breaker.lookup_failure(&node.addr);
        } else {
            node.breaker.lookup_success();
        }
        told.push(&node.addr);
    }
    if failed {
        counters.errors.inc();
    }
    if timed_out {
        counters.timeouts.inc();
    }
    if let Some(percent) = counters.lookup_window.record(timed_out) {
        counters.slow_log.warn_slow(percent, budget);
    }
    outcomes
}

/// The share of recent lookups that timed out, over windows of [`Window::SIZE`] lookups.
pub(crate) struct Window {
    calls: AtomicU64,
    timeouts: AtomicU64,
    /// The last full window's share of timeouts, in percent.
    percent: AtomicU64,
}

impl Window {
    pub(crate) const SIZE: u64 = 64;

    pub(crate) fn new() -> Self {
        Self {
            calls: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            percent: AtomicU64::new(0),
        }
    }

    /// Counts a lookup; returns the window's share of timeouts when this lookup ends a window
    /// in which most timed out.
    pub(crate) fn record(&self, timed_out: bool) -> Option<u64> {
        if timed_out {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if !calls.is_multiple_of(Self::SIZE) {
            return None;
        }
        let timeouts = self.timeouts.swap(0, Ordering::Relaxed);
        let percent = (timeouts * 100 / Self::SIZE).min(100);
        self.percent.store(percent, Ordering::Relaxed);
        (percent > 50).then_some(percent)
    }

    pub(crate) fn percent(&self) -> u64 {
        self.percent.load(Ordering::Relaxed)
    }
}

/// A log line that repeats at most once a `every`.
pub(crate) struct Every {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl Every {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
        }
    }

    fn due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < self.every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// The store refuses the tier: said loudly, and again while it goes on.
    pub(crate) fn error(&self, e: &RedisError) {
        if self.due() {
            error!(
                code = e.code().unwrap_or("auth"),
                "the store refuses the tier's commands: check the ACL (docs/OPERATING.md) and password"
            );
        }
    }

    /// A node answers, slower than the budget: every lookup it gets times out.
    pub(crate) fn warn_slow_node(&self, node: &str, took: Duration, budget: Duration) {
        if self.due() {
            warn!(
                node,
                round_trip_ms = took.as_secs_f64() * 1e3,
                budget_ms = budget.as_secs_f64() * 1e3,
                "the store answers slower than the budget: its lookups are skipped; raise the \
                 budget above the store's round trip (docs/OPERATING.md)"
            );
        }
    }

    /// Most lookups time out: the budget is below what the store takes.
    pub(crate) fn warn_slow(&self, percent: u64, budget: Duration) {
        if self.due() {
            warn!(
                percent,
                budget_ms = budget.as_secs_f64() * 1e3,
                "most store lookups time out: the store answers slower than the budget; \
                 raise the budget above the store's round trip (docs/OPERATING.md) or the \
                 tier costs every handshake its budget"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        for (url, shown) in [
            (
                "redis://user:hunter2@10.0.0.1:6379/0",
                "redis://***@10.0.0.1:6379/0",
            ),
            ("redis://:hunter2@10.0.0.1", "redis://***@10.0.0.1"),
            ("rediss://u:p@w@host:1", "rediss://***@host:1"),
            ("redis://u:p#ss@host:6379", "redis://***@host:6379"),
            ("redis://u:p/s?s@host:6379/0", "redis://***@host:6379/0"),
            ("redis://:hunter2#x/y?z@10.0.0.1", "redis://***@10.0.0.1"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://127.0.0.1:6379/0?password=hunter2&protocol=resp3",
                "redis://127.0.0.1:6379/0?password=***&protocol=resp3",
            ),
            (
                "redis://127.0.0.1?pass=hunter2",
                "redis://127.0.0.1?pass=***",
            ),
            (
                "redis+unix:///run/redis.sock?pass=hunter2",
                "redis+unix:///run/redis.sock?pass=***",
            ),
            (
                "unix:///run/redis.sock?db=1&password=hunter2",
                "unix:///run/redis.sock?db=1&password=***",
            ),
            (
                "cannot reach redis://a:hunter2@h:1 or redis://b:hunter2@g:2/?password=hunter2 now",
                "cannot reach redis://***@h:1 or redis://***@g:2/?password=*** now",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            assert!(!redact(url).contains("hunter2"));
        }
    }

    #[test]
    fn slots_are_redis_clusters() {
        // CRC16/XMODEM's check value, and Redis's documented examples.
        assert_eq!(key_slot(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo"), 12182);
    }

    #[test]
    fn each_side_of_the_breaker_counts_its_own_failures() {
        let b = Breaker::new(3);
        b.lookup_failure("n");
        b.lookup_failure("n");
        b.write_success(); // a write answering does not make lookups healthy
        b.lookup_failure("n");
        assert!(b.is_open(), "the third lookup failure in a row opens it");
        assert!(!b.writes_open());
        b.lookup_failure("n");
        assert_eq!(b.opens(), 1, "opened once");
        b.close_writes();
        assert!(b.is_open(), "a slow answer closes only the writes");
        b.close("n");
        assert!(!b.is_open());
        b.lookup_failure("n");
        assert!(
            b.is_open(),
            "half-open: the first failure after a probe opens it again"
        );
        b.close("n");
        b.lookup_success();
        b.lookup_failure("n");
        b.lookup_success();
        b.lookup_failure("n");
        b.lookup_failure("n");
        assert!(!b.is_open(), "a success resets the count");
        for _ in 0..3 {
            b.write_failure("n");
        }
        assert!(b.writes_open() && !b.is_open());
    }

    #[test]
    fn the_slot_map_keeps_breakers_by_node() {
        let t = Topology::new(1, "seed");
        let reply = |ports: [i64; 2]| {
            Value::Array(
                [(0, 8191, ports[0]), (8192, 16383, ports[1])]
                    .into_iter()
                    .map(|(a, b, port)| {
                        Value::Array(vec![
                            Value::Int(a),
                            Value::Int(b),
                            Value::Array(vec![
                                Value::BulkString(b"127.0.0.1".to_vec()),
                                Value::Int(port),
                            ]),
                        ])
                    })
                    .collect(),
            )
        };
        t.update(&reply([7000, 7001]));
        let key = |slot_below_half: bool| {
            (0u32..)
                .map(|i| format!("k{i}").into_bytes())
                .find(|k| (key_slot(k) < 8192) == slot_below_half)
                .unwrap()
        };
        let (low, high) = (key(true), key(false));
        assert_eq!(t.node_for(&low).addr, "127.0.0.1:7000");
        assert_eq!(t.node_for(&high).addr, "127.0.0.1:7001");
        t.node_for(&low).breaker.lookup_failure("x");
        assert!(t.node_for(&low).breaker.is_open());
        assert!(!t.node_for(&high).breaker.is_open(), "per node");
        t.update(&reply([7001, 7000]));
        assert!(t.node_for(&high).breaker.is_open(), "kept across a reshard");
        assert_eq!(t.nodes().len(), 2);
    }

    #[test]
    fn a_window_reports_mostly_timeouts() {
        let w = Window::new();
        for i in 0..Window::SIZE {
            let said = w.record(i % 4 != 0);
            assert_eq!(said.is_some(), i == Window::SIZE - 1);
        }
        assert_eq!(w.percent(), 75);
        for _ in 0..Window::SIZE {
            assert_eq!(w.record(false), None);
        }
        assert_eq!(w.percent(), 0);
    }
}
