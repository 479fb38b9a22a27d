//! `serve --metrics`: `GET /metrics` over plain HTTP/1.1, answered from the cache's statistics,
//! its operation latencies, the fleet tier's counters and the server's own, in the Prometheus
//! text format (`sesscache-metrics`). One thread answers scrapes one at a time; a scraper that
//! stalls is dropped after a few seconds.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tracing::{debug, warn};

/// The default address: loopback only, on the port Prometheus's registry lists for
/// exporters of this kind.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// How long a scrape may take to send its request or read the answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// How often the accept loop looks whether it should stop.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// An address for --metrics: `HOST:PORT`, or a port alone (on loopback).
pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not an address (HOST:PORT, or a port for 127.0.0.1)"))
}

/// The endpoint, answering until dropped.
pub(crate) struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    /// Listens on `addr` and answers each scrape with what `render` returns.
    pub(crate) fn start(
        addr: SocketAddr,
        render: impl Fn() -> String + Send + 'static,
    ) -> Result<Self> {
        let listener =
            TcpListener::bind(addr).with_context(|| format!("cannot serve metrics on {addr}"))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            warn!(%addr, "metrics are served beyond this machine");
        }
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(err) = answer(stream, &render) {
                            debug!(error = %err, "a scrape failed");
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(ACCEPT_POLL);
                    }
                    Err(err) => {
                        warn!(error = %err, "accepting a scrape failed");
                        std::thread::sleep(ACCEPT_POLL);
                    }
                }
            }
        });
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request and answers it: the metrics for `GET` (or `HEAD`) `/metrics`, 404 for
/// other paths, 405 for other methods, 400 for what is not HTTP.
fn answer(mut stream: TcpStream, render: &dyn Fn() -> String) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_REQUEST {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                false,
            );
        }
        match stream.read(&mut buf)? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return respond(
            &mut stream,
            "400 Bad Request",
            "not an HTTP request\n",
            true,
        );
    };
    if !version.starts_with("HTTP/1.") {
        return respond(
            &mut stream,
            "400 Bad Request",
            "not an HTTP/1 request\n",
            true,
        );
    }
    let path = target.split('?').next().unwrap_or_default();
    let with_body = method != "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                sesscache_metrics::CONTENT_TYPE,
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            if with_body {
                stream.write_all(body.as_bytes())?;
            }
            Ok(())
        }
        ("GET" | "HEAD", _) => respond(
            &mut stream,
            "404 Not Found",
            "the metrics are at /metrics\n",
            with_body,
        ),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "only GET and HEAD\n",
            true,
        ),
    }
}

fn respond(stream: &mut TcpStream, status: &str, body: &str, with_body: bool) -> Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body.as_bytes())?;
    }
    Ok(())
}
