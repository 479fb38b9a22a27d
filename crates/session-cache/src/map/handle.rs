//! The raw session handle a slot holds: one pointer that carries one reference to a session
//! and one weak count, made from the `Arc` of the session's storage
//! (`Session::into_shared`). The reference keeps the session alive while the map holds it;
//! the weak count keeps its memory readable for lock-free readers after the map has let the
//! reference go, until the epoch says that no reader can still hold the pointer.

use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use session_core::{Session, Wiped};

/// A raw handle (see above). Copying one copies the pointer, not what it carries: its
/// reference is taken ([`take`](Self::take)) and its weak count given back
/// ([`release`](Self::release)) exactly once each, by whichever copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawHandle(*const Wiped);

/// The session an `Arc` of the storage the map took out of its pin is.
#[inline]
fn pinned(shared: Arc<Wiped>) -> Session {
    // SAFETY: the storage has not moved: the map only ever held it behind pointers.
    Session::from_shared(unsafe { Pin::new_unchecked(shared) })
}

impl RawHandle {
    /// Turns this reference into a raw handle, adding the weak count.
    #[must_use]
    #[inline]
    pub(super) fn new(session: Session) -> Self {
        // SAFETY: the map never moves the storage out of its allocation: it keeps pointers
        // and counts, and gives the `Arc` back pinned (`pinned`).
        let shared = unsafe { Pin::into_inner_unchecked(session.into_shared()) };
        let weak = Weak::into_raw(Arc::downgrade(&shared));
        let strong = Arc::into_raw(shared);
        debug_assert_eq!(weak, strong);
        Self(strong)
    }

    /// The handle whose pointer a slot stored ([`as_ptr`](Self::as_ptr)).
    #[inline]
    pub(super) fn from_ptr(ptr: *mut ()) -> Self {
        Self(ptr.cast_const().cast())
    }

    /// The pointer a slot stores: the session's address, as [`Session::as_ptr`] gives it.
    #[inline]
    pub(super) fn as_ptr(self) -> *mut () {
        self.0.cast_mut().cast()
    }

    /// Whether this is a handle of this very session.
    #[inline]
    pub(super) fn is_for(self, session: &Session) -> bool {
        self.as_ptr().cast_const() == session.as_ptr()
    }

    /// Takes the reference out; the weak count stays with the pointer.
    ///
    /// # Safety
    /// `self` came from [`new`](Self::new) and its reference has not been taken yet.
    #[inline]
    pub(super) unsafe fn take(self) -> Session {
        // SAFETY: by the contract, the pointer is `Arc::into_raw` of a reference not yet
        // given back.
        pinned(unsafe { Arc::from_raw(self.0) })
    }

    /// A new reference to the session, whose handle still carries its own.
    ///
    /// # Safety
    /// `self` came from [`new`](Self::new) and its reference has not been taken yet, nor will
    /// it be while this runs.
    #[inline]
    pub(super) unsafe fn up_ref(self) -> Session {
        // SAFETY: the handle's reference keeps the count above zero, so adding one is
        // `Arc::clone`'s own operation on a live `Arc`.
        unsafe { Arc::increment_strong_count(self.0) };
        // SAFETY: the count was just raised for this new `Arc`.
        pinned(unsafe { Arc::from_raw(self.0) })
    }

    /// A new reference to the session, if it has not been freed: what a lock-free reader
    /// that found the pointer does. Never touches the session's fields.
    ///
    /// # Safety
    /// `self` came from [`new`](Self::new) and its weak count has not been released, nor will
    /// it be while this runs.
    #[inline]
    pub(super) unsafe fn upgrade(self) -> Option<Session> {
        // SAFETY: the handle's weak count keeps the allocation (not the fields) alive, and
        // the pointer is the one `Weak::into_raw` gave for it; the `ManuallyDrop` makes this
        // a borrow of that count, never a release of it.
        let weak = ManuallyDrop::new(unsafe { Weak::from_raw(self.0) });
        weak.upgrade().map(pinned)
    }

    /// Gives the weak count back, after the reference was taken (freeing the session's
    /// memory if it was the last).
    ///
    /// # Safety
    /// `self` came from [`new`](Self::new), its weak count has not been released, and no one
    /// will use the pointer again.
    #[inline]
    pub(super) unsafe fn release(self) {
        // SAFETY: by the contract, this gives back the weak count `new` took, once.
        drop(unsafe { Weak::from_raw(self.0) });
    }
}
