//! What holds of whatever the parsers make of any bytes, checked by the property tests and
//! by the fuzz target (`fuzz/fuzz_targets/client_hello.rs`, through `#[path]`): no panic,
//! every field within the input, records and handshake messages read alike, errors that no
//! later byte undoes, and `offer` consistent with the fields.

// Each crate that includes this file uses a different part of it.
#![allow(dead_code)]

use sesscache_hello::{parse_handshake, parse_records, ClientHello, Offer, ServerPolicy};

/// Feeds `data` to both parsers and checks every invariant of what they return.
pub(crate) fn check(data: &[u8]) {
    if let Ok(hello) = parse_handshake(data) {
        check_hello(&hello, data);
    }
    match parse_records(data) {
        Ok(Some(hello)) => {
            let message = join(data);
            assert_eq!(
                parse_handshake(&message).as_ref(),
                Ok(&hello),
                "records and the joined message parse alike"
            );
            check_hello(&hello, &message);
            for end in [data.len() / 2, data.len().saturating_sub(1)] {
                match parse_records(&data[..end]) {
                    Ok(None) => {}
                    Ok(Some(early)) => assert_eq!(early, hello, "a prefix holds all of it"),
                    Err(e) => panic!("a prefix of {end} bytes fails ({e}), all of them parse"),
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            let more = [data, &[22, 3, 3, 0, 1, 1][..]].concat();
            assert_eq!(parse_records(&more), Err(e), "more bytes undo no error");
        }
    }
}

/// Checks a parsed ClientHello against the handshake message it came from.
pub(crate) fn check_hello(hello: &ClientHello, message: &[u8]) {
    assert!(hello.session_id().len() <= 32);
    assert!(contains(message, hello.session_id()));
    if let Some(ticket) = hello.session_ticket() {
        assert!(contains(message, ticket));
    }
    let ids = hello.psk_identities();
    let count = ids.len();
    let mut total = 0;
    for id in ids {
        assert!(!id.identity().is_empty());
        assert!(id.identity().len() <= message.len());
        total += id.identity().len() + 2 + 4 + 33; // with its length, age and a binder
    }
    assert_eq!(hello.psk_identities().count(), count);
    assert!(total <= message.len(), "the identities fit in the message");
    if let Some(first) = hello.psk_identities().next() {
        assert!(contains(message, first.identity()));
    }
    let versions = hello.supported_versions();
    assert!(versions.len() <= 127);
    assert!(versions.len() * 2 < message.len());
    assert_eq!(hello.offers_tls13(), versions.contains(&0x0304));
    assert!(contains(message, hello.psk_key_exchange_modes()));
    if let Some(name) = hello.server_name() {
        assert!(!name.is_empty() && contains(message, name.as_bytes()));
    }
    for tls13 in [false, true] {
        for stateless_tickets in [false, true] {
            let server = ServerPolicy {
                tls13,
                stateless_tickets,
            };
            assert_eq!(
                hello.offer(server),
                expected_offer(hello, server),
                "{server:?}"
            );
        }
    }
    let _ = format!("{hello:?}");
}

/// `ClientHello::offer`'s rule, stated again.
fn expected_offer(hello: &ClientHello, server: ServerPolicy) -> Offer<'_> {
    let tls13 = server.tls13 && hello.offers_tls13();
    let first = hello.psk_identities().next().map(|id| id.identity());
    let psk_dhe_ke = hello.psk_key_exchange_modes().contains(&1);
    let ticket = hello.session_ticket().unwrap_or_default();
    match (tls13, first) {
        (true, Some(first)) if psk_dhe_ke && !server.stateless_tickets => Offer::Ticket(first),
        (true, _) => Offer::None,
        (false, _) if hello.session_id().is_empty() => Offer::None,
        (false, _) if server.stateless_tickets && !ticket.is_empty() => Offer::None,
        (false, _) => Offer::SessionId(hello.session_id()),
    }
}

/// The handshake message that valid records at the start of `data` carry.
pub(crate) fn join(data: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    let mut rest = data;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let fragment = &rest[5..(5 + len).min(rest.len())];
        message.extend_from_slice(fragment);
        if message.len() >= 4 {
            let need = 4
                + (usize::from(message[1]) << 16 | usize::from(message[2]) << 8)
                + usize::from(message[3]);
            if message.len() >= need {
                message.truncate(need);
                break;
            }
        }
        rest = &rest[5 + fragment.len()..];
    }
    message
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
