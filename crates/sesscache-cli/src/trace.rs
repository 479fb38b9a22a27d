//! Handshake traces: what `serve --trace` records and `simulate --replay` reads. One line per
//! finished handshake, anonymous:
//!
//! ```text
//! # sesscache trace v1
//! <unix time, ms> <client> <tls1.2|tls1.3> <offered|fresh> <sessions issued> <outcome>
//! ```
//!
//! The client is a keyed hash (HMAC-SHA-256 under a key made at start and never written
//! anywhere, truncated to 64 bits) that stands for a chain of sessions: a handshake that
//! offers nothing starts a new client; one that offers a session is the client that got it,
//! and the sessions it is issued stay that client's. That is what a replay needs to know
//! which earlier handshake's session a client offers. No session id, secret or address is
//! written. The outcome is one of the resumption outcomes (`resumed`, `unknown_id`, ...).
//!
//! The file is owner-only and never opened through a symlink. Handshakes hand their lines to
//! a bounded queue and one thread writes them: a full queue drops a line and a failed write
//! loses it, each counted, and neither holds up a handshake.

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _, Result};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use session_cache::{HandshakeRecord, Resumption};
use session_core::ProtocolVersion;
use tracing::warn;

/// The first line of every trace.
pub(crate) const HEADER: &str = "# sesscache trace v1";

/// The most sessions one handshake is recorded as issuing.
const MAX_ISSUED: u32 = 16;

/// How many issued sessions the recorder remembers the client of; the oldest go first. A
/// session it forgot that is offered later starts a new client.
const REMEMBERED: usize = 1 << 20;

/// One handshake of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    /// When it finished, in Unix milliseconds.
    pub(crate) time_ms: u64,
    /// The client (see the module's documentation).
    pub(crate) client: u64,
    pub(crate) version: ProtocolVersion,
    pub(crate) offered: bool,
    /// Sessions (TLS 1.2) or tickets (TLS 1.3) the handshake issued.
    pub(crate) issued: u32,
    pub(crate) outcome: Resumption,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:016x} {} {} {} {}",
            self.time_ms,
            self.client,
            if self.version.is_tls13_or_later() {
                "tls1.3"
            } else {
                "tls1.2"
            },
            if self.offered { "offered" } else { "fresh" },
            self.issued,
            self.outcome
        )
    }
}

impl Line {
    /// Parses one line's fields; the error says what is wrong with it.
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [time, client, version, offered, issued, outcome] = fields[..] else {
            return Err(format!(
                "expected 6 fields (time client version offered|fresh issued outcome), found {}",
                fields.len()
            ));
        };
        let time_ms = time
            .parse()
            .map_err(|_| format!("time `{time}` is not a whole number of milliseconds"))?;
        if client.len() != 16 {
            return Err(format!("client `{client}` is not 16 hex digits"));
        }
        let client = u64::from_str_radix(client, 16)
            .map_err(|_| format!("client `{client}` is not 16 hex digits"))?;
        let version = match version {
            "tls1.2" => ProtocolVersion::TLS1_2,
            "tls1.3" => ProtocolVersion::TLS1_3,
            other => return Err(format!("version `{other}` is not tls1.2 or tls1.3")),
        };
        let offered = match offered {
            "offered" => true,
            "fresh" => false,
            other => return Err(format!("`{other}` is not `offered` or `fresh`")),
        };
        let issued: u32 = issued
            .parse()
            .ok()
            .filter(|&n| n <= MAX_ISSUED)
            .ok_or_else(|| format!("issued `{issued}` is not a number from 0 to {MAX_ISSUED}"))?;
        let outcome = Resumption::from_name(outcome).ok_or_else(|| {
            let names: Vec<&str> = Resumption::ALL.iter().map(|r| r.name()).collect();
            format!("outcome `{outcome}` is not one of {}", names.join(", "))
        })?;
        if offered != outcome.offered() {
            return Err(format!(
                "a {} handshake cannot have the outcome `{outcome}`",
                if offered { "offered" } else { "fresh" }
            ));
        }
        Ok(Self {
            time_ms,
            client,
            version,
            offered,
            issued,
            outcome,
        })
    }
}

/// Reads a whole trace; an error names the file and the line.
pub(crate) fn read(path: &Path) -> Result<Vec<Line>> {
    let file =
        File::open(path).with_context(|| format!("cannot open the trace {}", path.display()))?;
    let mut lines = Vec::new();
    for (i, text) in BufReader::new(file).lines().enumerate() {
        let number = i + 1;
        let at = || format!("{} line {number}", path.display());
        let text = text.map_err(|e| anyhow!("{}: cannot read it: {e}", at()))?;
        if number == 1 {
            if text.trim_end() != HEADER {
                return Err(anyhow!(
                    "{}: not a sesscache trace (the first line must be `{HEADER}`)",
                    at()
                ));
            }
            continue;
        }
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        lines.push(Line::parse(text).map_err(|why| anyhow!("{}: {why}", at()))?);
    }
    if lines.is_empty() {
        return Err(anyhow!("{}: the trace has no handshakes", path.display()));
    }
    Ok(lines)
}

/// The chains of sessions seen so far: which client each issued session belongs to.
struct Clients {
    key: hmac::Key,
    /// Keyed hash of an issued session's (version, id) → its client.
    owner: HashMap<u64, u64>,
    order: VecDeque<u64>,
    started: u64,
}

impl Clients {
    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let tag = ctx.sign();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        u64::from_be_bytes(first)
    }

    fn session(&self, version: ProtocolVersion, id: &[u8]) -> u64 {
        self.hash(&[b"session", &version.wire().to_be_bytes(), id])
    }

    /// The client of a handshake that saw `record`, and the sessions it was issued noted as
    /// that client's.
    fn of(&mut self, record: &HandshakeRecord, version: ProtocolVersion) -> u64 {
        let client = match record.offered_id() {
            Some(id) => {
                let session = self.session(version, id.as_bytes());
                // A session issued before the trace began (or forgotten) starts a client
                // of its own, the same each time it is offered.
                self.owner
                    .get(&session)
                    .copied()
                    .unwrap_or_else(|| self.hash(&[b"unknown", &session.to_be_bytes()]))
            }
            None => {
                self.started += 1;
                self.hash(&[b"new", &self.started.to_be_bytes()])
            }
        };
        for id in record.issued_ids() {
            let session = self.session(version, id.as_bytes());
            if self.owner.insert(session, client).is_none() {
                self.order.push_back(session);
                if self.order.len() > REMEMBERED {
                    if let Some(old) = self.order.pop_front() {
                        self.owner.remove(&old);
                    }
                }
            }
        }
        client
    }
}

/// How many lines wait for the writer; a line that finds the queue full is dropped and counted.
const QUEUE: usize = 4096;

/// The least time between two warnings that writing the trace fails.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What happened to the lines that were not written.
#[derive(Debug, Default)]
pub(crate) struct Losses {
    /// Lines dropped because the writer's queue was full.
    pub(crate) dropped: AtomicU64,
    /// Lines the writer failed to write.
    pub(crate) write_errors: AtomicU64,
}

/// Writes a trace as handshakes finish, from any number of threads. A handshake only hands its
/// line to a queue; one writer thread writes them, so a slow or failing disk costs a
/// handshake nothing. Dropping the recorder writes what is queued and waits for the writer.
pub(crate) struct Recorder {
    clients: Mutex<Clients>,
    queue: Option<SyncSender<Line>>,
    writer: Option<JoinHandle<()>>,
    losses: Arc<Losses>,
}

impl Recorder {
    /// Creates the trace file owner-only (or truncates a regular file there and makes it
    /// owner-only), never through a symlink, and writes its header.
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| anyhow!("no randomness for the trace's key"))?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        zeroize::Zeroize::zeroize(&mut secret);
        let mut out = open_owner_only(path)?;
        writeln!(out, "{HEADER}")
            .with_context(|| format!("cannot write the trace {}", path.display()))?;
        let losses = Arc::new(Losses::default());
        let (queue, lines) = sync_channel(QUEUE);
        let writer = {
            let losses = losses.clone();
            std::thread::Builder::new()
                .name("sesscache-trace".to_owned())
                .spawn(move || write_lines(&lines, out, &losses))
                .context("cannot start the trace's writer")?
        };
        Ok(Self {
            clients: Mutex::new(Clients {
                key,
                owner: HashMap::new(),
                order: VecDeque::new(),
                started: 0,
            }),
            queue: Some(queue),
            writer: Some(writer),
            losses,
        })
    }

    /// Queues the line of a finished handshake; a full queue drops it (counted in
    /// [`losses`](Self::losses)).
    pub(crate) fn record(&self, record: &HandshakeRecord) {
        let Some(outcome) = record.outcome() else {
            return; // not finished: not counted, not traced
        };
        let version = record.version().unwrap_or(ProtocolVersion::TLS1_2);
        // The chain of sessions is followed even for a line that is dropped, so that the
        // lines after it name the right client.
        let client = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .of(record, version);
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let line = Line {
            time_ms,
            client,
            version,
            offered: outcome.offered(),
            issued: (record.issued_ids().len() as u32).min(MAX_ISSUED),
            outcome,
        };
        let sent = self.queue.as_ref().map(|queue| queue.try_send(line));
        if !matches!(sent, Some(Ok(()))) {
            self.losses.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The lines lost so far, counted as they are lost.
    pub(crate) fn losses(&self) -> Arc<Losses> {
        self.losses.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // The writer ends once the queue is empty and closed.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Opens `path` for writing, never through a symlink: creates it with mode 0600, or truncates
/// the regular file there and sets its mode to 0600.
fn open_owner_only(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => bail!(
            "the trace {} is a symlink; give the file itself (it is never written through a link)",
            path.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create the trace {}", path.display()))
        }
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        bail!("the trace {} is not a regular file", path.display());
    }
    // Only after the checks: a file that is not one to truncate is left as it was.
    file.set_len(0)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o600)))
        .with_context(|| format!("cannot make the trace {} owner-only", path.display()))?;
    Ok(file)
}

/// The most lines the writer puts in one write.
const BATCH: usize = 1024;

/// The writer: writes the lines as they come (what is queued at once in one write), until the
/// queue closes.
fn write_lines(lines: &Receiver<Line>, mut out: File, losses: &Losses) {
    let mut warned: Option<Instant> = None;
    let mut batch = String::new();
    while let Ok(first) = lines.recv() {
        batch.clear();
        let mut count = 0u64;
        let queued = std::iter::from_fn(|| lines.try_recv().ok()).take(BATCH - 1);
        for line in std::iter::once(first).chain(queued) {
            let _ = writeln!(batch, "{line}");
            count += 1;
        }
        if let Err(err) = out.write_all(batch.as_bytes()) {
            let lost = losses.write_errors.fetch_add(count, Ordering::Relaxed) + count;
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                warned = Some(Instant::now());
                warn!(error = %err, lost, "the trace is incomplete: writing it failed");
            }
        }
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_print_and_parse_back() {
        let line = Line {
            time_ms: 1_700_000_000_123,
            client: 0x0123_4567_89ab_cdef,
            version: ProtocolVersion::TLS1_3,
            offered: true,
            issued: 2,
            outcome: Resumption::Resumed,
        };
        let text = line.to_string();
        assert_eq!(
            text,
            "1700000000123 0123456789abcdef tls1.3 offered 2 resumed"
        );
        assert_eq!(Line::parse(&text), Ok(line));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let cases = [
            ("1 0123456789abcdef tls1.3 offered 2", "expected 6 fields"),
            ("x 0123456789abcdef tls1.3 offered 2 resumed", "time `x`"),
            ("1 0123 tls1.3 offered 2 resumed", "client `0123`"),
            ("1 0123456789abcdeg tls1.3 offered 2 resumed", "hex"),
            ("1 0123456789abcdef tls1.1 offered 2 resumed", "version"),
            ("1 0123456789abcdef tls1.3 maybe 2 resumed", "`maybe`"),
            (
                "1 0123456789abcdef tls1.3 offered 99 resumed",
                "issued `99`",
            ),
            ("1 0123456789abcdef tls1.3 offered 2 hit", "outcome `hit`"),
            ("1 0123456789abcdef tls1.3 fresh 1 resumed", "cannot have"),
            (
                "1 0123456789abcdef tls1.3 offered 1 not_offered",
                "cannot have",
            ),
        ];
        for (text, expected) in cases {
            let err = Line::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
