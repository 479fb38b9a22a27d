//! The session's storage, wiped whole when the session is freed (the crate's only `unsafe`
//! code; the same wipe covers the boxes of rarely used fields), and the safe conversions
//! between a [`Session`] and the pinned `Arc` of its storage, on which the session cache's
//! lock-free map builds its raw handles.

use std::fmt;
use std::marker::PhantomPinned;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::{Session, SessionData};

/// A session's storage, wiped whole when the session is freed.
///
/// Zeroizing the secret fields is not enough: a session is built on the stack and moved
/// into its allocation byte for byte, and the bytes no field initializes (padding, the
/// payload of a `None`) carry whatever the stack held, which can be a copy of the session id
/// or of a key. So after the fields are dropped (the master key and id zeroize themselves),
/// every byte of the storage is overwritten before the memory goes back to the allocator.
///
/// The same holds for the box of a session's rarely used fields (`Wiped<Rare>`): a `None`
/// among them carries stack bytes as much as the session's own storage does.
///
/// Opaque outside this crate: no public field, no method, so a `Pin<Arc<Wiped>>`
/// ([`Session::into_shared`]) gives no way to read or change the session; it only counts
/// references to it. It is pinned (`Wiped` is `!Unpin`), so no safe code can move the
/// storage out of its allocation (`Arc::try_unwrap` would free the allocation without the
/// wipe).
#[doc(hidden)]
pub struct Wiped<T = SessionData>(ManuallyDrop<T>, PhantomPinned);

impl<T> Wiped<T> {
    pub(crate) fn new(data: T) -> Self {
        Self(ManuallyDrop::new(data), PhantomPinned)
    }

    #[inline]
    pub(crate) fn get(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for Wiped<T> {
    fn drop(&mut self) {
        // The storage is 8-aligned and a whole number of words long (every type kept here
        // holds u64s or pointers), so it is wiped a word at a time.
        const { assert!(size_of::<T>().is_multiple_of(8) && align_of::<T>() >= 8) };
        // SAFETY: the data is dropped exactly once, here, and never read again.
        unsafe { ManuallyDrop::drop(&mut self.0) };
        let words = size_of::<T>() / 8;
        let base = std::ptr::addr_of_mut!(self.0).cast::<u64>();
        for i in 0..words {
            // SAFETY: `base..base + words` is this struct's own storage, 8-aligned (checked
            // above), which we may overwrite with any bytes since nothing reads it as a `T`
            // again. Volatile, so that writes to memory about to be freed are not
            // elided.
            unsafe { base.add(i).write_volatile(0) };
        }
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    }
}

impl<T> fmt::Debug for Wiped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wiped").finish_non_exhaustive()
    }
}

/// A session as the pinned `Arc` of its storage, for a lock-free map that keeps its
/// references as raw pointers (`Arc::into_raw`, `Weak`), as the session cache's does. Both
/// conversions are moves: no count changes. Applications have no use for them.
impl Session {
    /// This reference as the pinned `Arc` of the session's storage;
    /// [`from_shared`](Self::from_shared) turns it back.
    #[doc(hidden)]
    #[must_use]
    #[inline]
    pub fn into_shared(self) -> Pin<Arc<Wiped>> {
        // SAFETY: this crate never moves a `Wiped` out of its `Arc`; it is dropped (and
        // wiped) in place when the last reference goes.
        unsafe { Pin::new_unchecked(self.0) }
    }

    /// The reference that a pinned `Arc` of a session's storage is.
    #[doc(hidden)]
    #[must_use]
    #[inline]
    pub fn from_shared(shared: Pin<Arc<Wiped>>) -> Session {
        // SAFETY: a `Session` never moves its storage out of the `Arc` (see above), so the
        // pin holds on.
        Session(unsafe { Pin::into_inner_unchecked(shared) })
    }
}
