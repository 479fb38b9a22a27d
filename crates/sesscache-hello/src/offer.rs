//! Which key of a ClientHello a stateful session cache should fetch, decided as rustls and
//! OpenSSL servers decide which session to resume.

use std::fmt;

use crate::ClientHello;

/// `psk_dhe_ke` (RFC 8446, 4.2.9): the only PSK mode rustls and (by default) OpenSSL
/// servers resume with.
const PSK_DHE_KE: u8 = 1;

/// What the server does that decides which offer resumes: the two settings
/// [`ClientHello::offer`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerPolicy {
    /// The server may negotiate TLS 1.3.
    pub tls13: bool,
    /// The server issues stateless tickets (a ticket key, a rustls `ticketer`; OpenSSL's
    /// default), so that tickets resume without the cache.
    pub stateless_tickets: bool,
}

impl Default for ServerPolicy {
    /// TLS 1.3 allowed, stateful tickets: a server whose sessions live in the cache.
    fn default() -> Self {
        ServerPolicy {
            tls13: true,
            stateless_tickets: false,
        }
    }
}

/// The key a stateful session cache should fetch for a ClientHello ([`ClientHello::offer`]).
///
/// `Debug` shows the key's length, never the key.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Offer<'a> {
    /// A TLS 1.3 ticket: the first PSK identity, the one the server's store will be asked
    /// to take (and the only one early data may use).
    Ticket(&'a [u8]),
    /// A TLS 1.2 session id, which the server's store will be asked for.
    SessionId(&'a [u8]),
    /// Nothing to fetch: a full handshake, or a stateless ticket that resumes by itself.
    None,
}

impl<'a> Offer<'a> {
    /// The key to fetch, if any.
    pub fn key(&self) -> Option<&'a [u8]> {
        match *self {
            Offer::Ticket(key) | Offer::SessionId(key) => Some(key),
            Offer::None => None,
        }
    }
}

impl fmt::Debug for Offer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, key) = match self {
            Offer::Ticket(key) => ("Ticket", key),
            Offer::SessionId(key) => ("SessionId", key),
            Offer::None => return f.write_str("None"),
        };
        f.debug_struct(name)
            .field("len", &key.len())
            .finish_non_exhaustive()
    }
}

impl ClientHello {
    /// The key a stateful session cache should fetch before the server handles this
    /// ClientHello, decided as rustls 0.23 and OpenSSL 3 servers decide:
    ///
    /// - TLS 1.3 (the client offers it, `server.tls13`): the first PSK identity, if the
    ///   client offers `psk_dhe_ke`, without which neither server resumes; nothing with
    ///   stateless tickets, which resume without the cache. Never the legacy session id,
    ///   32 random bytes from a TLS 1.3 client.
    /// - Otherwise (TLS 1.2 or older): a non-empty legacy session id, unless the server has
    ///   stateless tickets and the client offers one (a non-empty `session_ticket`), which
    ///   then resumes or fails without the cache.
    ///
    /// Both servers try later PSK identities when the first does not resume; only the first
    /// is fetched. A rustls server never looks a TLS 1.2 session id up when a non-empty
    /// ticket comes with it, even without stateless tickets; OpenSSL then does, and so the
    /// session id is the offer.
    pub fn offer(&self, server: ServerPolicy) -> Offer<'_> {
        if server.tls13 && self.offers_tls13() {
            if server.stateless_tickets || !self.psk_key_exchange_modes().contains(&PSK_DHE_KE) {
                return Offer::None;
            }
            return match self.psk_identities().next() {
                Some(first) => Offer::Ticket(first.identity()),
                None => Offer::None,
            };
        }
        let ticket_offered = self.session_ticket().is_some_and(|t| !t.is_empty());
        if (server.stateless_tickets && ticket_offered) || self.session_id().is_empty() {
            return Offer::None;
        }
        Offer::SessionId(self.session_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Hello;
    use crate::parse_handshake;

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

    /// What each of the four servers fetches: `t` the first PSK identity, `s` the session
    /// id, `-` nothing.
    #[track_caller]
    fn check(hello: Hello, expected: [char; 4]) {
        let parsed = parse_handshake(&hello.message()).unwrap();
        let servers = [TLS13, TLS13_STATELESS, TLS12, TLS12_STATELESS];
        for (server, expected) in servers.into_iter().zip(expected) {
            let want = match expected {
                't' => Offer::Ticket(b"first"),
                's' => Offer::SessionId(parsed.session_id()),
                _ => Offer::None,
            };
            assert_eq!(parsed.offer(server), want, "{server:?} {hello:?}");
        }
    }

    #[test]
    fn offers_what_rustls_and_openssl_would_look_up() {
        let psks: &[(&[u8], u32)] = &[(b"first", 1), (b"second", 2)];
        let sid = [0x11; 32];
        let tls12 = || Hello::tls12().session_id(&sid);
        // Server:                                        1.3  1.3 stateless  1.2  1.2 stateless
        check(Hello::tls13(), ['-', '-', 's', 's']);
        check(Hello::tls13().psk(psks), ['t', '-', 's', 's']);
        check(
            Hello::tls13().session_id(&[]).psk(psks),
            ['t', '-', '-', '-'],
        );
        check(
            Hello::tls13().ext(45, vec![1, 0]).psk(psks),
            ['-', '-', 's', 's'],
        );
        check(Hello::tls13().without(45).psk(psks), ['-', '-', 's', 's']);
        check(
            Hello::tls13().ext(45, vec![2, 0, 1]).psk(psks),
            ['t', '-', 's', 's'],
        );
        let with_ticket = Hello::tls13().ext(35, b"ticket".to_vec()).psk(psks);
        check(with_ticket, ['t', '-', 's', '-']);
        check(tls12(), ['s', 's', 's', 's']);
        check(tls12().without(35), ['s', 's', 's', 's']);
        check(tls12().ext(35, b"ticket".to_vec()), ['s', '-', 's', '-']);
        check(Hello::tls12(), ['-', '-', '-', '-']);
        check(
            Hello::tls12().ext(35, b"ticket".to_vec()),
            ['-', '-', '-', '-'],
        );
        // A TLS 1.2 client that sends a PSK extension: TLS 1.2 rules.
        check(tls12().psk(psks), ['s', 's', 's', 's']);
    }

    #[test]
    fn key_and_debug() {
        assert_eq!(Offer::Ticket(b"abc").key(), Some(&b"abc"[..]));
        assert_eq!(Offer::SessionId(b"de").key(), Some(&b"de"[..]));
        assert_eq!(Offer::None.key(), None);
        assert_eq!(
            format!("{:?}", Offer::Ticket(b"secret")),
            "Ticket { len: 6, .. }"
        );
        assert_eq!(format!("{:?}", Offer::None), "None");
        assert_eq!(ServerPolicy::default(), TLS13);
    }
}
