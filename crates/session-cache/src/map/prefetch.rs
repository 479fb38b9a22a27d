//! Cache-line prefetch hints: the one place that knows the instruction, and where `Arc`
//! keeps a session's counts.

/// Starts fetching a cache line, for writing when `FOR_WRITE`, else for reading. A prefetch
/// never faults, whatever the address, so a stale or wrong address is only a wasted hint.
#[inline]
pub(super) fn prefetch<const FOR_WRITE: bool>(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0, _MM_HINT_T0};
        // SAFETY: SSE is in x86_64's baseline, and a prefetch has no other requirement (it
        // reads nothing and cannot fault).
        unsafe {
            if FOR_WRITE {
                _mm_prefetch::<_MM_HINT_ET0>(p.cast::<i8>());
            } else {
                _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts fetching a session's reference counts for writing, from its raw handle: std's `Arc`
/// keeps them in the 16 bytes just before the data `Session::as_ptr` points at.
#[inline]
pub(super) fn prefetch_counts(raw: *const ()) {
    prefetch::<true>(raw.cast::<u8>().wrapping_sub(16));
}
