//! Why a handshake resumed or did not: the lookup's reason for a miss ([`Miss`]), one
//! handshake's outcome ([`Resumption`]), their counters ([`Resumptions`]), and what a TLS
//! stack's adapter collects about one handshake to count it ([`HandshakeRecord`]).
//!
//! Each finished server handshake counts exactly once, in [`Resumptions::resumed`] or in one
//! reason, so that the reasons of the handshakes that offered a session add up, with the
//! resumptions, to the offers.

use std::fmt;

use serde::Serialize;
use session_core::{ProtocolVersion, Session, SessionId};

use crate::metrics::{Describe, Metric};
use crate::spread::Spread;
use crate::Lookup;

/// Why a lookup found nothing to resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Miss {
    /// No session under the offered id: never issued here, evicted, flushed, removed, or (in
    /// TLS 1.3, without a shared store) already used and so gone.
    UnknownId,
    /// A session under the offered id, for another session id context or protocol version.
    OtherContext,
    /// A single-use ticket the shared store says was used already.
    AlreadyUsed,
    /// The session is refused for this handshake: it was made without the extended master
    /// secret and this handshake uses it (RFC 7627), or it is not resumable.
    Refused,
    /// The shared store did not answer in time (or its breaker is open), so the ticket could
    /// not be found or claimed.
    StoreUnavailable,
}

/// How one server handshake went, as far as resumption is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resumption {
    /// The handshake resumed a session.
    Resumed,
    /// The client offered no session.
    NotOffered,
    /// See [`Miss::UnknownId`].
    UnknownId,
    /// The offered session had expired.
    Expired,
    /// See [`Miss::OtherContext`].
    OtherContext,
    /// See [`Miss::AlreadyUsed`].
    AlreadyUsed,
    /// The cache handed the session out and the TLS stack did not resume it (another cipher
    /// suite or server name, a failed binder, a handshake that broke off), or the cache
    /// refused it for the stack ([`Miss::Refused`]).
    RefusedByStack,
    /// See [`Miss::StoreUnavailable`].
    StoreUnavailable,
}

impl Resumption {
    /// Every outcome, in the order of [`Resumptions`]' fields.
    pub const ALL: [Resumption; 8] = [
        Self::Resumed,
        Self::NotOffered,
        Self::UnknownId,
        Self::Expired,
        Self::OtherContext,
        Self::AlreadyUsed,
        Self::RefusedByStack,
        Self::StoreUnavailable,
    ];

    /// The outcomes of an offer that did not resume: the reasons.
    pub const MISSED: [Resumption; 6] = [
        Self::UnknownId,
        Self::Expired,
        Self::OtherContext,
        Self::AlreadyUsed,
        Self::RefusedByStack,
        Self::StoreUnavailable,
    ];

    /// The outcome's name, as the counters, the metrics and traces spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Resumed => "resumed",
            Self::NotOffered => "not_offered",
            Self::UnknownId => "unknown_id",
            Self::Expired => "expired",
            Self::OtherContext => "other_context",
            Self::AlreadyUsed => "already_used",
            Self::RefusedByStack => "refused_by_stack",
            Self::StoreUnavailable => "store_unavailable",
        }
    }

    /// The outcome named `name` (as [`name`](Self::name) spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// What a lookup's result means for the handshake, if the TLS stack resumes whatever the
    /// lookup found.
    pub fn of_lookup(lookup: &Lookup) -> Self {
        match lookup {
            Lookup::Hit(_) => Self::Resumed,
            Lookup::Timeout => Self::Expired,
            Lookup::Abort => Self::RefusedByStack,
            Lookup::Miss(miss) => (*miss).into(),
        }
    }

    /// Whether a session was offered.
    pub fn offered(self) -> bool {
        self != Self::NotOffered
    }
}

impl From<Miss> for Resumption {
    fn from(miss: Miss) -> Self {
        match miss {
            Miss::UnknownId => Self::UnknownId,
            Miss::OtherContext => Self::OtherContext,
            Miss::AlreadyUsed => Self::AlreadyUsed,
            Miss::Refused => Self::RefusedByStack,
            Miss::StoreUnavailable => Self::StoreUnavailable,
        }
    }
}

impl fmt::Display for Resumption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many finished server handshakes resumed, and why the others did not: one count per
/// handshake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Resumptions {
    /// Handshakes that resumed a session.
    pub resumed: u64,
    /// Handshakes that offered no session.
    pub not_offered: u64,
    /// Offers of an id the cache (and the shared store) did not know.
    pub unknown_id: u64,
    /// Offers of an expired session.
    pub expired: u64,
    /// Offers of a session for another session id context or protocol version.
    pub other_context: u64,
    /// Offers of a single-use ticket used already.
    pub already_used: u64,
    /// Offers the TLS stack (or the cache, for it) refused.
    pub refused_by_stack: u64,
    /// Offers that missed because the shared store did not answer.
    pub store_unavailable: u64,
}

impl Resumptions {
    /// The count of one outcome.
    pub fn count(&self, outcome: Resumption) -> u64 {
        match outcome {
            Resumption::Resumed => self.resumed,
            Resumption::NotOffered => self.not_offered,
            Resumption::UnknownId => self.unknown_id,
            Resumption::Expired => self.expired,
            Resumption::OtherContext => self.other_context,
            Resumption::AlreadyUsed => self.already_used,
            Resumption::RefusedByStack => self.refused_by_stack,
            Resumption::StoreUnavailable => self.store_unavailable,
        }
    }

    /// Counts one more handshake with `outcome`.
    pub fn add_one(&mut self, outcome: Resumption) {
        *self.count_mut(outcome) += 1;
    }

    fn count_mut(&mut self, outcome: Resumption) -> &mut u64 {
        match outcome {
            Resumption::Resumed => &mut self.resumed,
            Resumption::NotOffered => &mut self.not_offered,
            Resumption::UnknownId => &mut self.unknown_id,
            Resumption::Expired => &mut self.expired,
            Resumption::OtherContext => &mut self.other_context,
            Resumption::AlreadyUsed => &mut self.already_used,
            Resumption::RefusedByStack => &mut self.refused_by_stack,
            Resumption::StoreUnavailable => &mut self.store_unavailable,
        }
    }

    /// Handshakes counted: every outcome added up.
    pub fn handshakes(&self) -> u64 {
        Resumption::ALL.iter().map(|&r| self.count(r)).sum()
    }

    /// Handshakes that offered a session: the resumed ones and every reason but
    /// [`not_offered`](Self::not_offered).
    pub fn offered(&self) -> u64 {
        self.handshakes() - self.not_offered
    }

    /// Handshakes that offered a session and did not resume.
    pub fn missed(&self) -> u64 {
        Resumption::MISSED.iter().map(|&r| self.count(r)).sum()
    }
}

impl std::ops::Add for Resumptions {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        for r in Resumption::ALL {
            *self.count_mut(r) += other.count(r);
        }
        self
    }
}

/// Each outcome under its [`name`](Resumption::name), in [`Resumption::ALL`]'s order; the
/// reasons are reported under their names too.
impl Describe for Resumptions {
    const METRICS: &'static [Metric] = &[
        Metric::counter("resumed", "Handshakes that resumed a session.").reported("resumed"),
        Metric::counter("not_offered", "Handshakes that offered no session.")
            .reported("nothing offered"),
        Metric::counter(
            "unknown_id",
            "Offers of an id the cache (and the shared store) did not know.",
        )
        .reported("unknown_id"),
        Metric::counter("expired", "Offers of an expired session.").reported("expired"),
        Metric::counter(
            "other_context",
            "Offers of a session for another session id context or protocol version.",
        )
        .reported("other_context"),
        Metric::counter(
            "already_used",
            "Offers of a single-use ticket used already.",
        )
        .reported("already_used"),
        Metric::counter(
            "refused_by_stack",
            "Offers the TLS stack (or the cache, for it) refused.",
        )
        .reported("refused_by_stack"),
        Metric::counter(
            "store_unavailable",
            "Offers that missed because the shared store did not answer.",
        )
        .reported("store_unavailable"),
    ];
}

/// The live counters behind [`Resumptions`].
pub(crate) struct ResumptionCounters(Spread);

impl ResumptionCounters {
    pub(crate) fn new() -> Self {
        Self(Spread::new(Resumption::ALL.len()))
    }

    pub(crate) fn record(&self, outcome: Resumption) {
        // `ALL` lists the outcomes in declaration order.
        self.0
            .get(outcome as usize)
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Resumptions {
        let mut out = Resumptions::default();
        for (r, c) in Resumption::ALL.iter().zip(self.0.iter()) {
            *out.count_mut(*r) = c.load(std::sync::atomic::Ordering::Relaxed);
        }
        out
    }
}

/// What one handshake asked of the cache, as its [`Handshake`](crate::Handshake) saw it: the
/// session offered and what the lookup made of it, the sessions the handshake issued, and
/// its outcome once finished. Read-only outside this crate: only the handshake writes it.
///
/// It holds session ids, which a client sends in the clear; never log them.
#[derive(Clone, Default)]
pub struct HandshakeRecord {
    offered: Option<(ProtocolVersion, SessionId)>,
    lookup: Option<Resumption>,
    issued: Vec<SessionId>,
    version: Option<ProtocolVersion>,
    outcome: Option<Resumption>,
    offers: u32,
    issued_count: u32,
}

impl HandshakeRecord {
    /// An empty record: nothing offered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a lookup of an offered id and its result. With several offers in one handshake
    /// (a TLS 1.3 client may send several tickets), a hit wins over the misses.
    pub(crate) fn looked_up(&mut self, version: ProtocolVersion, id: &[u8], lookup: &Lookup) {
        self.offers = self.offers.saturating_add(1);
        if self.lookup == Some(Resumption::Resumed) {
            return;
        }
        self.lookup = Some(Resumption::of_lookup(lookup));
        self.version = Some(version);
        self.offered = SessionId::new(id).ok().map(|id| (version, id));
    }

    /// How many offers this handshake has looked up so far.
    pub fn offers(&self) -> u32 {
        self.offers
    }

    /// Whether the next lookup is the handshake's first offer
    /// ([`LookupRequest::first_offer`](crate::LookupRequest::first_offer)).
    pub(crate) fn next_is_first_offer(&self) -> bool {
        self.offers == 0
    }

    /// Notes a session the handshake issued (a TLS 1.2 session, a TLS 1.3 ticket).
    pub(crate) fn issued(&mut self, session: &Session) {
        self.issued_count = self.issued_count.saturating_add(1);
        self.version = Some(session.version());
        if self.issued.len() < 16 {
            self.issued.push(session.id().clone());
        }
    }

    /// The protocol version of the offer or the issued sessions, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Sets the handshake's protocol version (a stack that knows it once the handshake is
    /// over).
    pub(crate) fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// The id the client offered, if it offered one the cache could look up.
    pub fn offered_id(&self) -> Option<&SessionId> {
        self.offered.as_ref().map(|(_, id)| id)
    }

    /// How many sessions the handshake issued (all of them; [`issued_ids`](Self::issued_ids)
    /// keeps the first 16).
    pub fn issued_count(&self) -> u32 {
        self.issued_count
    }

    /// The ids of the sessions the handshake issued (the first 16).
    pub fn issued_ids(&self) -> &[SessionId] {
        &self.issued
    }

    /// What the lookup made of the offer, if there was one.
    pub fn lookup(&self) -> Option<Resumption> {
        self.lookup
    }

    /// The handshake's outcome, once its [`Handshake::finish`](crate::Handshake::finish) has
    /// counted it.
    pub fn outcome(&self) -> Option<Resumption> {
        self.outcome
    }

    /// The outcome of a handshake that `resumed` (or not) after what this record saw: a
    /// resumption; nothing offered; the lookup's reason; or, when the lookup found a session
    /// and the handshake did not resume it, refused by the TLS stack.
    pub(crate) fn outcome_if(&self, resumed: bool) -> Resumption {
        match (resumed, self.lookup) {
            (true, _) => Resumption::Resumed,
            (false, None) => Resumption::NotOffered,
            (false, Some(Resumption::Resumed)) => Resumption::RefusedByStack,
            (false, Some(reason)) => reason,
        }
    }

    pub(crate) fn set_outcome(&mut self, outcome: Resumption) {
        self.outcome = Some(outcome);
    }
}

impl fmt::Debug for HandshakeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids stay out of Debug output: only what happened.
        f.debug_struct("HandshakeRecord")
            .field("offered", &self.offered.is_some())
            .field("lookup", &self.lookup)
            .field("issued", &self.issued.len())
            .field("offers", &self.offers)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_the_outcomes_in_declaration_order() {
        for (i, r) in Resumption::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
        }
        let missed: Vec<_> = Resumption::ALL
            .into_iter()
            .filter(|r| r.offered() && *r != Resumption::Resumed)
            .collect();
        assert_eq!(missed, Resumption::MISSED);
    }

    #[test]
    fn names_round_trip_and_are_distinct() {
        for r in Resumption::ALL {
            assert_eq!(Resumption::from_name(r.name()), Some(r));
        }
        assert_eq!(Resumption::from_name("hit"), None);
    }

    #[test]
    fn counters_count_each_outcome_in_its_own_field() {
        let c = ResumptionCounters::new();
        for (i, r) in Resumption::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                c.record(r);
            }
        }
        let s = c.snapshot();
        for (i, r) in Resumption::ALL.into_iter().enumerate() {
            assert_eq!(s.count(r), i as u64 + 1, "{r}");
        }
        assert_eq!(s.handshakes(), 36);
        assert_eq!(s.offered(), 34);
        assert_eq!(s.missed(), 33);
        assert_eq!((s + s).expired, 8);
    }

    #[test]
    fn a_record_tells_the_outcome_from_what_it_saw() {
        let mut record = HandshakeRecord::new();
        assert_eq!(record.outcome_if(false), Resumption::NotOffered);
        record.looked_up(
            ProtocolVersion::TLS1_2,
            b"id",
            &Lookup::Miss(Miss::OtherContext),
        );
        assert_eq!(record.outcome_if(false), Resumption::OtherContext);
        assert_eq!(record.outcome_if(true), Resumption::Resumed);
        record.looked_up(ProtocolVersion::TLS1_2, b"id", &Lookup::Timeout);
        assert_eq!(record.outcome_if(false), Resumption::Expired);
        assert_eq!(
            record.offered_id().map(|id| id.as_bytes()),
            Some(&b"id"[..])
        );
        assert!(!format!("{record:?}").contains("105, 100"));
    }
}
