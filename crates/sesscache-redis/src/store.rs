//! The store: a connection to one Redis/Valkey server or to a Redis Cluster, the circuit
//! breaker in front of it, and the one way a handshake's thread calls it, with a budget.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::RwLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisResult, Value};
use tokio::runtime::Handle;
use tracing::{debug, info, warn};

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
    /// on a cluster, each command on its own (their keys are in different slots), all at once.
    pub(crate) async fn run_all(self, cmds: Vec<Cmd>) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(mut conn) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                pipe.query_async(&mut conn).await
            }
            Conn::Cluster(conn) => {
                let tasks: Vec<_> = cmds
                    .into_iter()
                    .map(|cmd| {
                        let mut conn = conn.clone();
                        tokio::spawn(async move { cmd.query_async::<Value>(&mut conn).await })
                    })
                    .collect();
                let mut out = Vec::with_capacity(tasks.len());
                for task in tasks {
                    out.push(task.await.map_err(|_| {
                        redis::RedisError::from((redis::ErrorKind::Client, "a store task failed"))
                    })??);
                }
                Ok(out)
            }
        }
    }
}

/// Where the connection lives: set at once for a single server, by a background task for a
/// cluster (whose first connection needs the nodes to answer).
pub(crate) struct Slot(RwLock<Option<Conn>>);

impl Slot {
    pub(crate) fn get(&self) -> Option<Conn> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, conn: Conn) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
    }
}

/// Opens the connection: one URL is a single server, several are a cluster's seed nodes;
/// `password`, if given, is every node's in place of one in its URL. Nothing here waits for
/// the store; a cluster connects in the background, retrying.
pub(crate) fn connect(
    urls: &[String],
    password: Option<&str>,
    connect_timeout: Duration,
    runtime: &Handle,
) -> Result<std::sync::Arc<Slot>, Error> {
    let slot = std::sync::Arc::new(Slot(RwLock::new(None)));
    let bad_url = |url: &str, e: redis::RedisError| Error::Url {
        url: redact(url),
        reason: e.to_string(),
    };
    let info = |url: &String| -> Result<redis::ConnectionInfo, Error> {
        let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .map_err(|e| bad_url(url, e))?;
        Ok(match password {
            Some(password) => {
                let settings = info.redis_settings().clone().set_password(password);
                info.set_redis_settings(settings)
            }
            None => info,
        })
    };
    match urls {
        [] => return Err(Error::NoStore),
        [url] => {
            let client = redis::Client::open(info(url)?).map_err(|e| bad_url(url, e))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            let _entered = runtime.enter();
            let conn = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| bad_url(url, e))?;
            slot.set(Conn::Single(conn));
        }
        nodes => {
            let infos = nodes.iter().map(info).collect::<Result<Vec<_>, _>>()?;
            let client = ClusterClient::builder(infos)
                .connection_timeout(connect_timeout)
                .retries(1)
                .build()
                .map_err(|e| bad_url(&nodes[0], e))?;
            let target = slot.clone();
            runtime.spawn(async move {
                let mut wait = Duration::from_millis(50);
                loop {
                    match client.get_async_connection().await {
                        Ok(conn) => {
                            info!("connected to the store's cluster");
                            target.set(Conn::Cluster(conn));
                            return;
                        }
                        Err(e) => {
                            debug!(kind = ?e.kind(), "the store's cluster did not answer yet");
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

/// A URL with any password in it replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Whether the store is skipped: opened after `threshold` failures in a row (timeouts or
/// errors), closed again by the prober's first answered ping.
pub(crate) struct Breaker {
    threshold: u32,
    failures: AtomicU32,
    open: AtomicBool,
    opens: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            opens: AtomicU64::new(0),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// How often it opened.
    pub(crate) fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    pub(crate) fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if self.open.swap(false, Ordering::AcqRel) {
            info!("the store answers again: breaker closed");
        }
    }

    /// Counts a failure; the `threshold`-th in a row opens the breaker.
    pub(crate) fn failure(&self) {
        let n = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n >= self.threshold && !self.open.swap(true, Ordering::AcqRel) {
            self.opens.fetch_add(1, Ordering::Relaxed);
            warn!(
                failures = n,
                "the store keeps failing: breaker open, handshakes skip it"
            );
        }
    }
}

/// Runs `work` on the runtime and waits at most `wait` for its output, from any thread (also
/// one inside another tokio runtime: nothing here blocks on a runtime). `None` if it did not
/// finish in time.
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

/// A store call on a handshake's path: at most `budget`, its outcome told to the breaker and
/// counted. `None` for an error or no answer in time.
pub(crate) fn call<T, F>(
    runtime: &Handle,
    budget: Duration,
    breaker: &Breaker,
    counters: &Counters,
    work: F,
) -> Option<T>
where
    T: Send + 'static,
    F: Future<Output = RedisResult<T>> + Send + 'static,
{
    match wait_on(runtime, budget, work) {
        Some(Ok(value)) => {
            breaker.success();
            return Some(value);
        }
        Some(Err(e)) => {
            debug!(kind = ?e.kind(), "a store call failed");
            counters.errors.inc();
        }
        None => counters.timeouts.inc(),
    }
    breaker.failure();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://user:hunter2@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_and_closes_on_success() {
        let b = Breaker::new(3);
        b.failure();
        b.failure();
        b.success();
        b.failure();
        b.failure();
        assert!(!b.is_open());
        b.failure();
        assert!(b.is_open(), "the third in a row opens it");
        b.failure();
        assert_eq!(b.opens(), 1, "opened once");
        b.success();
        assert!(!b.is_open());
    }
}
