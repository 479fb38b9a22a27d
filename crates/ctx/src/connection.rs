//! A connection (`SSL`): holds its context and at most one session, and runs simulated
//! handshakes that drive the context's cache as OpenSSL's handshake code does.

use std::fmt;

use session_cache::{ExtendedMasterSecret, Handshake, Lookup, LookupRequest, Resumption, Role};
use session_core::{ProtocolVersion, Session, SessionRef};
use tracing::debug;

use crate::{Context, Error};

/// What a client offers: the parts of a ClientHello that matter to the session cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The highest version the client supports.
    pub version: ProtocolVersion,
    /// The session id it offers to resume (empty for none).
    pub session_id: Vec<u8>,
    /// Whether it sends the extended master secret extension.
    pub extended_master_secret: bool,
}

/// What the server answers: the negotiated version, whether it resumed, and the session the
/// connection now has (a client keeps its own copy of it).
#[derive(Debug, Clone)]
pub struct ServerHello {
    /// The negotiated version.
    pub version: ProtocolVersion,
    /// Whether the offered session was resumed.
    pub resumed: bool,
    /// The server connection's session after the handshake.
    pub session: Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Before,
    Established,
    ShutDown,
}

/// A connection (OpenSSL's `SSL`). It keeps its context alive while it lives.
///
/// Dropped, or given another session, after its handshake but before a clean
/// [`shutdown`](Self::shutdown), it removes its session from the cache, as OpenSSL's
/// `ssl_clear_bad_session` does: a connection that broke off may have been tampered with.
#[doc(alias = "SSL")]
pub struct Connection {
    ctx: Context,
    role: Role,
    session: Option<Session>,
    state: State,
    resumed: bool,
    /// A server handshake's resumption outcome, once it has finished.
    resumption: Option<Resumption>,
}

impl Connection {
    pub(crate) fn new(ctx: Context, role: Role) -> Self {
        Self {
            ctx,
            role,
            session: None,
            state: State::Before,
            resumed: false,
            resumption: None,
        }
    }

    /// The connection's context.
    #[doc(alias = "SSL_get_SSL_CTX")]
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The connection's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Sets the session to resume (a client) or clears it. The connection takes its own
    /// reference and drops the one it held; a session held from an unclean connection is
    /// removed from the cache first. The connection is then ready for a new handshake.
    #[doc(alias = "SSL_set_session")]
    pub fn set_session(&mut self, session: Option<&Session>) {
        self.clear_bad_session();
        self.session = session.cloned();
        self.state = State::Before;
        self.resumed = false;
        self.resumption = None;
    }

    /// The connection's session, borrowed (`SSL_get0_session`): it cannot outlive the
    /// connection and cannot be freed.
    #[doc(alias = "SSL_get0_session")]
    #[doc(alias = "SSL_get_session")]
    pub fn session(&self) -> Option<SessionRef<'_>> {
        self.session.as_ref().map(Session::borrowed)
    }

    /// An owned reference to the connection's session (`SSL_get1_session`).
    #[doc(alias = "SSL_get1_session")]
    pub fn session_owned(&self) -> Option<Session> {
        self.session.clone()
    }

    /// Whether the handshake resumed a session.
    #[doc(alias = "SSL_session_reused")]
    pub fn session_reused(&self) -> bool {
        self.resumed
    }

    /// How a finished server handshake went for resumption (what it counted in the cache's
    /// [`Resumptions`](session_cache::Resumptions)); `None` before then and for a client.
    pub fn resumption(&self) -> Option<Resumption> {
        self.resumption
    }

    /// Whether the handshake has completed.
    pub fn is_established(&self) -> bool {
        self.state != State::Before
    }

    /// A clean shutdown: the session stays cached when the connection goes.
    #[doc(alias = "SSL_shutdown")]
    pub fn shutdown(&mut self) {
        if self.state == State::Established {
            self.state = State::ShutDown;
        }
    }

    fn clear_bad_session(&mut self) {
        if self.state == State::Established {
            if let Some(session) = &self.session {
                debug!(role = self.role.name(), "connection ended without shutdown");
                self.ctx.cache().remove(session);
            }
        }
    }

    fn check(&self, wanted: Role) -> Result<(), Error> {
        if self.role != wanted {
            return Err(Error::WrongRole {
                actual: self.role.name(),
                wanted: match wanted {
                    Role::Client => "connect",
                    Role::Server => "accept",
                },
            });
        }
        if self.state != State::Before {
            return Err(Error::AlreadyEstablished);
        }
        Ok(())
    }

    /// The handshake succeeded: the connection is established, and the cache counts it (and
    /// flushes after every 255th, as [`Handshake::finish`] says).
    fn finish(&mut self, mut handshake: Handshake, resumed: bool) {
        self.state = State::Established;
        self.resumed = resumed;
        self.resumption = handshake.finish(self.ctx.cache(), resumed);
    }

    /// The ClientHello this client connection sends: it offers the session set on it, if that
    /// session is resumable and of the context's version.
    pub fn client_hello(&self) -> ClientHello {
        let version = self.ctx.version();
        let session_id = self
            .session
            .as_ref()
            .filter(|s| s.is_resumable() && s.version() == version)
            .map(|s| s.id().as_bytes().to_vec())
            .unwrap_or_default();
        ClientHello {
            version,
            session_id,
            extended_master_secret: self.ctx.0.config.extended_master_secret,
        }
    }

    /// The server side of a handshake (`SSL_accept`): looks up the offered session, resumes it
    /// or makes a new one, and caches what the mode says to cache. In TLS 1.3 a resumed
    /// session is a single-use ticket: it is taken out of the cache in the same step as the
    /// lookup ([`SessionCache::lookup_take`](session_cache::SessionCache::lookup_take)), so that of connections offering the same
    /// ticket at the same moment exactly one resumes, and a new session takes its place.
    #[doc(alias = "SSL_accept")]
    pub fn accept(&mut self, hello: &ClientHello) -> Result<ServerHello, Error> {
        self.check(Role::Server)?;
        let cache = self.ctx.cache();
        let mut handshake = Handshake::accept(cache);
        let version = hello.version.min(self.ctx.version());
        let ems = hello.extended_master_secret;
        let mut found = None;
        if !hello.session_id.is_empty() {
            let request = LookupRequest::new(
                version,
                &hello.session_id,
                self.ctx.sid_ctx(),
                ExtendedMasterSecret::from_offered(ems),
            );
            match handshake.offer(cache, request) {
                Lookup::Hit(session) => found = Some(session),
                Lookup::Abort => return Err(Error::ExtendedMasterSecretDowngrade),
                _ => {}
            }
        }
        let resumed = found.is_some();
        let session = match found {
            Some(old) if !version.is_tls13_or_later() => old,
            // A full handshake, or a TLS 1.3 resumption, which issues a new ticket.
            _ => {
                let fresh = self.ctx.make_session(version, ems);
                handshake.issued(cache, &fresh);
                fresh
            }
        };
        self.session = Some(session.clone());
        self.finish(handshake, resumed);
        Ok(ServerHello {
            version,
            resumed,
            session,
        })
    }

    /// The client side of a handshake (`SSL_connect`) against `server`: offers the session
    /// set on this connection, and keeps a copy of the server's session. A TLS 1.3 client
    /// removes a session it resumed from from its cache (tickets are single use); new sessions
    /// are cached in `CLIENT` mode. Returns the ClientHello it sent.
    #[doc(alias = "SSL_connect")]
    pub fn connect(&mut self, server: &mut Connection) -> Result<ClientHello, Error> {
        self.check(Role::Client)?;
        let mut handshake = Handshake::connect(self.ctx.cache());
        let hello = self.client_hello();
        let answer = server.accept(&hello)?;
        let resumed = answer.resumed && !hello.session_id.is_empty();
        if resumed && !answer.version.is_tls13_or_later() {
            self.finish(handshake, true);
            return Ok(hello);
        }
        if resumed {
            if let Some(used) = &self.session {
                self.ctx.cache().remove(used);
            }
        }
        let own = answer.session.to_builder().build();
        handshake.issued(self.ctx.cache(), &own);
        self.session = Some(own);
        self.finish(handshake, resumed);
        Ok(hello)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.clear_bad_session();
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("resumed", &self.resumed)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use session_cache::{CacheConfig, CacheMode, RemovalCause};
    use session_core::ManualClock;

    use super::*;
    use crate::ContextConfig;

    fn context(version: ProtocolVersion, mode: CacheMode) -> (Context, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let ctx = Context::new(ContextConfig {
            version,
            cache: CacheConfig {
                mode,
                timeout: 300,
                clock: clock.clone(),
                ..CacheConfig::default()
            },
            ..ContextConfig::default()
        });
        (ctx, clock)
    }

    /// One client connection against one server connection, both shut down cleanly.
    fn handshake(client: &Context, server: &Context, offer: Option<&Session>) -> (bool, Session) {
        let mut c = client.new_connection(Role::Client);
        let mut s = server.new_connection(Role::Server);
        c.set_session(offer);
        c.connect(&mut s).unwrap();
        assert_eq!(c.session_reused(), s.session_reused());
        c.shutdown();
        s.shutdown();
        (c.session_reused(), c.session_owned().unwrap())
    }

    #[test]
    fn tls12_resumes_by_session_id() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::CLIENT);
        let (resumed, first) = handshake(&client, &server, None);
        assert!(!resumed);
        assert_eq!(server.cache().len(), 1);
        assert_eq!(
            client.cache().len(),
            1,
            "CLIENT mode caches the client's session"
        );
        let (resumed, second) = handshake(&client, &server, Some(&first));
        assert!(resumed);
        assert!(second.ptr_eq(&first), "TLS 1.2 keeps the resumed session");
        let stats = server.cache().stats();
        assert_eq!(
            (stats.accept, stats.accept_good, stats.hits, stats.misses),
            (2, 2, 1, 0)
        );
        assert_eq!(client.cache().stats().connect_good, 2);
    }

    #[test]
    fn tls13_tickets_are_single_use() {
        let (server, _) = context(ProtocolVersion::TLS1_3, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_3, CacheMode::CLIENT);
        let (_, first) = handshake(&client, &server, None);
        let (resumed, second) = handshake(&client, &server, Some(&first));
        assert!(resumed);
        assert!(!second.ptr_eq(&first), "a new ticket is a new session");
        assert_eq!(
            server.cache().len(),
            1,
            "the used ticket is gone, the new one cached"
        );
        assert!(!client.cache().sessions().iter().any(|s| s.ptr_eq(&first)));
        assert!(
            !first.is_resumable(),
            "the client will not offer a used ticket again"
        );
        // Offered anyway, the server does not resume it twice.
        let mut s = server.new_connection(Role::Server);
        let replay = ClientHello {
            version: ProtocolVersion::TLS1_3,
            session_id: first.id().as_bytes().to_vec(),
            extended_master_secret: true,
        };
        assert!(!s.accept(&replay).unwrap().resumed);
        assert_eq!(server.cache().stats().misses, 1);
        s.shutdown();
    }

    /// Every accepted handshake counts once: resumed, or the reason it did not, and the
    /// reasons of the offers add up with the resumptions to the offers.
    #[test]
    fn each_accepted_handshake_counts_one_resumption_outcome() {
        let (server, clock) = context(ProtocolVersion::TLS1_3, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_3, CacheMode::OFF);
        let offer = |id: &[u8]| ClientHello {
            version: ProtocolVersion::TLS1_3,
            session_id: id.to_vec(),
            extended_master_secret: true,
        };
        let accept = |hello: &ClientHello| {
            let mut s = server.new_connection(Role::Server);
            let resumed = s.accept(hello).unwrap().resumed;
            assert_eq!(
                s.resumption() == Some(Resumption::Resumed),
                resumed,
                "the connection tells its outcome"
            );
            s.shutdown();
            resumed
        };
        let (_, first) = handshake(&client, &server, None); // not offered
        assert!(accept(&offer(first.id().as_bytes()))); // resumed
        assert!(!accept(&offer(first.id().as_bytes()))); // used, and so unknown here
        assert!(!accept(&offer(b"never issued"))); // unknown
        let ticket = server.cache().sessions()[0].clone();
        let mut without_ems = offer(ticket.id().as_bytes());
        without_ems.extended_master_secret = false;
        assert!(!accept(&without_ems), "refused for the stack: RFC 7627");
        clock.advance(301);
        assert!(!accept(&offer(ticket.id().as_bytes()))); // expired
        let other = Context::new(ContextConfig {
            version: ProtocolVersion::TLS1_3,
            sid_ctx: session_core::SidCtx::new(b"another").unwrap(),
            ..ContextConfig::default()
        });
        let foreign = other.make_session(ProtocolVersion::TLS1_3, true);
        server.cache().add(&foreign).unwrap();
        assert!(!accept(&offer(foreign.id().as_bytes()))); // another context

        let stats = server.cache().stats();
        let r = stats.resumptions;
        assert_eq!(
            (r.resumed, r.not_offered, r.unknown_id, r.refused_by_stack),
            (1, 1, 2, 1)
        );
        assert_eq!((r.expired, r.other_context), (1, 1));
        assert_eq!(r.handshakes(), stats.accept_good);
        assert_eq!(r.offered(), 6);
    }

    /// Many connections accept the same stateful ticket at the same moment, round after
    /// round: in each round exactly one resumes, and the counters agree with the connections.
    #[test]
    fn a_ticket_offered_by_many_at_once_resumes_exactly_once() {
        const THREADS: usize = 8;
        const ROUNDS: usize = 200;
        let (server, _) = context(ProtocolVersion::TLS1_3, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_3, CacheMode::OFF);
        let barrier = std::sync::Barrier::new(THREADS);
        for _ in 0..ROUNDS {
            let (_, ticket) = handshake(&client, &server, None);
            let hello = ClientHello {
                version: ProtocolVersion::TLS1_3,
                session_id: ticket.id().as_bytes().to_vec(),
                extended_master_secret: true,
            };
            let resumed: usize = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..THREADS)
                    .map(|_| {
                        scope.spawn(|| {
                            let mut s = server.new_connection(Role::Server);
                            barrier.wait();
                            let resumed = s.accept(&hello).unwrap().resumed;
                            assert_eq!(resumed, s.session_reused());
                            s.shutdown();
                            usize::from(resumed)
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).sum()
            });
            assert_eq!(resumed, 1, "one ticket, {resumed} resumptions");
        }
        let stats = server.cache().stats();
        let offers = (THREADS * ROUNDS) as u64;
        assert_eq!(stats.hits, ROUNDS as u64);
        assert_eq!(stats.hits + stats.misses + stats.timeouts, offers);
    }

    #[test]
    fn expired_offers_count_as_timeouts_and_get_a_full_handshake() {
        let (server, clock) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::OFF);
        let (_, first) = handshake(&client, &server, None);
        clock.advance(301);
        let (resumed, _) = handshake(&client, &server, Some(&first));
        assert!(!resumed);
        assert_eq!(server.cache().stats().timeouts, 1);
    }

    #[test]
    fn a_wrong_sid_ctx_does_not_resume() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let other = Context::new(ContextConfig {
            version: ProtocolVersion::TLS1_2,
            sid_ctx: session_core::SidCtx::new(b"other").unwrap(),
            ..ContextConfig::default()
        });
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::OFF);
        let (_, first) = handshake(&client, &server, None);
        // Put the session into the other context's cache: its sid_ctx does not match.
        other.cache().add(&first).unwrap();
        let (resumed, _) = handshake(&client, &other, Some(&first));
        assert!(!resumed);
        // Found but refused: OpenSSL counts neither a hit nor a miss.
        let stats = other.cache().stats();
        assert_eq!((stats.hits, stats.misses), (0, 0));
    }

    #[test]
    fn dropping_an_established_connection_without_shutdown_removes_its_session() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::OFF);
        let mut c = client.new_connection(Role::Client);
        let mut s = server.new_connection(Role::Server);
        c.connect(&mut s).unwrap();
        let session = s.session_owned().unwrap();
        assert!(server.cache().contains(&session));
        drop(s);
        assert!(!server.cache().contains(&session));
        assert!(!session.is_resumable());

        // A clean shutdown keeps it; so does a connection that never finished its handshake.
        let (_, kept) = handshake(&client, &server, None);
        assert_eq!(server.cache().len(), 1);
        drop(server.new_connection(Role::Server));
        assert_eq!(server.cache().len(), 1);
        assert!(kept.is_resumable());
    }

    #[test]
    fn set_session_on_an_unclean_connection_removes_the_old_session() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::CLIENT);
        let mut c = client.new_connection(Role::Client);
        let mut s = server.new_connection(Role::Server);
        c.connect(&mut s).unwrap();
        let old = c.session_owned().unwrap();
        assert!(client.cache().contains(&old));
        c.set_session(None);
        assert!(!client.cache().contains(&old));
        assert!(c.session().is_none() && !c.is_established());
        s.shutdown();
    }

    #[test]
    fn every_255th_good_handshake_flushes_expired_sessions() {
        let (server, clock) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::OFF);
        handshake(&client, &server, None);
        clock.advance(301);
        for _ in 0..253 {
            handshake(&client, &server, None);
        }
        assert_eq!(server.cache().len(), 254, "254 handshakes: no flush yet");
        handshake(&client, &server, None);
        assert_eq!(
            server.cache().len(),
            254,
            "the 255th flushed the expired one"
        );

        let (quiet, clock) = context(
            ProtocolVersion::TLS1_2,
            CacheMode::SERVER | CacheMode::NO_AUTO_CLEAR,
        );
        handshake(&client, &quiet, None);
        clock.advance(301);
        for _ in 0..254 {
            handshake(&client, &quiet, None);
        }
        assert_eq!(quiet.cache().len(), 255, "NO_AUTO_CLEAR: nothing flushed");
    }

    #[test]
    fn modes_gate_automatic_caching_by_role() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::CLIENT);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        handshake(&client, &server, None);
        assert!(server.cache().is_empty() && client.cache().is_empty());

        let (server, _) = context(
            ProtocolVersion::TLS1_2,
            CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE,
        );
        let seen = Arc::new(Mutex::new(0));
        let sink = seen.clone();
        server.cache().set_new_session_callback(Some(Arc::new(
            move |_: &session_cache::SessionCache, _: &Session| *sink.lock().unwrap() += 1,
        )));
        handshake(&client, &server, None);
        assert!(server.cache().is_empty());
        assert_eq!(
            *seen.lock().unwrap(),
            1,
            "the new-session callback still runs"
        );
    }

    #[test]
    fn ems_downgrade_aborts_the_handshake() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::OFF);
        let (_, first) = handshake(&client, &server, None);
        let mut s = server.new_connection(Role::Server);
        let hello = ClientHello {
            version: ProtocolVersion::TLS1_2,
            session_id: first.id().as_bytes().to_vec(),
            extended_master_secret: false,
        };
        assert_eq!(
            s.accept(&hello).unwrap_err(),
            Error::ExtendedMasterSecretDowngrade
        );
        assert!(!s.is_established());
    }

    #[test]
    fn roles_and_repeats_are_checked() {
        let (ctx, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let mut client = ctx.new_connection(Role::Client);
        let mut server = ctx.new_connection(Role::Server);
        assert!(matches!(
            server.connect(&mut client),
            Err(Error::WrongRole { .. })
        ));
        client.connect(&mut server).unwrap();
        let mut another = ctx.new_connection(Role::Server);
        assert_eq!(client.connect(&mut another), Err(Error::AlreadyEstablished));
        client.shutdown();
        server.shutdown();
    }

    /// Callbacks that call back into the cache and reach the context do so without keeping
    /// it alive: through their cache argument, and through a `WeakContext`. When the last
    /// handle goes, the cache is flushed (every session reported) and the sessions it held
    /// are freed, their secrets wiped.
    #[test]
    fn callbacks_reach_the_cache_and_the_context_without_a_cycle() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::OFF);
        let flushed = Arc::new(Mutex::new(0));
        let weak = server.downgrade();
        let sink = flushed.clone();
        server.cache().set_remove_session_callback(Some(Arc::new(
            move |cache: &session_cache::SessionCache, _: &Session, cause| {
                let _ = cache.stats();
                if let Some(ctx) = weak.upgrade() {
                    assert_eq!(ctx.version(), ProtocolVersion::TLS1_2);
                }
                if cause == RemovalCause::Flushed {
                    *sink.lock().unwrap() += 1;
                }
            },
        )));
        server.cache().set_new_session_callback(Some(Arc::new(
            |cache: &session_cache::SessionCache, s: &Session| {
                assert!(cache.contains(s));
            },
        )));
        let mut freed = Vec::new();
        for _ in 0..3 {
            let (_, s) = handshake(&client, &server, None);
            freed.push(
                server
                    .cache()
                    .get(s.version(), s.id().as_bytes())
                    .unwrap()
                    .downgrade(),
            );
        }
        let weak = server.downgrade();
        assert_eq!(server.ref_count(), 1, "the callbacks hold no handle");
        drop(server);
        assert!(weak.upgrade().is_none(), "the context is gone");
        assert_eq!(*flushed.lock().unwrap(), 3, "its cache was flushed");
        assert!(
            freed.iter().all(|w| w.upgrade().is_none()),
            "and its sessions freed"
        );
    }

    #[test]
    fn the_last_context_handle_flushes_while_held_sessions_stay_valid() {
        let (server, _) = context(ProtocolVersion::TLS1_2, CacheMode::SERVER);
        let (client, _) = context(ProtocolVersion::TLS1_2, CacheMode::OFF);
        let removed = Arc::new(Mutex::new(Vec::new()));
        let sink = removed.clone();
        server.cache().set_remove_session_callback(Some(Arc::new(
            move |_: &session_cache::SessionCache, _: &Session, cause| {
                sink.lock().unwrap().push(cause);
            },
        )));
        let mut s = server.new_connection(Role::Server);
        let mut c = client.new_connection(Role::Client);
        c.connect(&mut s).unwrap();
        s.shutdown();
        assert_eq!(server.ref_count(), 2, "the connection holds the context");
        drop(server);
        assert!(
            removed.lock().unwrap().is_empty(),
            "the connection keeps the context alive"
        );
        let held = s.session_owned().unwrap();
        drop(s);
        assert_eq!(*removed.lock().unwrap(), [RemovalCause::Flushed]);
        assert_eq!(held.ref_count(), 1);
        assert_eq!(held.master_key().len(), 48);
        c.shutdown();
    }
}
