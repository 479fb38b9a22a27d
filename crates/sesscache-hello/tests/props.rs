//! Property tests, what `fuzz/fuzz_targets/client_hello.rs` does where cargo-fuzz is not at
//! hand: random bytes, random bodies in valid framing, mutated real ClientHellos and random
//! well-formed ones in random record sizes go to both parsers, which must not panic and
//! whose results must keep `support::invariants`.

mod support;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use sesscache_hello::{parse_handshake, parse_records};
use support::hello::{message, psk, records, server_name, Hello};
use support::invariants::{self, join};

/// Real first flights: OpenSSL's, captured, and hand-built ones in records of a few sizes.
fn corpus() -> Vec<Vec<u8>> {
    let mut flights = vec![
        include_bytes!("fixtures/openssl-tls12-session-id.bin").to_vec(),
        include_bytes!("fixtures/openssl-tls12-ticket.bin").to_vec(),
        include_bytes!("fixtures/openssl-tls13-ticket.bin").to_vec(),
        include_bytes!("fixtures/openssl-tls13-stateful.bin").to_vec(),
    ];
    let psks: &[(&[u8], u32)] = &[(b"first ticket", 1), (&[7; 40], 2)];
    for size in [16384, 100, 7] {
        flights.push(Hello::tls12().session_id(&[3; 32]).records(size));
        flights.push(Hello::tls13().psk(psks).records(size));
    }
    flights
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
        Mutation::Remove(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
}

/// A version a client may list: TLS 1.3 often, so that `offer` sees both protocols.
fn version() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => Just(0x0304),
        2 => Just(0x0303),
        1 => Just(0x0a0a),
        1 => any::<u16>(),
    ]
}

/// A well-formed ClientHello with random fields: session ids up to 32 bytes, a random
/// choice of extensions (some the parser reads, some it skips), maybe PSK identities.
fn hello() -> impl Strategy<Value = Hello> {
    let identities = vec((vec(any::<u8>(), 1..40), any::<u32>()), 0..6);
    (
        any::<u16>(),
        vec(any::<u8>(), 0..=32),
        prop::option::of(vec(any::<u8>(), 0..60)),
        prop::option::of(vec(version(), 1..6)),
        prop::option::of(vec(0u8..3, 1..3)),
        prop::option::of(vec(any::<u8>(), 1..20)),
        vec((100u16..110, vec(any::<u8>(), 0..30)), 0..4),
        identities,
    )
        .prop_map(
            |(legacy_version, session_id, ticket, versions, modes, host, others, ids)| {
                let mut hello = Hello {
                    legacy_version,
                    extensions: Some(Vec::new()),
                    ..Hello::tls12().session_id(&session_id)
                };
                for (kind, data) in others {
                    hello = hello.ext(kind, data);
                }
                if let Some(ticket) = ticket {
                    hello = hello.ext(35, ticket);
                }
                if let Some(versions) = versions {
                    let list: Vec<u8> = versions.iter().flat_map(|v| v.to_be_bytes()).collect();
                    hello = hello.ext(43, [vec![list.len() as u8], list].concat());
                }
                if let Some(modes) = modes {
                    hello = hello.ext(45, [vec![modes.len() as u8], modes].concat());
                }
                if let Some(host) = host {
                    hello = hello.ext(0, server_name(&host));
                }
                if !ids.is_empty() {
                    let ids: Vec<(&[u8], u32)> =
                        ids.iter().map(|(id, age)| (&id[..], *age)).collect();
                    hello = hello.push_ext(41, psk(&ids, ids.len(), 32));
                }
                hello
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes(data in vec(any::<u8>(), 0..600)) {
        invariants::check(&data);
    }

    #[test]
    fn random_bodies_in_valid_framing(body in vec(any::<u8>(), 0..600), size in 1usize..300) {
        let message = message(&body);
        invariants::check(&message);
        invariants::check(&records(&message, size));
    }

    #[test]
    fn mutated_real_hellos(which in any::<Index>(), mutations in vec(mutation(), 1..6)) {
        let corpus = corpus();
        let mut flight = corpus[which.index(corpus.len())].clone();
        let mut message = join(&flight);
        for m in &mutations {
            mutate(&mut flight, m);
            mutate(&mut message, m);
        }
        invariants::check(&flight);
        invariants::check(&message);
    }

    #[test]
    fn record_boundaries_change_nothing(hello in hello(), size in 1usize..200) {
        let message = hello.message();
        let parsed = parse_handshake(&message);
        if let Ok(parsed) = &parsed {
            invariants::check_hello(parsed, &message);
        }
        prop_assert_eq!(parse_records(&records(&message, size)), parsed.map(Some));
    }
}

#[test]
fn the_corpus_parses() {
    for flight in corpus() {
        assert!(parse_records(&flight).unwrap().is_some());
        invariants::check(&flight);
    }
}
