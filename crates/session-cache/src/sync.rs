//! The one place the crate takes its locks, atomics and thread yields from, so that a model
//! checker (loom) can stand in for std under `--cfg sesscache_loom`. crossbeam-epoch follows
//! under `--cfg crossbeam_loom` (see `.ci/run`).

#[cfg(sesscache_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(sesscache_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(sesscache_loom)]
pub(crate) use loom::thread::yield_now;

#[cfg(not(sesscache_loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(sesscache_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(sesscache_loom))]
pub(crate) use std::thread::yield_now;

use std::sync::{PoisonError, TryLockError};

/// Locks a mutex, carrying on through poisoning: every critical section in this crate leaves
/// its data consistent before it can panic, and a cache must keep serving after a panicking
/// callback thread.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] if no other thread holds the lock right now, else `None`.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}
