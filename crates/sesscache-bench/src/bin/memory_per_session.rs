//! Measures how many bytes each cached session costs, session and cache together, and how
//! many sessions fit in a megabyte (MiB), with a counting global allocator that also counts
//! OpenSSL's allocations (routed through it, `CRYPTO_set_mem_functions`): the bytes each
//! allocation asks for, without the allocator's own overhead per block.
//!
//! `cargo run --release -p sesscache-bench --bin memory_per_session [-- SESSIONS]` (default 1,000,000)
//!
//! For each kind of session (TLS 1.2; TLS 1.3; TLS 1.2 with a host name and ALPN), three
//! holders of the same sessions, measured one after another in the same run:
//! - `sesscache`: sessions as a handshake of ours makes them, in a [`SessionCache`]: the
//!   session's allocation and secret, and the cache's map slot, expiry order and tables;
//! - `sesscache-openssl`: the same as the OpenSSL adapter holds them: the session decoded from
//!   OpenSSL's form, OpenSSL's `SSL_SESSION` kept beside it, and the cache;
//! - `openssl`: OpenSSL's own cache (`SSL_CTX_add_session`, unlimited size) holding
//!   `SSL_SESSION`s decoded from the same form, the cache's references the only ones.
//!
//! Each figure is the growth of live heap bytes from making and caching the sessions, divided
//! by their number, once the cache has served lookups (tables it outgrew while filling are
//! reclaimed through the epoch by then).

use openssl::ssl::{SslContext, SslMethod, SslSession, SslSessionCacheMode};
use sesscache_bench::openssl_ffi::{openssl_header_bytes, route_openssl_allocations};
use session_cache::{CacheConfig, SessionCache};
use session_core::{
    AlpnProtocol, CipherSuite, HostName, MasterKey, ProtocolVersion, Session, SessionBuilder,
    SessionId, SidCtx,
};

use test_support::counting_alloc::{live_bytes, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: f64 = 1024.0 * 1024.0;

/// A kind of session, as the table names it.
#[derive(Clone, Copy)]
enum Kind {
    Tls12,
    Tls13,
    Tls12HostAlpn,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Tls12 => "TLS 1.2",
            Self::Tls13 => "TLS 1.3",
            Self::Tls12HostAlpn => "TLS 1.2, host name and ALPN",
        }
    }

    /// Session number `i` of this kind: a 32-byte id, a 48-byte secret, an 8-byte session id
    /// context, no certificate.
    fn session(self, i: u64, now: u64) -> Session {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_le_bytes());
        let (version, cipher) = match self {
            Self::Tls13 => (ProtocolVersion::TLS1_3, 0x1302),
            Self::Tls12 | Self::Tls12HostAlpn => (ProtocolVersion::TLS1_2, 0xc030),
        };
        let mut builder = SessionBuilder::new(version, now)
            .id(SessionId::new(&id).expect("32 bytes"))
            .cipher(CipherSuite(cipher))
            .sid_ctx(SidCtx::new(b"app:v1\0\0").expect("8 bytes"))
            .master_key(MasterKey::new(&[7; 48]).expect("48 bytes"))
            .timeout(7_200);
        if let Self::Tls12HostAlpn = self {
            builder = builder
                .host_name(Some(HostName::new("www.example.com").expect("a name")))
                .alpn(Some(AlpnProtocol::new(b"h2").expect("a protocol")));
        }
        builder.build()
    }
}

/// Live heap bytes per session that `hold` added, making and keeping `n` sessions.
fn per_session<T>(n: usize, hold: impl FnOnce() -> T) -> (f64, T) {
    let live = || live_bytes() - openssl_header_bytes();
    let before = live();
    let held = hold();
    ((live() - before) as f64 / n as f64, held)
}

/// A cache that keeps every session (no size limit) and has served lookups.
fn cache_of(sessions: impl Iterator<Item = Session>) -> SessionCache {
    let cache = SessionCache::new(CacheConfig {
        size: 0,
        ..CacheConfig::default()
    });
    for s in sessions {
        cache.add(&s).expect("added");
    }
    // Tables outgrown while adding are freed through the epoch, once no lookup can still be
    // reading them: serve some lookups (each pins the epoch, which reclaims in passing).
    for _ in 0..200_000 {
        let _ = cache.get(ProtocolVersion::TLS1_2, &[0; 32]);
    }
    cache
}

/// OpenSSL's form of session `i` of `kind`.
fn openssl_session(kind: Kind, i: u64, now: u64) -> SslSession {
    let der = session_der::to_der(&kind.session(i, now)).expect("encodes");
    SslSession::from_der(&der).expect("OpenSSL reads it")
}

fn main() {
    let routed = route_openssl_allocations();
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("memory_per_session: SESSIONS must be a positive whole number");
            std::process::exit(2);
        }
    };
    if !routed {
        eprintln!("memory_per_session: OpenSSL allocated before its allocations could be counted");
        std::process::exit(1);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    println!("{n} sessions of each kind; bytes per cached session (session and cache) and sessions per MiB");
    println!();
    println!("| kind | sesscache: session + cache | sesscache | sesscache-openssl | openssl |");
    println!("|---|---|---|---|---|");
    for kind in [Kind::Tls12, Kind::Tls13, Kind::Tls12HostAlpn] {
        // The session alone: its allocation and what it owns, without the Vec's slot.
        let (own, sessions) = per_session(n, || {
            (0..n as u64)
                .map(|i| kind.session(i, now))
                .collect::<Vec<_>>()
        });
        let own = own - size_of::<Session>() as f64;
        drop(sessions);
        let (total, held) =
            per_session(n, || cache_of((0..n as u64).map(|i| kind.session(i, now))));
        assert_eq!(held.len(), n);
        drop(held);

        let (adapter, held) = per_session(n, || {
            cache_of((0..n as u64).map(|i| {
                // As the adapter's new-session callback keeps it: decoded from OpenSSL's
                // form, with OpenSSL's session beside it.
                let openssl = openssl_session(kind, i, now);
                let der = openssl.to_der().expect("OpenSSL encodes it");
                let ours = session_der::from_der(&der).expect("decodes");
                let _ = ours.attach_native(Box::new(openssl));
                ours
            }))
        });
        assert_eq!(held.len(), n);
        drop(held);

        let (theirs, held) = per_session(n, || {
            let mut b = SslContext::builder(SslMethod::tls_server()).expect("a context");
            b.set_session_cache_mode(SslSessionCacheMode::SERVER);
            b.set_session_cache_size(0);
            let ctx = b.build();
            for i in 0..n as u64 {
                // SAFETY: the session was made for this context's cache and is not shared.
                assert!(unsafe { ctx.add_session(&openssl_session(kind, i, now)) });
            }
            ctx
        });
        drop(held);

        let cache = total - own;
        let row = |bytes: f64| format!("{bytes:.0} B, {:.0}/MiB", MIB / bytes);
        println!(
            "| {} | {own:.1} + {cache:.1} | {} | {} | {} |",
            kind.name(),
            row(total),
            row(adapter),
            row(theirs),
        );
    }
}
