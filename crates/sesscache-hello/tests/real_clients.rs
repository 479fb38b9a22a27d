//! The parser against what real clients send: OpenSSL's `s_client` (captured once, in
//! `fixtures/`, by `fixtures/capture.py`), rustls 0.23 clients (made here, in memory, against
//! rustls servers whose session store records the keys it holds), a HelloRetryRequest's
//! two ClientHellos, and a hand-built ClientHello with 900 PSK identities.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::client::Resumption;
use rustls::crypto::ring::kx_group::{SECP256R1, X25519};
use rustls::crypto::{ring, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::StoresServerSessions;
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection,
    SupportedProtocolVersion,
};
use sesscache_hello::{parse_handshake, parse_records, ClientHello, Offer, ServerPolicy};
use support::hello::{records, Hello};
use support::invariants;

const TLS13: ServerPolicy = ServerPolicy {
    tls13: true,
    stateless_tickets: false,
};
const TLS13_STATELESS: ServerPolicy = ServerPolicy {
    tls13: true,
    stateless_tickets: true,
};
const TLS12: ServerPolicy = ServerPolicy {
    tls13: false,
    stateless_tickets: false,
};
const TLS12_STATELESS: ServerPolicy = ServerPolicy {
    tls13: false,
    stateless_tickets: true,
};

// ---- OpenSSL s_client, captured ----

/// A captured first flight and the keys of the session `s_client` offered in it.
struct Capture {
    bytes: &'static [u8],
    session_id: Vec<u8>,
    ticket: Vec<u8>,
}

fn capture(bytes: &'static [u8], expect: &str) -> Capture {
    let field = |name: &str| {
        let line = expect
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in the .expect file"));
        (0..line.len() / 2)
            .map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    Capture {
        bytes,
        session_id: field("session_id"),
        ticket: field("ticket"),
    }
}

macro_rules! fixture {
    ($name:literal) => {
        capture(
            include_bytes!(concat!("fixtures/", $name, ".bin")),
            include_str!(concat!("fixtures/", $name, ".expect")),
        )
    };
}

/// Parses a whole first flight, checking that every shorter prefix asks for more.
#[track_caller]
fn parse_flight(bytes: &[u8]) -> ClientHello {
    for end in 0..bytes.len() {
        assert_eq!(
            parse_records(&bytes[..end]),
            Ok(None),
            "a prefix of {end} bytes"
        );
    }
    let hello = parse_records(bytes)
        .unwrap()
        .expect("the whole ClientHello");
    invariants::check(bytes);
    hello
}

#[test]
fn openssl_tls12_offering_a_session_id() {
    let c = fixture!("openssl-tls12-session-id");
    let hello = parse_flight(c.bytes);
    assert_eq!(hello.legacy_version(), 0x0303);
    assert_eq!(hello.session_id(), c.session_id);
    assert_eq!(c.ticket, b"");
    assert_eq!(hello.session_ticket(), Some(&b""[..]), "asks for a ticket");
    assert!(!hello.offers_tls13());
    assert_eq!(hello.psk_identities().len(), 0);
    assert_eq!(hello.server_name(), Some("localhost"));
    for server in [TLS13, TLS13_STATELESS, TLS12, TLS12_STATELESS] {
        assert_eq!(hello.offer(server), Offer::SessionId(&c.session_id));
    }
}

#[test]
fn openssl_tls12_offering_a_ticket() {
    let c = fixture!("openssl-tls12-ticket");
    let hello = parse_flight(c.bytes);
    assert_eq!(hello.session_id(), c.session_id);
    assert_eq!(hello.session_ticket(), Some(&c.ticket[..]));
    assert!(!hello.offers_tls13());
    assert_eq!(hello.offer(TLS12), Offer::SessionId(&c.session_id));
    assert_eq!(hello.offer(TLS12_STATELESS), Offer::None);
    assert_eq!(hello.offer(TLS13_STATELESS), Offer::None);
}

#[test]
fn openssl_tls13_offering_a_stateless_ticket() {
    let c = fixture!("openssl-tls13-ticket");
    let hello = parse_flight(c.bytes);
    check_openssl_tls13(&hello, &c);
}

#[test]
fn openssl_tls13_offering_a_stateful_ticket() {
    let c = fixture!("openssl-tls13-stateful");
    let hello = parse_flight(c.bytes);
    assert_eq!(
        c.ticket.len(),
        32,
        "a stateful OpenSSL server's ticket is a session id"
    );
    check_openssl_tls13(&hello, &c);
}

#[track_caller]
fn check_openssl_tls13(hello: &ClientHello, c: &Capture) {
    assert_eq!(hello.legacy_version(), 0x0303);
    assert_eq!(hello.supported_versions(), [0x0304]);
    assert!(hello.offers_tls13());
    assert_eq!(hello.psk_key_exchange_modes(), [1]);
    assert_eq!(hello.server_name(), Some("localhost"));
    let ids: Vec<_> = hello.psk_identities().collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].identity(), c.ticket);
    assert_ne!(ids[0].obfuscated_ticket_age(), 0);
    // The legacy session id: random, for middleboxes (RFC 8446, D.4), not the session's.
    assert_eq!(hello.session_id().len(), 32);
    assert_ne!(hello.session_id(), c.session_id);
    assert_eq!(hello.offer(TLS13), Offer::Ticket(&c.ticket));
    assert_eq!(hello.offer(TLS13_STATELESS), Offer::None);
}

// ---- rustls, in memory ----

/// A server session store that records which keys rustls gave it and asked it for.
#[derive(Debug, Default)]
struct RecordingStore {
    sessions: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    puts: Mutex<Vec<Vec<u8>>>,
    lookups: Mutex<Vec<Vec<u8>>>,
}

impl RecordingStore {
    fn puts(&self) -> Vec<Vec<u8>> {
        self.puts.lock().unwrap().clone()
    }

    fn lookups(&self) -> Vec<Vec<u8>> {
        self.lookups.lock().unwrap().clone()
    }
}

impl StoresServerSessions for RecordingStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.puts.lock().unwrap().push(key.clone());
        self.sessions.lock().unwrap().insert(key, value);
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookups.lock().unwrap().push(key.to_vec());
        self.sessions.lock().unwrap().get(key).cloned()
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookups.lock().unwrap().push(key.to_vec());
        self.sessions.lock().unwrap().remove(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

struct Pki {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pki {
        cert: made.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into()),
    }
}

fn provider(groups: &[&'static dyn SupportedKxGroup]) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: groups.to_vec(),
        ..ring::default_provider()
    })
}

/// A server of `versions` accepting key shares of `groups`, one TLS 1.3 ticket per
/// handshake; sessions in `store`, or in stateless tickets.
fn server_config(
    pki: &Pki,
    versions: &[&'static SupportedProtocolVersion],
    groups: &[&'static dyn SupportedKxGroup],
    store: &Arc<RecordingStore>,
    stateless: bool,
) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider(groups))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    config.session_storage = store.clone();
    config.send_tls13_tickets = 1;
    if stateless {
        config.ticketer = ring::Ticketer::new().unwrap();
    }
    Arc::new(config)
}

/// A client of `versions` supporting X25519 and secp256r1 (shares for the first, or the one
/// a server chose before), with its own in-memory session cache.
fn client_config(pki: &Pki, versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.cert.clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider(&[X25519, SECP256R1]))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::in_memory_sessions(16);
    Arc::new(config)
}

/// One connection, to the end of the handshake and the tickets after it: the client's
/// flights (each what it wrote before waiting for the server) and the kind of handshake.
fn connect(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> (Vec<Vec<u8>>, HandshakeKind) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(client.clone(), name).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    let mut flights = Vec::new();
    for _ in 0..20 {
        let mut flight = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut flight).unwrap();
        }
        let mut rd = &flight[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            s.process_new_packets().unwrap();
        }
        let mut answer = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut answer).unwrap();
        }
        let mut rd = &answer[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        let quiet = flight.is_empty() && answer.is_empty();
        if !flight.is_empty() {
            flights.push(flight);
        }
        if quiet && !c.is_handshaking() && !s.is_handshaking() {
            let kind = s.handshake_kind().unwrap();
            assert_eq!(c.handshake_kind(), Some(kind));
            return (flights, kind);
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn rustls_tls13_fresh_then_resuming_a_stateful_ticket() {
    let pki = pki();
    let store = Arc::new(RecordingStore::default());
    let server = server_config(&pki, rustls::ALL_VERSIONS, &[X25519], &store, false);
    let client = client_config(&pki, rustls::ALL_VERSIONS);

    let (flights, kind) = connect(&client, &server);
    assert_eq!(kind, HandshakeKind::Full);
    let fresh = parse_flight(&flights[0]);
    assert_eq!(fresh.legacy_version(), 0x0303);
    assert_eq!(fresh.supported_versions(), [0x0304, 0x0303]);
    assert_eq!(fresh.server_name(), Some("localhost"));
    assert_eq!(fresh.psk_identities().len(), 0);
    assert_eq!(fresh.session_id().len(), 32, "random, for middleboxes");
    assert_eq!(
        fresh.offer(TLS13),
        Offer::None,
        "never the random session id"
    );
    let tickets = store.puts();
    assert_eq!(tickets.len(), 1);
    assert!(store.lookups().is_empty());

    let (flights, kind) = connect(&client, &server);
    assert_eq!(kind, HandshakeKind::Resumed);
    let resuming = parse_flight(&flights[0]);
    let ids: Vec<_> = resuming.psk_identities().collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        ids[0].identity(),
        tickets[0],
        "the key the server's store holds"
    );
    assert_eq!(resuming.psk_key_exchange_modes(), [1]);
    assert_eq!(resuming.offer(TLS13), Offer::Ticket(&tickets[0]));
    assert_eq!(resuming.offer(TLS13_STATELESS), Offer::None);
    assert_eq!(store.lookups(), [tickets[0].clone()], "what rustls took");
}

#[test]
fn rustls_tls12_resuming_a_session_id() {
    let pki = pki();
    let store = Arc::new(RecordingStore::default());
    let server = server_config(&pki, &[&rustls::version::TLS12], &[X25519], &store, false);
    // A TLS 1.2 client, and one that offers TLS 1.3 too, to a TLS 1.2 server.
    for versions in [&[&rustls::version::TLS12][..], rustls::ALL_VERSIONS] {
        let client = client_config(&pki, versions);
        let (flights, kind) = connect(&client, &server);
        assert_eq!(kind, HandshakeKind::Full);
        let fresh = parse_flight(&flights[0]);
        assert_eq!(fresh.session_ticket(), Some(&b""[..]), "asks for a ticket");
        let id = store.puts().pop().unwrap();

        let (flights, kind) = connect(&client, &server);
        assert_eq!(kind, HandshakeKind::Resumed);
        let resuming = parse_flight(&flights[0]);
        assert_eq!(
            resuming.session_id(),
            id,
            "the key the server's store holds"
        );
        assert_eq!(resuming.psk_identities().len(), 0);
        assert_eq!(resuming.offer(TLS12), Offer::SessionId(&id));
        assert_eq!(resuming.offer(TLS12_STATELESS), Offer::SessionId(&id));
        assert_eq!(store.lookups().pop(), Some(id), "what rustls asked for");
        let tls13 = versions.len() == 2;
        assert_eq!(resuming.offers_tls13(), tls13);
        if tls13 {
            // Were the server to allow TLS 1.3, the client would get a full TLS 1.3 handshake.
            assert_eq!(resuming.offer(TLS13), Offer::None);
        }
    }
}

#[test]
fn rustls_resuming_stateless_tickets_fetches_nothing() {
    let pki = pki();
    let store = Arc::new(RecordingStore::default());
    for versions in [&[&rustls::version::TLS12][..], &[&rustls::version::TLS13]] {
        let server = server_config(&pki, versions, &[X25519], &store, true);
        let client = client_config(&pki, versions);
        connect(&client, &server);
        let (flights, kind) = connect(&client, &server);
        assert_eq!(kind, HandshakeKind::Resumed);
        let resuming = parse_flight(&flights[0]);
        let ticket = match resuming.offers_tls13() {
            true => resuming.psk_identities().next().unwrap().identity(),
            false => resuming.session_ticket().unwrap(),
        };
        assert!(ticket.len() > 32, "a sealed session");
        let server_side = ServerPolicy {
            tls13: resuming.offers_tls13(),
            stateless_tickets: true,
        };
        assert_eq!(resuming.offer(server_side), Offer::None);
    }
    // (rustls keeps a TLS 1.2 session under its session id too, but resumes the ticket.)
    assert!(
        store.lookups().is_empty(),
        "the store was asked for nothing"
    );
}

/// A first flight after a HelloRetryRequest: the `change_cipher_spec` that comes before the
/// second ClientHello (RFC 8446, D.4), and that ClientHello.
fn after_retry(flight: &[u8]) -> ClientHello {
    let (ccs, hello) = flight.split_at(6);
    assert_eq!(
        ccs,
        [20, 3, 3, 0, 1, 1],
        "a compatibility change_cipher_spec"
    );
    parse_flight(hello)
}

#[test]
fn rustls_hello_retry_request_both_hellos_offer_the_same_ticket() {
    let pki = pki();
    let store = Arc::new(RecordingStore::default());
    let both = server_config(
        &pki,
        rustls::ALL_VERSIONS,
        &[X25519, SECP256R1],
        &store,
        false,
    );
    // The client sends an X25519 share, which this server does not accept: it asks again.
    let p256 = server_config(&pki, rustls::ALL_VERSIONS, &[SECP256R1], &store, false);

    let client = client_config(&pki, rustls::ALL_VERSIONS);
    let (flights, kind) = connect(&client, &p256);
    assert_eq!(kind, HandshakeKind::FullWithHelloRetryRequest);
    let first = parse_flight(&flights[0]);
    let second = after_retry(&flights[1]);
    for hello in [&first, &second] {
        assert!(hello.offers_tls13());
        assert_eq!(hello.offer(TLS13), Offer::None);
    }
    assert_eq!(first.session_id(), second.session_id());
    assert_ne!(first, second, "another key share");

    // A session made over X25519, so that the client's next ClientHello shares X25519 again.
    let client = client_config(&pki, rustls::ALL_VERSIONS);
    assert_eq!(connect(&client, &both).1, HandshakeKind::Full);
    let ticket = store.puts().pop().unwrap();
    let (flights, kind) = connect(&client, &p256);
    assert_eq!(kind, HandshakeKind::Resumed);
    let first = parse_flight(&flights[0]);
    let second = after_retry(&flights[1]);
    for hello in [&first, &second] {
        let ids: Vec<_> = hello.psk_identities().collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].identity(), ticket);
        assert_eq!(hello.offer(TLS13), Offer::Ticket(&ticket));
    }
    assert_eq!(
        store.lookups(),
        [ticket],
        "rustls takes the ticket once, for the second ClientHello"
    );
}

// ---- hand-built ----

#[test]
fn nine_hundred_psk_identities_over_several_records() {
    let identities: Vec<(Vec<u8>, u32)> = (0..900u32)
        .map(|i| (vec![i as u8; 1 + (i as usize * 7) % 24], i * 1000))
        .collect();
    let borrowed: Vec<(&[u8], u32)> = identities.iter().map(|(id, age)| (&id[..], *age)).collect();
    let hello = Hello::tls13().psk(&borrowed);
    let message = hello.message();
    assert!(message.len() > 2 * 16384, "{} bytes", message.len());
    let expected = parse_handshake(&message).unwrap();
    for size in [16384, 5000, 977] {
        let bytes = records(&message, size);
        for end in (0..bytes.len()).step_by(997) {
            assert_eq!(parse_records(&bytes[..end]), Ok(None));
        }
        let parsed = parse_records(&bytes).unwrap().unwrap();
        assert_eq!(parsed, expected);
        let got: Vec<_> = parsed
            .psk_identities()
            .map(|id| (id.identity().to_vec(), id.obfuscated_ticket_age()))
            .collect();
        assert_eq!(got, identities);
        assert_eq!(parsed.offer(TLS13), Offer::Ticket(&identities[0].0));
    }
}
