//! The cache mode bits, with OpenSSL's values and meanings (`SSL_CTX_set_session_cache_mode`).

bitflags::bitflags! {
    /// Which sessions the context caches automatically, and how the internal cache is used.
    ///
    /// An explicit [`SessionCache::add`](crate::SessionCache::add) ignores these bits, as
    /// `SSL_CTX_add_session` does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[doc(alias = "SSL_SESS_CACHE_SERVER")]
    pub struct CacheMode: u32 {
        /// Cache client sessions after a handshake.
        const CLIENT = 0x0001;
        /// Cache server sessions after a handshake (the default).
        const SERVER = 0x0002;
        /// Both roles.
        const BOTH = Self::CLIENT.bits() | Self::SERVER.bits();
        /// No automatic flush every 255 good handshakes.
        const NO_AUTO_CLEAR = 0x0080;
        /// Do not look sessions up in the internal cache (only the get callback).
        const NO_INTERNAL_LOOKUP = 0x0100;
        /// Do not store sessions in the internal cache (only the new-session callback).
        const NO_INTERNAL_STORE = 0x0200;
        /// Both of the above: the internal cache is not used at all.
        const NO_INTERNAL = Self::NO_INTERNAL_LOOKUP.bits() | Self::NO_INTERNAL_STORE.bits();
        /// Refresh a session's time when it is added.
        const UPDATE_TIME = 0x0400;
    }
}

impl CacheMode {
    /// No automatic caching (`SSL_SESS_CACHE_OFF`).
    pub const OFF: Self = Self::empty();
}

impl Default for CacheMode {
    fn default() -> Self {
        Self::SERVER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_openssl() {
        assert_eq!(CacheMode::OFF.bits(), 0);
        assert_eq!(CacheMode::BOTH.bits(), 3);
        assert_eq!(CacheMode::NO_INTERNAL.bits(), 0x300);
        assert_eq!(CacheMode::UPDATE_TIME.bits(), 0x400);
        assert_eq!(CacheMode::default(), CacheMode::SERVER);
        assert_eq!(
            CacheMode::from_bits(0x0800),
            None,
            "unknown bits are refused"
        );
    }
}
