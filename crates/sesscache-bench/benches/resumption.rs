//! Resumed TLS handshakes per second through rustls, in memory (no sockets): a rustls server
//! whose session store is sesscache's (`sesscache`) against the same server with rustls's own
//! `ServerSessionMemoryCache` (`rustls`), in the same run. The client side is rustls's own
//! memory cache in both, so only the server's store differs.
//!
//! Group `resumption`, cases `tls12` (session ids: the store's `get`) and `tls13` (stateful
//! tickets: the store's `take` and `put` on every resumption).
//!
//! `cargo bench -p sesscache-bench --bench resumption`; the ratio is printed by
//! `cargo run --release -p sesscache-bench --bin bench_ratios`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ctx::{Context, ContextConfig};
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection,
    SupportedProtocolVersion,
};
use sesscache_rustls::ServerSessions;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One connection to the end of its handshake and tickets; whether it resumed.
fn connect(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> bool {
    let name = ServerName::try_from("localhost").expect("a valid name");
    let mut c = ClientConnection::new(client.clone(), name).expect("client");
    let mut s = ServerConnection::new(server.clone()).expect("server");
    let mut buf = Vec::with_capacity(8192);
    loop {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("client writes");
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).expect("server reads");
            s.process_new_packets().expect("server processes");
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).expect("server writes");
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).expect("client reads");
            c.process_new_packets().expect("client processes");
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() && !s.wants_write() {
            return s.handshake_kind() == Some(HandshakeKind::Resumed);
        }
    }
}

fn bench(c: &mut Criterion) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");

    let mut group = c.benchmark_group("resumption");
    group.throughput(Throughput::Elements(1));
    let versions: [(&str, &'static SupportedProtocolVersion); 2] = [
        ("tls12", &rustls::version::TLS12),
        ("tls13", &rustls::version::TLS13),
    ];
    for (case, version) in versions {
        let context = Context::new(ContextConfig::default());
        let stores: [(&str, Arc<dyn StoresServerSessions>); 2] = [
            ("sesscache", ServerSessions::new(&context)),
            ("rustls", ServerSessionMemoryCache::new(20_480)),
        ];
        for (contender, store) in stores {
            let mut server = ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&[version])
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], key.clone_key())
                .expect("server config");
            server.session_storage = store;
            let server = Arc::new(server);
            let mut client = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[version])
                .expect("versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            client.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(64)));
            let client = Arc::new(client);
            assert!(!connect(&client, &server), "the first handshake is full");
            assert!(
                connect(&client, &server),
                "{contender}/{case}: resumption works"
            );
            group.bench_function(BenchmarkId::new(contender, case), |b| {
                b.iter(|| assert!(connect(&client, &server)));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
