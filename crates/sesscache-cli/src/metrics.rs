//! `serve --metrics`: `GET /metrics` over plain HTTP/1.1 (hyper), answered from the cache's
//! statistics, its operation latencies, the fleet tier's counters and the server's own, in the
//! Prometheus text format (`sesscache-metrics`). Scrapes are answered at once on a small tokio
//! runtime of the endpoint's own; each connection has one deadline from accept to the end of
//! its answer, however its client trickles, and stopping the endpoint drops the connections
//! still open instead of waiting for them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::{debug, warn};

/// The default address: loopback only, on the port Prometheus's registry lists for
/// exporters of this kind.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// The most one connection may take, from accept to the end of its answer.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(5);
/// The most connections the endpoint holds open at once.
const MAX_CONNECTIONS: usize = 32;
/// How long the accept loop waits after accepting failed (out of file descriptors, ...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// An address for --metrics: `HOST:PORT`, or a port alone (on loopback).
pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not an address (HOST:PORT, or a port for 127.0.0.1)"))
}

/// What makes the metrics' text, called for each scrape.
type Render = dyn Fn() -> String + Send + Sync;

/// The endpoint, answering until dropped.
pub(crate) struct Endpoint {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Endpoint {
    /// Listens on `addr` and answers each scrape with what `render` returns.
    pub(crate) fn start(
        addr: SocketAddr,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> Result<Self> {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            warn!(%addr, "metrics are served beyond this machine");
        }
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sesscache-metrics")
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the metrics endpoint's runtime")?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let render: Arc<Render> = Arc::new(render);
        let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        runtime.spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        warn!(error = %err, "accepting a scrape failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                // At most so many connections at once: a flood of idle ones is closed at
                // once instead of taking the file descriptors the TLS listener needs.
                let Ok(permit) = open.clone().try_acquire_owned() else {
                    debug!("too many scrapes at once: one closed");
                    drop(stream);
                    continue;
                };
                let render = render.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let service = service_fn(move |request| {
                        let response = answer(&request, render.as_ref());
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(SCRAPE_DEADLINE)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service);
                    match tokio::time::timeout(SCRAPE_DEADLINE, connection).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => debug!(error = %err, "a scrape failed"),
                        Err(_) => debug!("a scrape passed its deadline: dropped"),
                    }
                });
            }
        });
        Ok(Self {
            addr,
            runtime: Some(runtime),
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // Drops the accept loop and every connection still open, without waiting for them.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The answer to one request: the metrics for `GET` (or `HEAD`) `/metrics`, 404 for other
/// paths, 405 for other methods. (hyper answers 400 itself for what is not HTTP/1.)
fn answer(request: &Request<Incoming>, render: &Render) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    const TEXT: &str = "text/plain; charset=utf-8";
    match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            respond(StatusCode::OK, sesscache_metrics::CONTENT_TYPE, render())
        }
        (&Method::GET | &Method::HEAD, _) => respond(
            StatusCode::NOT_FOUND,
            TEXT,
            "the metrics are at /metrics\n".to_owned(),
        ),
        _ => {
            let mut response = respond(
                StatusCode::METHOD_NOT_ALLOWED,
                TEXT,
                "only GET and HEAD\n".to_owned(),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
    }
}
