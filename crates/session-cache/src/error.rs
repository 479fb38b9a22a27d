//! The one error type of session-cache.

/// Why the cache refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session has an empty id, so no lookup could ever find it. OpenSSL once cached such
    /// sessions and could then never evict them (CVE-2024-2511); this cache refuses them.
    #[error("a session with an empty session id cannot be cached")]
    EmptySessionId,
}
