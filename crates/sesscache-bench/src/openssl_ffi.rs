//! OpenSSL's own session cache through the C calls a server makes, for the benchmarks,
//! `flush_latency` and `memory_per_session`; and OpenSSL's allocations routed through Rust's
//! global allocator, so that a counting allocator counts them (less the headers this module
//! puts in front of them, [`openssl_header_bytes`]). OpenSSL 3.0's signatures;
//! openssl-sys links libssl but does not declare all of these.

use std::alloc::Layout;
use std::os::raw::{c_char, c_int, c_long, c_uint, c_void};
use std::sync::atomic::{AtomicIsize, Ordering};

use openssl_sys::{SSL, SSL_CTX, SSL_METHOD, SSL_SESSION};

type Key = [u8; 32];

const SSL_CTRL_SESS_NUMBER: c_int = 20;
const SSL_CTRL_SET_SESS_CACHE_SIZE: c_int = 42;

unsafe extern "C" {
    fn TLS_server_method() -> *const SSL_METHOD;
    fn SSL_CTX_new(method: *const SSL_METHOD) -> *mut SSL_CTX;
    fn SSL_CTX_free(ctx: *mut SSL_CTX);
    fn SSL_CTX_ctrl(ctx: *mut SSL_CTX, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long;
    fn SSL_new(ctx: *mut SSL_CTX) -> *mut SSL;
    fn SSL_free(ssl: *mut SSL);
    fn SSL_version(ssl: *const SSL) -> c_int;
    fn SSL_SESSION_new() -> *mut SSL_SESSION;
    fn SSL_SESSION_free(s: *mut SSL_SESSION);
    fn SSL_SESSION_set1_id(s: *mut SSL_SESSION, id: *const u8, len: c_uint) -> c_int;
    fn SSL_SESSION_set1_master_key(s: *mut SSL_SESSION, key: *const u8, len: usize) -> c_int;
    fn SSL_SESSION_set_protocol_version(s: *mut SSL_SESSION, version: c_int) -> c_int;
    fn SSL_SESSION_set_time(s: *mut SSL_SESSION, t: c_long) -> c_long;
    fn SSL_SESSION_set_timeout(s: *mut SSL_SESSION, t: c_long) -> c_long;
    fn SSL_CTX_add_session(ctx: *mut SSL_CTX, s: *mut SSL_SESSION) -> c_int;
    fn SSL_CTX_remove_session(ctx: *mut SSL_CTX, s: *mut SSL_SESSION) -> c_int;
    fn SSL_has_matching_session_id(ssl: *const SSL, id: *const u8, len: c_uint) -> c_int;
    fn SSL_CTX_flush_sessions(ctx: *mut SSL_CTX, t: c_long);
    fn CRYPTO_set_mem_functions(
        m: Option<unsafe extern "C" fn(usize, *const c_char, c_int) -> *mut c_void>,
        r: Option<unsafe extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void>,
        f: Option<unsafe extern "C" fn(*mut c_void, *const c_char, c_int)>,
    ) -> c_int;
}

/// Routes every allocation OpenSSL makes from now on through Rust's global allocator, so
/// that a counting global allocator counts OpenSSL's memory with the same rule as Rust's (the
/// bytes asked for). Must run before OpenSSL allocates anything (first thing in `main`);
/// whether it took.
pub fn route_openssl_allocations() -> bool {
    // SAFETY: the three functions below keep `CRYPTO_malloc`'s contract.
    unsafe { CRYPTO_set_mem_functions(Some(ossl_malloc), Some(ossl_realloc), Some(ossl_free)) == 1 }
}

/// Each block carries its size in front of what OpenSSL sees, for `free` and `realloc`.
const HEADER: usize = 16;

/// OpenSSL's blocks alive now, each with a header the allocator counts.
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

/// The bytes of the headers in front of OpenSSL's live blocks: what a counting allocator
/// counted for them beyond the bytes OpenSSL asked for.
pub fn openssl_header_bytes() -> isize {
    BLOCKS.load(Ordering::Relaxed) * HEADER as isize
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

unsafe extern "C" fn ossl_malloc(size: usize, _: *const c_char, _: c_int) -> *mut c_void {
    let Some(layout) = layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `layout` has a non-zero size (the header).
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    BLOCKS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `base` holds at least HEADER bytes, 16-aligned.
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn ossl_realloc(
    ptr: *mut c_void,
    size: usize,
    file: *const c_char,
    line: c_int,
) -> *mut c_void {
    if ptr.is_null() {
        // SAFETY: as `CRYPTO_realloc` of NULL is `CRYPTO_malloc`.
        return unsafe { ossl_malloc(size, file, line) };
    }
    if size == 0 {
        // As `CRYPTO_realloc` to 0 bytes: freed, and NULL.
        // SAFETY: `ptr` came from `ossl_malloc` or this function.
        unsafe { ossl_free(ptr, file, line) };
        return std::ptr::null_mut();
    }
    // SAFETY: `ptr` came from `ossl_malloc` or this function: its header is HEADER bytes
    // before it and holds its size.
    unsafe {
        let base = ptr.cast::<u8>().sub(HEADER);
        let old = base.cast::<usize>().read();
        let (Some(from), Some(_)) = (layout(old), layout(size)) else {
            return std::ptr::null_mut();
        };
        let moved = std::alloc::realloc(base, from, size + HEADER);
        if moved.is_null() {
            return std::ptr::null_mut();
        }
        moved.cast::<usize>().write(size);
        moved.add(HEADER).cast()
    }
}

unsafe extern "C" fn ossl_free(ptr: *mut c_void, _: *const c_char, _: c_int) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: as in `ossl_realloc`; the block is given back once, with its own layout.
    unsafe {
        let base = ptr.cast::<u8>().sub(HEADER);
        let size = base.cast::<usize>().read();
        if let Some(layout) = layout(size) {
            std::alloc::dealloc(base, layout);
            BLOCKS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An `SSL_CTX` and the sessions the benchmark owns a reference to.
#[derive(Debug)]
pub struct Ctx {
    ctx: *mut SSL_CTX,
    version: c_int,
}

// SAFETY: OpenSSL's SSL_CTX is safe to use from many threads at once (its cache takes its
// own lock); each thread makes its own SSL object.
unsafe impl Send for Ctx {}
unsafe impl Sync for Ctx {}

/// A session the benchmark holds one reference to.
#[derive(Debug)]
pub struct Sess(*mut SSL_SESSION);
// SAFETY: SSL_SESSION reference counts are atomic; the benchmark never mutates a session
// after it was shared.
unsafe impl Send for Sess {}
unsafe impl Sync for Sess {}

impl Drop for Sess {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { SSL_SESSION_free(self.0) }
    }
}

/// A per-thread SSL object, for lookups.
#[derive(Debug)]
pub struct Conn(*mut SSL);
impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: made by SSL_new, freed once.
        unsafe { SSL_free(self.0) }
    }
}

impl Ctx {
    /// A server context whose cache holds at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        openssl_sys::init();
        // SAFETY: plain constructor calls; results checked.
        unsafe {
            let ctx = SSL_CTX_new(TLS_server_method());
            assert!(!ctx.is_null());
            SSL_CTX_ctrl(
                ctx,
                SSL_CTRL_SET_SESS_CACHE_SIZE,
                capacity as c_long,
                std::ptr::null_mut(),
            );
            let ssl = SSL_new(ctx);
            let version = SSL_version(ssl);
            SSL_free(ssl);
            Self { ctx, version }
        }
    }

    /// A new session under id `key`, with a secret, made at `time`.
    pub fn session(&self, key: &Key, time: u64, timeout: u64) -> Sess {
        // SAFETY: a fresh session, configured before it is shared.
        unsafe {
            let s = SSL_SESSION_new();
            assert!(!s.is_null());
            assert_eq!(SSL_SESSION_set1_id(s, key.as_ptr(), 32), 1);
            assert_eq!(SSL_SESSION_set1_master_key(s, [7u8; 48].as_ptr(), 48), 1);
            // The lookup key includes the version, which must be the SSL object's.
            assert_eq!(SSL_SESSION_set_protocol_version(s, self.version), 1);
            SSL_SESSION_set_time(s, time as c_long);
            SSL_SESSION_set_timeout(s, timeout as c_long);
            Sess(s)
        }
    }

    /// An SSL object of this context (one per thread), for lookups.
    pub fn conn(&self) -> Conn {
        // SAFETY: SSL_new on a live context.
        Conn(unsafe { SSL_new(self.ctx) })
    }

    /// `SSL_CTX_add_session`: whether it was added.
    pub fn add(&self, s: &Sess) -> bool {
        // SAFETY: the cache takes its own reference.
        unsafe { SSL_CTX_add_session(self.ctx, s.0) == 1 }
    }

    /// `SSL_CTX_remove_session`: whether it was cached.
    pub fn remove(&self, s: &Sess) -> bool {
        // SAFETY: the session is live (we hold a reference).
        unsafe { SSL_CTX_remove_session(self.ctx, s.0) == 1 }
    }

    /// A lookup as a server's handshake makes it (`SSL_has_matching_session_id`).
    pub fn has(&self, conn: &Conn, key: &Key) -> bool {
        // SAFETY: a live SSL object of this context.
        unsafe { SSL_has_matching_session_id(conn.0, key.as_ptr(), 32) == 1 }
    }

    /// `SSL_CTX_sess_number`.
    pub fn number(&self) -> usize {
        // SAFETY: a read-only control call on a live context.
        unsafe { SSL_CTX_ctrl(self.ctx, SSL_CTRL_SESS_NUMBER, 0, std::ptr::null_mut()) as usize }
    }

    /// `SSL_CTX_flush_sessions` at time `at`.
    pub fn flush(&self, at: u64) {
        // SAFETY: a live context.
        unsafe { SSL_CTX_flush_sessions(self.ctx, at as c_long) }
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: made by SSL_CTX_new; freeing it flushes its cache.
        unsafe { SSL_CTX_free(self.ctx) }
    }
}
