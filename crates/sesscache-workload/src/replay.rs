//! A recorded trace's handshakes ([`crate::trace`]), in order, against a cache of any size
//! and timeout, on the trace's own clock: what the hit ratio would have been with that cache.
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

use ctx::{Context, ContextConfig, Role};
use session_cache::{CacheConfig, CacheMode, Resumption, Resumptions, Stats};
use session_core::{ManualClock, ProtocolVersion, Session, SessionBuilder, SessionId};

use crate::timeline::{self, Seconds};
use crate::trace::Line;
use crate::Error;

/// What one replay found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// Every replayed handshake's outcome.
    pub resumptions: Resumptions,
    /// The replayed cache's statistics at the end.
    pub stats: Stats,
    /// (seconds since the first handshake to the window's middle, hit ratio) per time window
    /// with an offer, at most 50 windows.
    pub timeline: Vec<(f64, f64)>,
}

impl Report {
    /// Hits over offers, 0 without an offer.
    pub fn hit_ratio(&self) -> f64 {
        let r = &self.resumptions;
        if r.offered() == 0 {
            0.0
        } else {
            r.resumed as f64 / r.offered() as f64
        }
    }
}

/// The replayed cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Its size limit (0 for none).
    pub size: usize,
    /// The session timeout, in seconds.
    pub timeout: u64,
    /// Flush expired sessions every this many of the trace's seconds (0: never).
    pub flush_interval: u64,
}

/// The `n`th session id the replay makes itself (`tag` says what for), unlike any the TLS
/// stacks make.
fn made_id(n: u64, tag: &[u8; 8]) -> SessionId {
    let mut id = [0xA5u8; 32];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..16].copy_from_slice(tag);
    SessionId::new(&id).expect("32 bytes")
}

/// Replays `lines` (a trace, [`crate::trace::read`]) against a cache of `settings`.
pub fn run(lines: &[Line], settings: Settings) -> Result<Report, Error> {
    let first = lines.first().ok_or(Error::NothingToReplay)?;
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
    let mut seconds = Seconds::new();

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
        c.connect(&mut s).map_err(|source| Error::Handshake {
            replayed: true,
            source,
        })?;
        let outcome = match (kept, s.resumption()) {
            (true, _) => line.outcome,
            (false, Some(outcome)) => outcome,
            (false, None) => {
                return Err(Error::Inconsistent(
                    "a replayed handshake was not counted".to_owned(),
                ))
            }
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
            timeline::count_offer(&mut seconds, second, outcome == Resumption::Resumed);
        }
    }
    Ok(Report {
        resumptions: tally,
        stats: server.cache().stats(),
        timeline: timeline::over_time(&seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(second: u64, client: u64, offered: bool, issued: u32, outcome: Resumption) -> Line {
        Line {
            time_ms: 1_700_000_000_000 + second * 1_000,
            client,
            version: ProtocolVersion::TLS1_2,
            offered,
            issued,
            outcome,
        }
    }

    fn settings(size: usize, timeout: u64) -> Settings {
        Settings {
            size,
            timeout,
            flush_interval: 0,
        }
    }

    #[test]
    fn the_replayed_cache_decides_hits_and_expiry() {
        use Resumption::*;
        // Three clients get a session each, then offer it back ten seconds later, the newest
        // first.
        let mut lines: Vec<Line> = (0..3).map(|c| line(0, c, false, 1, NotOffered)).collect();
        lines.extend((0..3).rev().map(|c| line(10, c, true, 0, Resumed)));
        let all = run(&lines, settings(3, 100)).unwrap();
        assert_eq!(
            (all.resumptions.resumed, all.resumptions.not_offered),
            (3, 3)
        );
        assert_eq!(all.hit_ratio(), 1.0);
        // Room for two: the first session is evicted and its offer is unknown.
        let two = run(&lines, settings(2, 100)).unwrap();
        assert_eq!(
            (two.resumptions.resumed, two.resumptions.unknown_id),
            (2, 1)
        );
        // One eviction for the third session, one for the full handshake of the unknown
        // offer (whose session the replay then drops: the trace says it issued none).
        assert_eq!(two.stats.cache_full, 2);
        // A timeout shorter than the wait: every offer finds its session expired.
        let short = run(&lines, settings(3, 5)).unwrap();
        assert_eq!(short.resumptions.expired, 3);
        assert_eq!(short.hit_ratio(), 0.0);
        assert_eq!(all.timeline, vec![(10.5, 1.0)], "the offers' one window");
    }

    #[test]
    fn outcomes_the_cache_does_not_decide_are_kept() {
        use Resumption::*;
        let lines = [
            line(0, 1, false, 1, NotOffered),
            line(1, 1, true, 1, RefusedByStack),
            line(2, 2, true, 1, OtherContext),
            // A session from before the trace: unknown to the replayed cache.
            line(3, 3, true, 1, Resumed),
        ];
        let r = run(&lines, settings(10, 100)).unwrap();
        assert_eq!(
            (r.resumptions.refused_by_stack, r.resumptions.other_context),
            (1, 1)
        );
        assert_eq!((r.resumptions.unknown_id, r.resumptions.resumed), (1, 0));
        assert!(matches!(
            run(&[], settings(1, 1)),
            Err(Error::NothingToReplay)
        ));
    }
}
