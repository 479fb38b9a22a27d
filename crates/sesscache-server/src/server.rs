//! The server: a tokio runtime of its own, the listener's accept loop, one task per
//! connection, the cap on connections held at once, the flush timer, and the stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ctx::Context;
use sesscache_workload::trace::Recorder;
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tracing::{debug, error, warn};

use crate::config::ServerConfig;
use crate::connection::{self, Shared};
use crate::counts::{Counters, Counts, CountsNow};
use crate::tls::Tls;
use crate::Error;

/// How long the accept loop waits after accepting failed (out of file descriptors, ...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The listener's queue of connections the kernel completed and the server has not accepted
/// yet (the kernel caps it at `net.core.somaxconn`): a burst of thousands of connections
/// waits there instead of being dropped and retried seconds later.
const BACKLOG: u32 = 4096;

/// The most connections held at once that a server takes: what a semaphore can count.
const MAX_PENDING: usize = u32::MAX as usize;

/// A TLS server, listening: [`Server::bind`] then [`Server::run`].
///
/// ```no_run
/// use ctx::{Context, ContextConfig};
/// use session_core::SidCtx;
/// use sesscache_server::{Backend, Server, ServerConfig};
///
/// let mut config = ServerConfig::default();
/// config.backend = Backend::Openssl;
/// config.listen = "127.0.0.1:0".parse().unwrap();
/// let context = Context::new(ContextConfig {
///     sid_ctx: SidCtx::new(Backend::Openssl.sid_ctx()).unwrap(),
///     ..ContextConfig::default()
/// });
/// let server = Server::bind(config, &context)?;
/// println!("listening on {}", server.local_addr());
/// let report = server.run(async { /* a shutdown signal */ });
/// println!("{} connections, {} resumed", report.counts.connections, report.counts.resumed);
/// # Ok::<(), sesscache_server::Error>(())
/// ```
pub struct Server {
    runtime: Runtime,
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    counters: Counters,
    workers: usize,
    max_pending: usize,
    max_connections: Option<u64>,
    flush_interval: Option<Duration>,
    context: Context,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("workers", &self.workers)
            .field("max_pending", &self.max_pending)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// What a server did, once it has stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The server's counters, every connection ended and the trace written.
    pub counts: CountsNow,
    /// The runtime's worker threads.
    pub workers: usize,
}

impl Server {
    /// Starts the server's runtime, sets up its TLS stack over `context`'s cache (which it
    /// keeps a handle on), creates its trace, and listens.
    ///
    /// `context`'s session id context should be [`Backend::sid_ctx`](crate::Backend::sid_ctx)
    /// of the server's stack. A fleet tier, if any, is attached to it before.
    pub fn bind(config: ServerConfig, context: &Context) -> Result<Self, Error> {
        if config.max_pending == 0 || config.max_pending > MAX_PENDING {
            return Err(Error::Config(
                "the most connections held at once must be between 1 and 4294967295",
            ));
        }
        let workers = match config.workers {
            Some(0) => return Err(Error::Config("a server needs at least one worker")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let tls = Tls::new(&config, context)?;
        let trace = match &config.trace {
            Some(path) => Some(Arc::new(Recorder::create(path)?)),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("sesscache-serve")
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        let listen = config.listen;
        let listening = |source| Error::Listen {
            addr: listen,
            source,
        };
        let listener = {
            let _entered = runtime.enter();
            listen_on(listen).map_err(listening)?
        };
        let addr = listener.local_addr().map_err(listening)?;
        let counts = Arc::new(Counts::default());
        let counters = Counters {
            counts: counts.clone(),
            losses: trace.as_ref().map(|trace| trace.losses()),
        };
        Ok(Self {
            runtime,
            listener,
            addr,
            shared: Arc::new(Shared {
                tls,
                counts,
                trace,
                handshake_timeout: config.handshake_timeout,
            }),
            counters,
            workers,
            max_pending: config.max_pending,
            max_connections: config.max_connections,
            flush_interval: config.flush_interval,
            context: context.clone(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters, readable while it runs.
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// Serves connections until `shutdown` completes or `max_connections` were accepted;
    /// then stops listening, lets every connection held end (each within its deadlines),
    /// writes the rest of the trace, and reports. Blocks the calling thread meanwhile (it
    /// must not be one of a tokio runtime's); `shutdown` is polled on the server's runtime,
    /// so tokio's timers and channels work in it.
    pub fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Report {
        let Self {
            runtime,
            listener,
            shared,
            counters,
            workers,
            max_pending,
            max_connections,
            flush_interval,
            context,
            ..
        } = self;
        let flusher =
            flush_interval.map(|every| runtime.spawn(flush(context, every, shared.counts.clone())));
        // On a worker, not on this thread: a connection's task then starts on the worker that
        // accepted it, without waking another thread.
        let accepting = runtime.spawn(accept(
            listener,
            shutdown,
            shared,
            max_pending,
            max_connections,
        ));
        if let Err(err) = runtime.block_on(accepting) {
            error!(error = %err, "the accept loop failed");
        }
        if let Some(flusher) = flusher {
            flusher.abort();
        }
        // Every connection's task has dropped its handle: this drops the last one of the
        // trace, which writes what is queued and waits for its writer.
        drop(runtime);
        Report {
            counts: counters.snapshot(),
            workers,
        }
    }
}

/// A listener on `addr` whose queue of connections not yet accepted holds [`BACKLOG`].
fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The accept loop: a task per connection, at most `max_pending` held at once; once told
/// to stop (or after `max_connections`), it closes the listener and waits for them all.
async fn accept(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    shared: Arc<Shared>,
    max_pending: usize,
    max_connections: Option<u64>,
) {
    let held = Arc::new(Semaphore::new(max_pending));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut served = 0u64;
    while max_connections.is_none_or(|max| served < max) {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // A flood of connections that say nothing is closed at once past the cap, instead
        // of taking every file descriptor.
        let Ok(permit) = held.clone().try_acquire_owned() else {
            Counts::add(&shared.counts.refused, 1);
            debug!("too many connections held: one closed");
            continue;
        };
        // The answer and close_notify go out as they are written.
        let _ = tcp.set_nodelay(true);
        served += 1;
        let shared = shared.clone();
        tokio::spawn(async move {
            connection::serve(tcp, peer, &shared).await;
            // The handle goes before the permit: once every permit is back, no task holds
            // one.
            drop(shared);
            drop(permit);
        });
    }
    drop(listener);
    // Every permit back: every connection has ended.
    let all = u32::try_from(max_pending).unwrap_or(u32::MAX);
    let _ = held.acquire_many(all).await;
}

/// Flushes the cache's expired sessions every `every`, off the workers.
async fn flush(context: Context, every: Duration, counts: Arc<Counts>) {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        let context = context.clone();
        let Ok(flushed) = tokio::task::spawn_blocking(move || context.cache().flush()).await else {
            continue;
        };
        Counts::add(&counts.flushes, 1);
        Counts::add(&counts.flushed, flushed as u64);
        debug!(flushed, "timed flush");
    }
}
