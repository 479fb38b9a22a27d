//! What the cache reports about itself: the `SSL_CTX_sess_*` statistics and the handshake
//! counters, the resumption outcomes, the timing of operations, and the cached sessions.

use session_core::Session;

use crate::resumption::Resumption;
use crate::stats::{Event, Stats};
use crate::timing::{Latency, Operation};

use super::SessionCache;

impl SessionCache {
    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.len(), self.size(), self.resumptions.snapshot())
    }

    /// Counts a handshake event; returns the counter's new value. Only a
    /// [`Handshake`](crate::Handshake) counts.
    pub(crate) fn count(&self, event: Event) -> u64 {
        self.counters.count(event)
    }

    /// Counts one finished server handshake's outcome in [`Stats::resumptions`]: only
    /// [`Handshake::finish`](crate::Handshake::finish) does, once per handshake.
    pub(crate) fn count_resumption(&self, outcome: Resumption) {
        self.resumptions.record(outcome);
    }

    /// Turns the timing of operations on or off (off by default: see
    /// [`CacheConfig::timing`](super::CacheConfig::timing)).
    pub fn set_timing(&self, on: bool) {
        self.timing.set(on);
    }

    /// Whether operations are timed.
    pub fn is_timing(&self) -> bool {
        self.timing.is_on()
    }

    /// How long `op` has taken, over the operations timed while timing was on.
    pub fn latency(&self, op: Operation) -> Latency {
        self.timing.snapshot(op)
    }

    /// References to every cached session, in no particular order.
    pub fn sessions(&self) -> Vec<Session> {
        self.map.sessions()
    }
}
