//! Giving back unlinked handles' weak counts once the epoch says no reader can still hold
//! them: one at a time through the epoch's own deferred calls, or a flush's batches through
//! [`Reclaim`], which writers drain.

use std::sync::Arc;

use crate::sync::{lock, AtomicBool, Mutex, Ordering};

use super::handle::RawHandle;
use super::prefetch::prefetch_counts;
use super::Guard;

/// An unlinked raw handle whose weak count is still to be given back: after the epoch's grace
/// period, so that no reader that loaded the pointer before the unlink is left.
pub(super) struct Unlinked(pub(super) RawHandle);

// SAFETY: the pointer is a session's raw handle; sessions are `Send + Sync`, and the only use
// of the pointer is to release its weak count, once, on whichever thread `release` runs.
unsafe impl Send for Unlinked {}

impl Unlinked {
    /// Gives the weak count back (freeing the session's memory if it was the last).
    ///
    /// # Safety
    /// The epoch's grace period for the unlink must be over: every guard that was alive when
    /// the handle left its slot is gone.
    pub(super) unsafe fn release(self) {
        // SAFETY: the handle's reference was taken when it was unlinked; by the contract, no
        // reader can still be about to upgrade the pointer.
        unsafe { self.0.release() }
    }
}

/// A flush's unlinked handles past their grace period, waiting for a writer to give them back.
///
/// Lookups pin the epoch, and a pin now and then runs a batch of the epoch's deferred calls.
/// A flush unlinks tens of thousands of sessions: if each deferred call freed one, a lookup
/// that happened to run them would pay for hundreds of frees, and lookups during a flush
/// would wait on the flush after all. So a flush batch's deferred call
/// only moves its handles here (one lock, one push), and writers free them: a few per add or
/// remove, and a flush all that are ready, always with no shard lock held. (An add's or a
/// remove's single handle is freed by the deferred call itself: one free is cheap anywhere.)
pub(super) struct Reclaim {
    ready: Mutex<Ready>,
    /// Whether `ready` may hold handles: writers skip its lock when not.
    pending: AtomicBool,
}

#[derive(Default)]
struct Ready {
    batches: Vec<Vec<Unlinked>>,
    /// The map is gone: nothing will come for these any more, so whoever brings a batch
    /// gives it back at once.
    closed: bool,
}

impl Reclaim {
    pub(super) fn new() -> Self {
        Self {
            ready: Mutex::new(Ready::default()),
            pending: AtomicBool::new(false),
        }
    }

    /// Hands a batch of unlinked handles to the epoch; when their grace period is over, the
    /// epoch moves them to `ready`.
    pub(super) fn defer(self: &Arc<Self>, guard: &Guard, batch: Vec<Unlinked>) {
        let reclaim = Arc::clone(self);
        guard.defer(move || reclaim.grace_over(batch));
    }

    /// Run by the epoch once no reader can reach `batch`'s handles.
    fn grace_over(&self, batch: Vec<Unlinked>) {
        let mut ready = lock(&self.ready);
        if ready.closed {
            drop(ready);
            // SAFETY: the epoch runs this after the grace period.
            unsafe { release_all(batch) };
        } else {
            ready.batches.push(batch);
            self.pending.store(true, Ordering::Release);
        }
    }

    /// Gives back up to `budget` ready handles (all with `usize::MAX`). Every write calls
    /// this, and there is nearly never anything to give back: that test is inline.
    #[inline]
    pub(super) fn free_ready(&self, budget: usize) {
        if self.pending.load(Ordering::Acquire) {
            self.free_ready_now(budget);
        }
    }

    #[cold]
    fn free_ready_now(&self, budget: usize) {
        let mut freed = 0;
        while freed < budget && self.pending.load(Ordering::Acquire) {
            let batch = {
                let mut ready = lock(&self.ready);
                let Some(mut batch) = ready.batches.pop() else {
                    self.pending.store(false, Ordering::Release);
                    break;
                };
                if batch.len() > budget - freed {
                    // Take only what the budget allows; the rest waits for the next writer.
                    let part = batch.split_off(batch.len() - (budget - freed));
                    ready.batches.push(batch);
                    part
                } else {
                    if ready.batches.is_empty() {
                        self.pending.store(false, Ordering::Release);
                    }
                    batch
                }
            };
            freed += batch.len();
            // SAFETY: only batches past their grace period reach `ready`.
            unsafe { release_all(batch) };
        }
    }

    /// The map is dropped: gives back everything ready, and makes the epoch's calls still to
    /// come give theirs back themselves.
    pub(super) fn close(&self) {
        let batches = {
            let mut ready = lock(&self.ready);
            ready.closed = true;
            self.pending.store(false, Ordering::Release);
            std::mem::take(&mut ready.batches)
        };
        for batch in batches {
            // SAFETY: only batches past their grace period reach `ready`.
            unsafe { release_all(batch) };
        }
    }
}

/// Releases a batch of handles, each [`Unlinked::release`], fetching the memory a few handles
/// ahead: each handle's count was last touched when it was unlinked, a grace period ago, so
/// it is a cache miss, and prefetching lets several overlap instead of one at a time.
///
/// # Safety
/// As for [`Unlinked::release`], for every handle in the batch.
pub(super) unsafe fn release_all(batch: Vec<Unlinked>) {
    const AHEAD: usize = 8;
    for i in 0..batch.len() {
        if let Some(ahead) = batch.get(i + AHEAD) {
            prefetch_counts(ahead.0.as_ptr());
        }
        // A copy of the pointer: `Unlinked` has no destructor, so the vector's own element
        // is only memory, and each handle is released once, here.
        // SAFETY: by this function's contract.
        unsafe { Unlinked(batch[i].0).release() };
    }
}
