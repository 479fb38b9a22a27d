//! The client side: rustls's `ClientSessionStore` over a context's cache.

use std::fmt;
use std::sync::{Arc, Mutex};

use ctx::Context;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;
use session_cache::CacheMode;
use session_core::{ProtocolVersion, Session, SessionBuilder, SessionId};

/// What a client session holds: the server it is for (checked on every read, so two names
/// whose hashes collide can never see each other's session) and rustls's value.
struct Entry<T> {
    server: ServerName<'static>,
    value: T,
}

/// A TLS 1.3 ticket, used at most once: the first `take` empties it.
type Ticket = Mutex<Option<Tls13ClientSessionValue>>;

/// A rustls client's session store (set it as `ClientConfig::resumption`'s store) that keeps
/// sessions in a context's cache, in CLIENT mode.
///
/// Each server's sessions are cached under a 32-byte id derived from its name (SHA-256, with
/// a label per kind): its TLS 1.2 session under TLS 1.2, its newest TLS 1.3 ticket under TLS
/// 1.3 (a new ticket replaces the one before: one ticket per server, where rustls's memory
/// cache keeps up to 8), and its key-exchange hint. They expire after the cache's timeout and
/// count against its size like any other session.
#[derive(Clone)]
pub struct ClientSessions {
    context: Context,
}

impl ClientSessions {
    /// A store over `context`'s cache (which must have [`CacheMode::CLIENT`] for anything to
    /// be kept).
    pub fn new(context: &Context) -> Arc<Self> {
        Arc::new(Self {
            context: context.clone(),
        })
    }

    /// The context whose cache this is.
    pub fn context(&self) -> &Context {
        &self.context
    }

    fn id(kind: &[u8], server: &ServerName<'_>) -> SessionId {
        let name = match server {
            ServerName::DnsName(name) => name.as_ref().to_owned(),
            other => format!("{other:?}"),
        };
        ctx::client_session_id(kind, &name)
    }

    fn put<T: Send + Sync + 'static>(
        &self,
        version: ProtocolVersion,
        kind: &[u8],
        server: ServerName<'static>,
        value: T,
    ) {
        let cache = self.context.cache();
        if !cache.mode().contains(CacheMode::CLIENT) {
            return;
        }
        let session = SessionBuilder::new(version, cache.now())
            .id(Self::id(kind, &server))
            .timeout(cache.timeout())
            .app_data(Some(Arc::new(Entry { server, value })))
            .build();
        let _ = cache.add(&session);
    }

    /// The live session of `kind` for `server`; an expired one is removed.
    fn find(
        &self,
        version: ProtocolVersion,
        kind: &[u8],
        server: &ServerName<'_>,
    ) -> Option<Session> {
        let cache = self.context.cache();
        let session = cache.get(version, Self::id(kind, server).as_bytes())?;
        if session.is_expired_at(cache.now()) {
            cache.remove(&session);
            return None;
        }
        Some(session)
    }

    fn entry<'s, T: 'static>(session: &'s Session, server: &ServerName<'_>) -> Option<&'s T> {
        let entry = session.app_data()?.downcast_ref::<Entry<T>>()?;
        (entry.server == *server).then_some(&entry.value)
    }
}

const KX: &[u8] = b"kx hint";
const TLS12: &[u8] = b"tls1.2 session";
const TLS13: &[u8] = b"tls1.3 ticket";

impl ClientSessionStore for ClientSessions {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.put(ProtocolVersion::TLS1_3, KX, server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        let session = self.find(ProtocolVersion::TLS1_3, KX, server_name)?;
        Self::entry::<NamedGroup>(&session, server_name).copied()
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.put(ProtocolVersion::TLS1_2, TLS12, server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let session = self.find(ProtocolVersion::TLS1_2, TLS12, server_name)?;
        Self::entry::<Tls12ClientSessionValue>(&session, server_name).cloned()
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        let id = Self::id(TLS12, server_name);
        let _ = self
            .context
            .cache()
            .take(ProtocolVersion::TLS1_2, id.as_bytes());
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let ticket: Ticket = Mutex::new(Some(value));
        self.put(ProtocolVersion::TLS1_3, TLS13, server_name, ticket);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let cache = self.context.cache();
        let session = cache.take(
            ProtocolVersion::TLS1_3,
            Self::id(TLS13, server_name).as_bytes(),
        )?;
        if session.is_expired_at(cache.now()) {
            return None;
        }
        let ticket = Self::entry::<Ticket>(&session, server_name)?;
        let value = ticket.lock().unwrap_or_else(|e| e.into_inner()).take();
        value
    }
}

impl fmt::Debug for ClientSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSessions")
            .field("cached", &self.context.cache().len())
            .finish_non_exhaustive()
    }
}
