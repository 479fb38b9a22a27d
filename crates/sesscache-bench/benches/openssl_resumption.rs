//! Resumed TLS handshakes through OpenSSL (the `openssl` crate), in memory: each thread runs a
//! client and a server over an in-process pipe, no sockets. The same server context with
//! OpenSSL's own internal cache (`openssl`) against our cache as its external cache through
//! `sesscache-openssl` (`sesscache`), in the same run; with two threads both share one server
//! context, as a server's threads do.
//!
//! Group `openssl_resumption`, cases `tls12_1t`, `tls12_2t` (session ids: the get callback on
//! every resumption) and `tls13_1t`, `tls13_2t` (stateful tickets: each resumption takes its
//! ticket and is issued new ones, so the cache takes and adds on every handshake).
//!
//! Group `openssl_callback`: what the external cache adds to one TLS 1.2 resumption, alone:
//! `tls12_get` (the lookup and a new reference to the `SSL_SESSION` kept beside the cached
//! session) and `tls12_get_der` (a session from the fleet's store: the lookup, our encoding,
//! OpenSSL's decoding and freeing).
//!
//! `cargo bench -p sesscache-bench --bench openssl_resumption`; the ratios are printed by
//! `cargo run --release -p sesscache-bench --bin bench_ratios`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ctx::{Context, ContextConfig};
use openssl::pkey::PKey;
use openssl::ssl::{
    HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslContextBuilder, SslMethod,
    SslOptions, SslSession, SslSessionCacheMode, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;

/// One direction of an in-process pipe.
type Queue = Rc<RefCell<VecDeque<u8>>>;

/// One end of an in-process duplex pipe: reads what the other end wrote, and would block
/// (rather than wait) when there is nothing.
#[derive(Debug)]
struct End {
    inbox: Queue,
    outbox: Queue,
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut inbox = self.inbox.borrow_mut();
        if inbox.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(inbox.len());
        for (b, byte) in buf.iter_mut().zip(inbox.drain(..n)) {
            *b = byte;
        }
        Ok(n)
    }
}

impl Write for End {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.outbox.borrow_mut().extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn pipe() -> (End, End) {
    let (a, b): (Queue, Queue) = Default::default();
    (
        End {
            inbox: a.clone(),
            outbox: b.clone(),
        },
        End {
            inbox: b,
            outbox: a,
        },
    )
}

/// Where one side of a handshake stands.
enum Side {
    Done(SslStream<End>),
    Mid(MidHandshakeSslStream<End>),
}

fn step(result: Result<SslStream<End>, HandshakeError<End>>) -> Side {
    match result {
        Ok(stream) => Side::Done(stream),
        Err(HandshakeError::WouldBlock(mid)) => Side::Mid(mid),
        Err(err) => panic!("handshake failed: {err}"),
    }
}

/// One handshake offering `offer`, both sides driven in turn on this thread; whether the
/// server resumed, and the client's newest session (a new ticket, in TLS 1.3).
fn handshake(
    server: &SslContext,
    client: &SslContext,
    offer: Option<&SslSession>,
) -> (bool, SslSession) {
    let (c, s) = pipe();
    let mut ssl = Ssl::new(client).unwrap();
    if let Some(offer) = offer {
        // SAFETY: the session came from a connection of this same client context.
        unsafe { ssl.set_session(offer).unwrap() };
    }
    let mut client_side = step(ssl.connect(c));
    let mut server_side = step(Ssl::new(server).unwrap().accept(s));
    loop {
        if let Side::Mid(mid) = server_side {
            server_side = step(mid.handshake());
        }
        if let Side::Mid(mid) = client_side {
            client_side = step(mid.handshake());
        }
        if let (Side::Done(client), Side::Done(server)) = (&mut client_side, &mut server_side) {
            // The client reads what came after the handshake: TLS 1.3's tickets.
            let mut buf = [0u8; 1];
            match client.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => panic!("unexpected read: {other:?}"),
            }
            let session = client.ssl().session().unwrap().to_owned();
            // A clean close on both sides: OpenSSL removes the session of a connection that
            // ends without one.
            let _ = client.shutdown();
            let _ = server.shutdown();
            return (server.ssl().session_reused(), session);
        }
    }
}

fn identity() -> (X509, PKey<openssl::pkey::Private>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (
        X509::from_der(made.cert.der()).unwrap(),
        PKey::private_key_from_der(&made.signing_key.serialize_der()).unwrap(),
    )
}

/// The server context: OpenSSL's internal cache, or ours as its external cache.
fn server(version: SslVersion, ours: Option<&Context>) -> SslContext {
    let (cert, key) = identity();
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
    b.set_certificate(&cert).unwrap();
    b.set_private_key(&key).unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    match ours {
        Some(context) => sesscache_openssl::install_server(&mut b, context).unwrap(),
        None => {
            // The same protocol for both: session ids, and stateful TLS 1.3 tickets.
            b.set_session_cache_mode(SslSessionCacheMode::SERVER);
            b.set_options(SslOptions::NO_TICKET);
            b.set_session_id_context(b"").unwrap();
        }
    }
    b.build()
}

fn client(version: SslVersion) -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.build()
}

fn resumptions(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("openssl_resumption");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (name, version) in [("tls12", SslVersion::TLS1_2), ("tls13", SslVersion::TLS1_3)] {
        for threads in [1usize, 2] {
            let case = format!("{name}_{threads}t");
            g.throughput(Throughput::Elements(threads as u64));
            let context = Context::new(ContextConfig::default());
            for (contender, ours) in [("sesscache", Some(&context)), ("openssl", None)] {
                let server = server(version, ours);
                let client = client(version);
                g.bench_function(BenchmarkId::new(contender, &case), |b| {
                    b.iter_custom(|iters| {
                        let barrier = Barrier::new(threads);
                        let (server, client) = (&server, &client);
                        std::thread::scope(|scope| {
                            let workers: Vec<_> = (0..threads)
                                .map(|_| {
                                    let barrier = &barrier;
                                    scope.spawn(move || {
                                        // A full handshake's session, to resume from.
                                        let (_, mut offer) = handshake(server, client, None);
                                        barrier.wait();
                                        let start = Instant::now();
                                        for _ in 0..iters {
                                            let (resumed, next) =
                                                handshake(server, client, Some(&offer));
                                            assert!(resumed, "every handshake resumes");
                                            offer = next;
                                        }
                                        start.elapsed()
                                    })
                                })
                                .collect();
                            workers
                                .into_iter()
                                .map(|w| w.join().unwrap())
                                .max()
                                .unwrap()
                        })
                    })
                });
            }
        }
    }
    g.finish();

    // What the external cache adds to each TLS 1.2 resumption, alone: the lookup and a new
    // reference to the session kept beside the cached one (`tls12_get`), which OpenSSL gives
    // back when the connection ends; and, for a session that came from elsewhere (the fleet's
    // store), our encoding, OpenSSL's decoding into a fresh session, and freeing it
    // (`tls12_get_der`).
    let mut g = cr.benchmark_group("openssl_callback");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let context = Context::new(ContextConfig::default());
    let server = server(SslVersion::TLS1_2, Some(&context));
    let client = client(SslVersion::TLS1_2);
    let (_, session) = handshake(&server, &client, None);
    let id = session.id().to_vec();
    let look_up = || {
        context
            .cache()
            .get(session_core::ProtocolVersion::TLS1_2, &id)
            .unwrap()
    };
    g.bench_function("tls12_get", |b| {
        b.iter(|| {
            let cached = look_up();
            let kept = cached.native().unwrap().downcast_ref::<SslSession>();
            drop(kept.unwrap().clone());
        })
    });
    g.bench_function("tls12_get_der", |b| {
        b.iter(|| {
            let der = session_der::to_der(&look_up()).unwrap();
            drop(SslSession::from_der(&der).unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, resumptions);
criterion_main!(benches);
