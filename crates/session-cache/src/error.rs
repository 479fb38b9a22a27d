//! The one error type of session-cache.

/// Why the cache refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session has an empty id, so no lookup could ever find it. OpenSSL once cached such
    /// sessions and could then never evict them (CVE-2024-2511); this cache refuses them.
    #[error("a session with an empty session id cannot be cached")]
    EmptySessionId,
    /// The cache is full and the add was made from inside a remove callback, where an add
    /// may not evict: the eviction would run the remove callback again, and a callback that
    /// adds for every removal would never end.
    #[error("the cache is full, and an add made by a remove callback does not evict")]
    FullInRemoveCallback,
}
