//! What can go wrong setting the tier up. Nothing a handshake does returns an error: the
//! store's failures are misses, counted in [`TierStats`](crate::TierStats).

/// A configuration the tier cannot start with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key file could not be read.
    #[error("cannot read the key file {path}: {source}")]
    KeyFileUnreadable {
        /// The file's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file may be read by other users than its owner.
    #[error("the key file {path} is readable by others (mode {mode:03o}): run `chmod 600 {path}`")]
    KeyFileExposed {
        /// The file's path.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A line of the key file is not a key line.
    #[error("key file, line {line}: {reason}")]
    KeyFile {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file holds no key.
    #[error("the key file holds no key (make one with `sesscache keygen`)")]
    NoKeys,
    /// The system's random source failed.
    #[error("the system's random source failed")]
    Random,
    /// No store URL was given.
    #[error("no store URL given")]
    NoStore,
    /// A store URL the client does not accept (its password, if any, is not shown).
    #[error("bad store URL {url}: {reason}")]
    Url {
        /// The URL, password hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// The tier's runtime could not start.
    #[error("cannot start the store client's runtime: {0}")]
    Runtime(std::io::Error),
}
