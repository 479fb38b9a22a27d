//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Why a workload, a trace or a replay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`Workload`](crate::simulate::Workload) that cannot run (the message says which
    /// setting and why).
    #[error("{0}")]
    Workload(String),
    /// A simulated (or replayed) handshake failed: the simulated connections refused what the
    /// engine asked of them.
    #[error("a {} handshake failed", if *.replayed { "replayed" } else { "simulated" })]
    Handshake {
        /// Whether it was a replay's handshake.
        replayed: bool,
        /// What the connection said.
        #[source]
        source: ctx::Error,
    },
    /// A worker thread of a run panicked.
    #[error("a worker thread panicked")]
    WorkerPanicked,
    /// The engine's own counts disagree: a bug in the engine or the cache.
    #[error("internal inconsistency: {0}")]
    Inconsistent(String),
    /// A trace could not be opened.
    #[error("cannot open the trace {}", .path.display())]
    OpenTrace {
        /// The trace's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading a line of a trace failed.
    #[error("{} line {line}: cannot read it", .path.display())]
    ReadTrace {
        /// The trace's path.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A line of a trace is not one: a first line that is not the header, or a handshake's
    /// line with a field that cannot be.
    #[error("{} line {line}: {why}", .path.display())]
    BadTraceLine {
        /// The trace's path.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A trace with a header and no handshake.
    #[error("{}: the trace has no handshakes", .path.display())]
    EmptyTrace {
        /// The trace's path.
        path: PathBuf,
    },
    /// A replay of no handshakes.
    #[error("the trace has no handshakes")]
    NothingToReplay,
    /// The path given for a new trace is a symlink, which is never written through.
    #[error(
        "the trace {} is a symlink; give the file itself (it is never written through a link)",
        .path.display()
    )]
    TraceIsSymlink {
        /// The trace's path.
        path: PathBuf,
    },
    /// The path given for a new trace is there and is not a regular file.
    #[error("the trace {} is not a regular file", .path.display())]
    TraceNotAFile {
        /// The trace's path.
        path: PathBuf,
    },
    /// A new trace could not be created.
    #[error("cannot create the trace {}", .path.display())]
    CreateTrace {
        /// The trace's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A new trace could not be made owner-only (or emptied).
    #[error("cannot make the trace {} owner-only", .path.display())]
    TraceMode {
        /// The trace's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A new trace's header could not be written.
    #[error("cannot write the trace {}", .path.display())]
    WriteTrace {
        /// The trace's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The operating system gave no randomness for the trace's key.
    #[error("no randomness for the trace's key")]
    NoRandomness,
    /// The trace's writer thread could not be started.
    #[error("cannot start the trace's writer")]
    TraceWriter(#[source] io::Error),
}
