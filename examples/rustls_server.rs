//! A rustls TLS server whose session store is sesscache's cache: the smallest useful
//! embedding. It serves six connections on 127.0.0.1:8443 (what `openssl s_client -reconnect`
//! makes), tells each client whether it resumed, and prints the cache's statistics.
//!
//! ```sh
//! cargo run --features rustls --example rustls_server &
//! openssl s_client -connect 127.0.0.1:8443 -tls1_2 -no_ticket -reconnect </dev/null | grep -E '^(New|Reused)'
//! ```

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;

use rustls::{HandshakeKind, ServerConfig, ServerConnection};
use sesscache::ctx::{Context, ContextConfig};
use sesscache::rustls::{complete_handshake, ServerSessions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let context = Context::new(ContextConfig::default()); // owns the cache: keep it
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)?;
    config.session_storage = ServerSessions::new(&context);
    let config = Arc::new(config);

    let listener = TcpListener::bind("127.0.0.1:8443")?;
    for tcp in listener.incoming().take(6) {
        let mut tcp = tcp?;
        let mut tls = ServerConnection::new(config.clone())?;
        // The handshake, counted in the cache (with why it did not resume, if it did not).
        let outcome = complete_handshake(&context, &mut tls, &mut tcp)?.outcome();
        let resumed = tls.handshake_kind() == Some(HandshakeKind::Resumed);
        writeln!(tls.writer(), "resumed: {resumed} ({outcome:?})")?;
        tls.send_close_notify();
        while tls.wants_write() {
            tls.write_tls(&mut tcp)?;
        }
    }
    let stats = context.cache().stats();
    println!(
        "hits {}, misses {}, cached {}; {:?}",
        stats.hits, stats.misses, stats.number, stats.resumptions
    );
    Ok(())
}
