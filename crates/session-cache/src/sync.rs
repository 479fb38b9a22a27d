//! The one place the crate takes its locks and atomics from, so that a model checker (loom)
//! can stand in for std under `--cfg sesscache_loom`.

#[cfg(sesscache_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(sesscache_loom)]
pub(crate) use loom::sync::Mutex;

#[cfg(not(sesscache_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(sesscache_loom))]
pub(crate) use std::sync::Mutex;

/// Locks a mutex, carrying on through poisoning: every critical section in this crate leaves
/// its data consistent before it can panic, and a cache must keep serving after a panicking
/// callback thread.
#[cfg(not(sesscache_loom))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(sesscache_loom)]
pub(crate) fn lock<T>(m: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
