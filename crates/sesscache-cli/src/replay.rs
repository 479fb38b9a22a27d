//! `simulate --replay`: a recorded trace's handshakes, in order, against a cache of any size
//! and timeout, on the trace's own clock.
//!
//! Each trace client holds the last session it was issued and offers it when its line says it
//! offered one (a client the replay has not seen issue a session offers an id the cache does
//! not know). A handshake issues as many sessions as the trace says (a TLS 1.3 server sends
//! several tickets; the client keeps the last). Whether an offer resumes, expired or was
//! unknown is the replayed cache's to decide; outcomes that do not depend on the cache (another
//! context, refused by the TLS stack, already used, store unavailable) are kept as recorded,
//! as full handshakes.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use ctx::{Context, ContextConfig, Role};
use session_cache::{CacheConfig, CacheMode, Resumption, Resumptions, Stats};
use session_core::{ManualClock, ProtocolVersion, Session, SessionBuilder, SessionId};

use crate::trace::Line;

/// What one replay found.
#[derive(Debug, Clone)]
pub(crate) struct Replayed {
    pub(crate) resumptions: Resumptions,
    pub(crate) stats: Stats,
    /// (seconds since the first handshake, hit ratio) per time window with an offer.
    pub(crate) timeline: Vec<(f64, f64)>,
}

/// The replay's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) size: usize,
    pub(crate) timeout: u64,
    pub(crate) flush_interval: u64,
}

/// The `n`th session id the replay makes itself (`tag` says what for), unlike any the TLS
/// stacks make.
fn made_id(n: u64, tag: &[u8; 8]) -> SessionId {
    let mut id = [0xA5u8; 32];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..16].copy_from_slice(tag);
    SessionId::new(&id).expect("32 bytes")
}

pub(crate) fn replay(lines: &[Line], settings: Settings) -> Result<Replayed> {
    let first = lines.first().context("the trace has no handshakes")?;
    let start = first.time_ms / 1_000;
    let clock = Arc::new(ManualClock::new(start));
    let cache = |version: ProtocolVersion, mode: CacheMode, size: usize| {
        Context::new(ContextConfig {
            version,
            cache: CacheConfig {
                size,
                mode,
                timeout: settings.timeout,
                clock: clock.clone(),
                ..CacheConfig::default()
            },
            ..ContextConfig::default()
        })
    };
    // One server for both versions (it negotiates down to a TLS 1.2 client's), as `serve`.
    let server = cache(ProtocolVersion::TLS1_3, CacheMode::SERVER, settings.size);
    let client12 = cache(ProtocolVersion::TLS1_2, CacheMode::OFF, 0);
    let client13 = cache(ProtocolVersion::TLS1_3, CacheMode::OFF, 0);
    let mut held: HashMap<u64, Session> = HashMap::new();
    let mut tally = Resumptions::default();
    let mut made = 0u64;
    let mut last_flush = start;
    let mut seconds = crate::plot::Seconds::new();

    for line in lines {
        let now = line.time_ms / 1_000;
        clock.advance_to(now);
        if settings.flush_interval > 0 && now.saturating_sub(last_flush) >= settings.flush_interval
        {
            last_flush = now;
            server.cache().flush();
        }
        let client_ctx = if line.version.is_tls13_or_later() {
            &client13
        } else {
            &client12
        };
        // Outcomes the cache's size and timeout do not decide are kept as recorded.
        let kept = matches!(
            line.outcome,
            Resumption::OtherContext
                | Resumption::RefusedByStack
                | Resumption::AlreadyUsed
                | Resumption::StoreUnavailable
        );
        let mut c = client_ctx.new_connection(Role::Client);
        let mut s = server.new_connection(Role::Server);
        if line.offered && !kept {
            // The client's session, or (one from before the trace) an id nobody holds.
            let offer = match held.get(&line.client) {
                Some(held) if held.version() == line.version => held.clone(),
                _ => {
                    made += 1;
                    SessionBuilder::new(line.version, now)
                        .id(made_id(made, b"unknown!"))
                        .build()
                }
            };
            c.set_session(Some(&offer));
        }
        c.connect(&mut s).context("a replayed handshake failed")?;
        let outcome = match (kept, s.resumption()) {
            (true, _) => line.outcome,
            (false, Some(outcome)) => outcome,
            (false, None) => bail!("internal inconsistency: a replayed handshake was not counted"),
        };
        tally.add_one(outcome);
        let resumed = s.session_reused();
        let mut last = c.session_owned();
        s.shutdown();
        c.shutdown();
        drop((c, s));
        // The server issued one session (none for a resumed TLS 1.2 one); match the trace.
        let issued_here = u32::from(!resumed || line.version.is_tls13_or_later());
        if line.issued == 0 && issued_here == 1 {
            if let Some(session) = &last {
                server.cache().remove(session);
            }
        }
        for _ in issued_here..line.issued {
            // Another ticket like the one the handshake made, under an id of its own.
            let Some(template) = &last else { break };
            made += 1;
            let extra = template.to_builder().id(made_id(made, b"replayed")).build();
            let _ = server.cache().add(&extra);
            last = Some(extra);
        }
        if let Some(session) = last {
            held.insert(line.client, session);
        }
        if line.offered {
            let second = (line.time_ms - first.time_ms) / 1_000;
            crate::plot::count_offer(&mut seconds, second, outcome == Resumption::Resumed);
        }
    }
    Ok(Replayed {
        resumptions: tally,
        stats: server.cache().stats(),
        timeline: crate::plot::over_time(&seconds),
    })
}
