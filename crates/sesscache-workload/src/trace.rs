//! Handshake traces: what a server records ([`Recorder`], `sesscache serve --trace`) and a
//! replay reads ([`read`], [`crate::replay`]). One line per finished handshake, anonymous:
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

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use session_cache::{HandshakeRecord, Resumption};
use session_core::ProtocolVersion;
use tracing::warn;

use crate::Error;

/// The first line of every trace.
pub const HEADER: &str = "# sesscache trace v1";

/// The most sessions one handshake is recorded as issuing.
pub const MAX_ISSUED: u32 = 16;

/// How many issued sessions the recorder remembers the client of; the oldest go first. A
/// session it forgot that is offered later starts a new client.
const REMEMBERED: usize = 1 << 20;

/// One handshake of a trace; its `Display` is the line as written.
///
/// A line read from a trace has at most [`MAX_ISSUED`] issued sessions, and an outcome that
/// agrees with `offered` ([`Resumption::offered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// When it finished, in Unix milliseconds.
    pub time_ms: u64,
    /// The client (see the module's documentation).
    pub client: u64,
    /// The protocol version it negotiated (written as `tls1.2` or `tls1.3`).
    pub version: ProtocolVersion,
    /// Whether the client offered a session.
    pub offered: bool,
    /// Sessions (TLS 1.2) or tickets (TLS 1.3) the handshake issued.
    pub issued: u32,
    /// Whether it resumed, or why not.
    pub outcome: Resumption,
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
    fn parse(text: &str) -> Result<Self, String> {
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

/// Reads the trace at `path`; an error names the file and the line.
pub fn read(path: &Path) -> Result<Vec<Line>, Error> {
    let file = File::open(path).map_err(|source| Error::OpenTrace {
        path: path.to_owned(),
        source,
    })?;
    parse(BufReader::new(file), path)
}

/// Reads a trace from `reader`, named `path` in errors: the header, then a line per handshake
/// (blank lines and `#` comments skipped). A trace without a handshake is an error.
pub fn parse(reader: impl BufRead, path: &Path) -> Result<Vec<Line>, Error> {
    let mut lines = Vec::new();
    for (i, text) in reader.lines().enumerate() {
        let line = i + 1;
        let bad = |why: String| Error::BadTraceLine {
            path: path.to_owned(),
            line,
            why,
        };
        let text = text.map_err(|source| Error::ReadTrace {
            path: path.to_owned(),
            line,
            source,
        })?;
        if line == 1 {
            if text.trim_end() != HEADER {
                return Err(bad(format!(
                    "not a sesscache trace (the first line must be `{HEADER}`)"
                )));
            }
            continue;
        }
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        lines.push(Line::parse(text).map_err(bad)?);
    }
    if lines.is_empty() {
        return Err(Error::EmptyTrace {
            path: path.to_owned(),
        });
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

    /// The client of a handshake that offered `offered` (if anything) and was issued
    /// `issued`, which are noted as that client's.
    fn of<'a>(
        &mut self,
        version: ProtocolVersion,
        offered: Option<&[u8]>,
        issued: impl IntoIterator<Item = &'a [u8]>,
    ) -> u64 {
        let client = match offered {
            Some(id) => {
                let session = self.session(version, id);
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
        for id in issued {
            let session = self.session(version, id);
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

/// What happened to the lines that were not written, counted as they are lost.
#[derive(Debug, Default)]
pub struct Losses {
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

impl Losses {
    /// Lines dropped because the writer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Lines the writer failed to write.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
}

/// Writes a trace as handshakes finish, from any number of threads. A handshake only hands its
/// line to a queue; one writer thread writes them, so a slow or failing disk costs a
/// handshake nothing. Dropping the recorder writes what is queued and waits for the writer.
///
/// ```no_run
/// # fn finished(record: &session_cache::HandshakeRecord) -> Result<(), sesscache_workload::Error> {
/// let recorder = sesscache_workload::trace::Recorder::create("handshakes.trace".as_ref())?;
/// // After each server handshake, with what its adapter collected:
/// recorder.record(record);
/// # Ok(()) }
/// ```
pub struct Recorder {
    clients: Mutex<Clients>,
    queue: Option<SyncSender<Line>>,
    writer: Option<JoinHandle<()>>,
    losses: Arc<Losses>,
}

impl Recorder {
    /// Creates the trace file owner-only (or truncates a regular file there and makes it
    /// owner-only), never through a symlink, writes its header and starts its writer thread.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| Error::NoRandomness)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        zeroize::Zeroize::zeroize(&mut secret);
        let mut out = open_owner_only(path)?;
        writeln!(out, "{HEADER}").map_err(|source| Error::WriteTrace {
            path: path.to_owned(),
            source,
        })?;
        let losses = Arc::new(Losses::default());
        let (queue, lines) = sync_channel(QUEUE);
        let writer = {
            let losses = losses.clone();
            std::thread::Builder::new()
                .name("sesscache-trace".to_owned())
                .spawn(move || write_lines(&lines, out, &losses))
                .map_err(Error::TraceWriter)?
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
    /// [`losses`](Self::losses)). A record whose handshake has no outcome yet is not a line.
    pub fn record(&self, record: &HandshakeRecord) {
        let Some(outcome) = record.outcome() else {
            return; // not finished: not counted, not traced
        };
        self.record_parts(
            record.version().unwrap_or(ProtocolVersion::TLS1_2),
            record.offered_id().map(|id| id.as_bytes()),
            record.issued_ids().iter().map(|id| id.as_bytes()),
            outcome,
        );
    }

    /// Queues the line of a handshake that offered `offered`, was issued `issued` and ended
    /// in `outcome`.
    fn record_parts<'a>(
        &self,
        version: ProtocolVersion,
        offered: Option<&[u8]>,
        issued: impl ExactSizeIterator<Item = &'a [u8]>,
        outcome: Resumption,
    ) {
        let issued_count = (issued.len() as u32).min(MAX_ISSUED);
        // The chain of sessions is followed even for a line that is dropped, so that the
        // lines after it name the right client.
        let client = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .of(version, offered, issued);
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let line = Line {
            time_ms,
            client,
            version,
            offered: outcome.offered(),
            issued: issued_count,
            outcome,
        };
        let sent = self.queue.as_ref().map(|queue| queue.try_send(line));
        if !matches!(sent, Some(Ok(()))) {
            self.losses.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The lines lost so far, counted as they are lost (it outlives the recorder).
    pub fn losses(&self) -> Arc<Losses> {
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
fn open_owner_only(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::TraceIsSymlink {
                path: path.to_owned(),
            })
        }
        Err(source) => {
            return Err(Error::CreateTrace {
                path: path.to_owned(),
                source,
            })
        }
    };
    let meta = file.metadata().map_err(|source| Error::CreateTrace {
        path: path.to_owned(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(Error::TraceNotAFile {
            path: path.to_owned(),
        });
    }
    // Only after the checks: a file that is not one to truncate is left as it was.
    file.set_len(0)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o600)))
        .map_err(|source| Error::TraceMode {
            path: path.to_owned(),
            source,
        })?;
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

    #[test]
    fn a_trace_names_the_line_that_is_wrong() {
        let path = Path::new("t");
        let read = |text: &str| parse(text.as_bytes(), path);
        let good = "1 0123456789abcdef tls1.2 fresh 1 not_offered";
        let err = read(&format!("{good}\n")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t line 1: not a sesscache trace"),
            "{err}"
        );
        let err = read(&format!("{HEADER}\n\n# a comment\n{good}\n1 2\n")).unwrap_err();
        assert!(
            err.to_string().starts_with("t line 5: expected 6 fields"),
            "{err}"
        );
        let err = read(&format!("{HEADER}\n# nothing else\n")).unwrap_err();
        assert_eq!(err.to_string(), "t: the trace has no handshakes");
        let lines = read(&format!("{HEADER}\n{good}\n\n{good}\n")).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].to_string(), good);
    }

    #[test]
    fn a_recorder_follows_each_client_through_its_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.trace");
        let v13 = ProtocolVersion::TLS1_3;
        {
            let recorder = Recorder::create(&path).unwrap();
            let record = |offered: Option<&[u8]>, issued: &[&[u8]], outcome| {
                recorder.record_parts(v13, offered, issued.iter().copied(), outcome);
            };
            // Two clients start; the first resumes with its ticket, then with the next.
            record(None, &[b"qa1", b"qa2"], Resumption::NotOffered);
            record(None, &[b"qb1"], Resumption::NotOffered);
            record(Some(b"qa2"), &[b"qa3"], Resumption::Resumed);
            record(Some(b"qa3"), &[], Resumption::UnknownId);
            // An id issued before the trace began: a client of its own, the same each time.
            record(Some(b"qold"), &[], Resumption::UnknownId);
            record(Some(b"qold"), &[], Resumption::UnknownId);
            assert_eq!(recorder.losses().dropped(), 0);
        }
        let lines = read(&path).unwrap();
        let clients: Vec<u64> = lines.iter().map(|l| l.client).collect();
        assert_eq!(lines.len(), 6);
        assert_ne!(clients[0], clients[1]);
        assert_eq!(clients[2], clients[0]);
        assert_eq!(clients[3], clients[0]);
        assert_eq!(clients[4], clients[5]);
        assert!(!clients[..4].contains(&clients[4]));
        let issued: Vec<u32> = lines.iter().map(|l| l.issued).collect();
        assert_eq!(issued, [2, 1, 1, 0, 0, 0]);
        assert!(lines.iter().all(|l| l.offered == l.outcome.offered()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER));
        // The ids hold a `q`, which neither the hex of a client's hash nor any outcome has.
        assert!(
            !text.contains("qa1") && !text.contains("qold"),
            "no id is written"
        );
    }

    #[test]
    fn traces_are_owner_only_and_never_written_through_a_symlink() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("there");
        std::fs::write(&there, "old\n").unwrap();
        std::fs::set_permissions(&there, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Recorder::create(&there).unwrap());
        assert_eq!(std::fs::metadata(&there).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&there).unwrap(),
            format!("{HEADER}\n")
        );

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&there, &link).unwrap();
        let err = Recorder::create(&link).unwrap_err();
        assert!(matches!(err, Error::TraceIsSymlink { .. }), "{err}");
        let err = Recorder::create(dir.path()).unwrap_err();
        assert!(matches!(
            err,
            Error::CreateTrace { .. } | Error::TraceNotAFile { .. }
        ));
    }
}
