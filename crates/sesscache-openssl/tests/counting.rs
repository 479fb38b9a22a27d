//! What the adapter counts, against OpenSSL's own counters for the same handshakes
//! (`SSL_CTX_sess_accept_good` and the rest): renegotiations refused or started by the
//! server, a server-name callback that switches the connection's `SSL_CTX`, and a TLS 1.3
//! resumption through a HelloRetryRequest.

use std::io::{Read, Write};
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use ctx::{Context, ContextConfig};
use foreign_types::ForeignTypeRef;
use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslContextRef, SslMethod, SslSession, SslVerifyMode,
    SslVersion,
};
use openssl::x509::X509;
use session_cache::CacheConfig;
use session_core::{SidCtx, SystemClock};

extern "C" {
    fn SSL_renegotiate(s: *mut openssl_sys::SSL) -> c_int;
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Ossl {
    accept: i64,
    accept_good: i64,
    accept_renegotiate: i64,
    hits: i64,
    misses: i64,
}

/// OpenSSL's own counters of a context (`SSL_CTX_sess_accept` and the rest).
fn ossl(ctx: &SslContextRef) -> Ossl {
    // SAFETY: reads of a live context's counters (`SSL_CTX_ctrl` with no argument).
    let get = |cmd: c_int| unsafe {
        openssl_sys::SSL_CTX_ctrl(ctx.as_ptr(), cmd, 0, std::ptr::null_mut()) as i64
    };
    Ossl {
        accept: get(24),
        accept_good: get(25),
        accept_renegotiate: get(26),
        hits: get(27),
        misses: get(29),
    }
}

fn identity(b: &mut SslContextBuilder) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    b.set_certificate(&X509::from_der(made.cert.der()).unwrap())
        .unwrap();
    b.set_private_key(&PKey::private_key_from_der(&made.signing_key.serialize_der()).unwrap())
        .unwrap();
}

fn context() -> Context {
    Context::new(ContextConfig {
        sid_ctx: SidCtx::new(b"app").unwrap(),
        cache: CacheConfig {
            clock: Arc::new(SystemClock),
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    })
}

fn client(version: SslVersion, groups: Option<&str>) -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_max_proto_version(Some(version)).unwrap();
    if let Some(g) = groups {
        b.set_groups_list(g).unwrap();
    }
    b.build()
}

fn plain_connect(
    server: &SslContext,
    client: &SslContext,
    offer: Option<&SslSession>,
) -> (bool, SslSession) {
    let (a, b) = UnixStream::pair().unwrap();
    let server = server.clone();
    let t = std::thread::spawn(move || {
        let mut tls = Ssl::new(&server).unwrap().accept(a).unwrap();
        tls.write_all(b"x").unwrap();
        let r = tls.ssl().session_reused();
        let _ = tls.shutdown();
        r
    });
    let mut ssl = Ssl::new(client).unwrap();
    ssl.set_hostname("localhost").unwrap();
    if let Some(o) = offer {
        unsafe { ssl.set_session(o).unwrap() };
    }
    let mut tls = ssl.connect(b).unwrap();
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).unwrap();
    let s = tls.ssl().session().unwrap().to_owned();
    let _ = tls.shutdown();
    let r = t.join().unwrap();
    (r, s)
}

/// The server-name callback switches the connection to another `SSL_CTX` (one certificate
/// per name) built without `install_server`: the handshakes are still counted and finished.
#[test]
fn a_server_name_callback_that_switches_the_context_leaves_the_count_whole() {
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let context = context();
        let mut other = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
        identity(&mut other);
        let other = other.build();
        let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
        identity(&mut b);
        b.set_max_proto_version(Some(version)).unwrap();
        sesscache_openssl::install_server(&mut b, &context).unwrap();
        let switch_to = other.clone();
        b.set_servername_callback(move |ssl, _alert| {
            ssl.set_ssl_context(&switch_to).unwrap();
            Ok(())
        });
        let server = b.build();
        let client = client(version, None);
        let (_, first) = plain_connect(&server, &client, None);
        let (resumed, _) = plain_connect(&server, &client, Some(&first));
        let s = context.cache().stats();
        assert!(resumed, "{version:?}");
        assert_eq!((s.accept, s.accept_good), (2, 2), "{version:?}: {s:?}");
        assert_eq!(s.resumptions.handshakes(), 2, "{version:?}: {s:?}");
        assert_eq!(s.resumptions.resumed, 1, "{version:?}: {s:?}");
    }
}

/// A TLS 1.2 renegotiation the server starts: counted as OpenSSL counts it.
#[test]
fn a_renegotiation_started_by_the_server_counts_as_openssl_counts_it() {
    let context = context();
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
    identity(&mut b);
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    sesscache_openssl::install_server(&mut b, &context).unwrap();
    let server = b.build();
    let client = client(SslVersion::TLS1_2, None);
    let (a, c) = UnixStream::pair().unwrap();
    let srv = server.clone();
    let t = std::thread::spawn(move || {
        let mut tls = Ssl::new(&srv).unwrap().accept(a).unwrap();
        // SAFETY: the live connection, owned by this thread.
        unsafe {
            assert_eq!(SSL_renegotiate(tls.ssl().as_ptr()), 1);
            openssl_sys::SSL_do_handshake(tls.ssl().as_ptr());
        }
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).unwrap();
        tls.write_all(b"z").unwrap();
        let _ = tls.shutdown();
    });
    let mut tls = Ssl::new(&client).unwrap().connect(c).unwrap();
    // The client reads the HelloRequest (and answers it, or not, as OpenSSL decides).
    tls.get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let _ = tls.read(&mut byte);
    tls.get_ref().set_read_timeout(None).unwrap();
    tls.write_all(b"y").unwrap();
    tls.read_exact(&mut byte).unwrap();
    let _ = tls.shutdown();
    t.join().unwrap();
    let s = context.cache().stats();
    let theirs = ossl(&server);
    assert_eq!(s.accept_good as i64, theirs.accept_good, "{s:?} {theirs:?}");
    assert_eq!(
        s.resumptions.handshakes() as i64,
        theirs.accept_good,
        "{s:?}"
    );
}

/// OpenSSL 3 refuses a client's renegotiation by default and keeps the connection: nothing
/// more is counted, however often the client asks.
#[test]
fn a_refused_renegotiation_counts_nothing() {
    let context = context();
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
    identity(&mut b);
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    sesscache_openssl::install_server(&mut b, &context).unwrap();
    let server = b.build();
    let client = client(SslVersion::TLS1_2, None);
    let (_, first) = plain_connect(&server, &client, None);
    let (a, c) = UnixStream::pair().unwrap();
    let srv = server.clone();
    let t = std::thread::spawn(move || {
        let mut tls = Ssl::new(&srv).unwrap().accept(a).unwrap();
        let mut byte = [0u8; 1];
        let _ = tls.read_exact(&mut byte);
    });
    let mut ssl = Ssl::new(&client).unwrap();
    // SAFETY: the session came from a connection of this same client context.
    unsafe { ssl.set_session(&first).unwrap() };
    let tls = ssl.connect(c).unwrap();
    assert!(tls.ssl().session_reused());
    for _ in 0..3 {
        // SAFETY: the live connection, owned by this thread.
        unsafe {
            SSL_renegotiate(tls.ssl().as_ptr());
            openssl_sys::SSL_do_handshake(tls.ssl().as_ptr());
        }
    }
    drop(tls);
    t.join().unwrap();
    let s = context.cache().stats();
    let theirs = ossl(&server);
    assert_eq!(s.accept_good as i64, theirs.accept_good, "{s:?} {theirs:?}");
    assert_eq!((s.accept_good, s.resumptions.resumed), (2, 1), "{s:?}");
}

/// TLS 1.3 resumption through a HelloRetryRequest (the client's key share is for a group the
/// server does not take): OpenSSL looks the ticket up in both ClientHellos, and it resumes.
#[test]
fn a_tls13_ticket_resumes_through_a_hello_retry_request() {
    let context = context();
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
    identity(&mut b);
    b.set_groups_list("X25519").unwrap();
    sesscache_openssl::install_server(&mut b, &context).unwrap();
    let server = b.build();
    let client = client(SslVersion::TLS1_3, Some("P-256:X25519"));
    let (_, first) = plain_connect(&server, &client, None);
    let (resumed, _) = plain_connect(&server, &client, Some(&first));
    let s = context.cache().stats();
    assert!(resumed, "{s:?}");
    assert_eq!((s.hits, s.resumptions.resumed), (1, 1), "{s:?}");
    let (again, _) = plain_connect(&server, &client, Some(&first));
    assert!(!again, "and the ticket resumes once");
}
