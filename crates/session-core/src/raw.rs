//! The session's storage (wiped whole when the session is freed) and the raw handles of the
//! session cache's lock-free map: the crate's only `unsafe` code. The raw handles are hidden
//! from the documentation: applications have no use for them, and they are not part of the
//! public API's promises.

use std::mem::ManuallyDrop;
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
pub(crate) struct Wiped(pub(crate) ManuallyDrop<SessionData>);

impl Drop for Wiped {
    fn drop(&mut self) {
        // SAFETY: the data is dropped exactly once, here, and never read again.
        unsafe { ManuallyDrop::drop(&mut self.0) };
        // The storage is 8-aligned and a whole number of words long (SessionData holds u64s),
        // so it is wiped a word at a time.
        const WORDS: usize = size_of::<ManuallyDrop<SessionData>>() / 8;
        const _: () = assert!(size_of::<ManuallyDrop<SessionData>>().is_multiple_of(8));
        const _: () = assert!(align_of::<ManuallyDrop<SessionData>>() >= 8);
        let base = std::ptr::addr_of_mut!(self.0).cast::<u64>();
        for i in 0..WORDS {
            // SAFETY: `base..base + WORDS` is this struct's own storage, 8-aligned (checked
            // above), which we may overwrite with any bytes since nothing reads it as a
            // `SessionData` again. Volatile, so that writes to memory about to be freed are not
            // elided.
            unsafe { base.add(i).write_volatile(0) };
        }
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    }
}

/// Raw handles for lock-free maps (the session cache's). A raw handle is one pointer that
/// carries one reference (strong) and one weak count: the reference keeps the session alive
/// while a map holds it, and the weak count keeps its memory readable for lock-free readers
/// after the map has let the reference go, until a memory reclamation scheme (an epoch)
/// says that no reader can still hold the pointer. Applications have no use for these.
impl Session {
    /// Turns this reference into a raw handle (see above), adding the weak count. Give the
    /// reference back with [`take_raw`](Self::take_raw) and the weak count with
    /// [`release_raw`](Self::release_raw), each exactly once.
    #[doc(hidden)]
    #[must_use]
    #[inline]
    pub fn into_raw(self) -> *const () {
        let weak = std::sync::Weak::into_raw(Arc::downgrade(&self.0));
        let strong = Arc::into_raw(self.0);
        debug_assert_eq!(weak, strong);
        strong.cast()
    }

    /// Takes the reference out of a raw handle; the weak count stays with the pointer.
    ///
    /// # Safety
    /// `raw` came from [`into_raw`](Self::into_raw) and its reference has not been taken yet.
    #[doc(hidden)]
    #[inline]
    pub unsafe fn take_raw(raw: *const ()) -> Session {
        // SAFETY: by the contract, `raw` is `Arc::into_raw` of a reference not yet given back.
        Session(unsafe { Arc::from_raw(raw.cast::<Wiped>()) })
    }

    /// A new reference to the session behind a raw handle whose reference is still held.
    ///
    /// # Safety
    /// `raw` came from [`into_raw`](Self::into_raw) and its reference has not been taken yet,
    /// nor will it be while this runs.
    #[doc(hidden)]
    #[inline]
    pub unsafe fn clone_raw(raw: *const ()) -> Session {
        // SAFETY: the handle's reference keeps the count above zero, so adding one is
        // `Arc::clone`'s own operation on a live `Arc`.
        unsafe { Arc::increment_strong_count(raw.cast::<Wiped>()) };
        // SAFETY: the count was just raised for this new `Arc`.
        Session(unsafe { Arc::from_raw(raw.cast::<Wiped>()) })
    }

    /// A new reference to the session behind a raw handle, if it has not been freed: what a
    /// lock-free reader that found the pointer does. Never touches the session's fields.
    ///
    /// # Safety
    /// `raw` came from [`into_raw`](Self::into_raw) and its weak count has not been released,
    /// nor will it be while this runs.
    #[doc(hidden)]
    #[inline]
    pub unsafe fn upgrade_raw(raw: *const ()) -> Option<Session> {
        // SAFETY: the handle's weak count keeps the allocation (not the fields) alive; the
        // `ManuallyDrop` makes this a borrow of that count, never a release of it.
        let weak = ManuallyDrop::new(unsafe { std::sync::Weak::from_raw(raw.cast::<Wiped>()) });
        weak.upgrade().map(Session)
    }

    /// Releases a raw handle's weak count, after its reference was taken.
    ///
    /// # Safety
    /// `raw` came from [`into_raw`](Self::into_raw), its weak count has not been released, and
    /// no one will use the pointer again.
    #[doc(hidden)]
    #[inline]
    pub unsafe fn release_raw(raw: *const ()) {
        // SAFETY: by the contract, this gives back the weak count `into_raw` took, once.
        drop(unsafe { std::sync::Weak::from_raw(raw.cast::<Wiped>()) });
    }
}
