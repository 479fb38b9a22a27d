//! The master key and the session id are zeroized before their memory is given back, also
//! on the way through OpenSSL's serialized forms and in the rustls adapter. A
//! global allocator looks at every block freed while the test runs and remembers whether any
//! still held the secret's byte pattern.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sesscache::cache::{CacheConfig, SessionCache};
use sesscache::core::{ManualClock, MasterKey, ProtocolVersion, SessionBuilder, SessionId};

const KEY_BYTE: u8 = 0xC3;
const ID_BYTE: u8 = 0x5E;
/// A run this long of one byte is the secret (no allocation of the harness has one).
const RUN: usize = 16;

static ARMED: AtomicBool = AtomicBool::new(false);
static SAW_KEY: AtomicBool = AtomicBool::new(false);
static SAW_ID: AtomicBool = AtomicBool::new(false);

struct Inspecting;

fn has_run(block: &[u8], byte: u8) -> bool {
    block.windows(RUN).any(|w| w.iter().all(|&b| b == byte))
}

// SAFETY: every call is forwarded to `System` with the same arguments; `dealloc` only reads
// the block it is given, which is still allocated and `layout.size()` bytes long.
unsafe impl GlobalAlloc for Inspecting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) {
            // SAFETY: `ptr` points to a live block of `layout.size()` bytes that we own until
            // it is handed back below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if has_run(block, KEY_BYTE) {
                SAW_KEY.store(true, Ordering::SeqCst);
            }
            if has_run(block, ID_BYTE) {
                SAW_ID.store(true, Ordering::SeqCst);
            }
        }
        // Each block is judged once, when it is freed. Wipe it after that, so that a later
        // allocation reusing this memory (malloc keeps most of a small freed block as it was)
        // cannot carry stale bytes, such as the detector's own unwiped buffers below, in its
        // unused capacity and be judged for them.
        // SAFETY: the block is still ours and `layout.size()` bytes long.
        unsafe { std::ptr::write_bytes(ptr, 0, layout.size()) };
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Inspecting = Inspecting;

/// One test, so that nothing else allocates in this binary while the allocator looks.
#[test]
fn secrets_are_zeroized_before_their_memory_is_freed() {
    // The detector works: a plain buffer with the pattern is seen when freed.
    ARMED.store(true, Ordering::SeqCst);
    drop(vec![KEY_BYTE; 48]);
    drop(vec![ID_BYTE; 32]);
    assert!(SAW_KEY.swap(false, Ordering::SeqCst) && SAW_ID.swap(false, Ordering::SeqCst));

    let clock = Arc::new(ManualClock::new(100));
    let cache = SessionCache::new(CacheConfig {
        size: 4,
        clock,
        ..CacheConfig::default()
    });
    let session = SessionBuilder::new(ProtocolVersion::TLS1_2, 100)
        .id(SessionId::new(&[ID_BYTE; 32]).unwrap())
        .master_key(MasterKey::new(&[KEY_BYTE; 48]).unwrap())
        .build();
    let copy = session.dup();
    let renewed = copy.with_timeout(9);
    cache.add(&session).unwrap();
    cache.add(&renewed).unwrap(); // replaces `session` in the cache
    let held = cache.get(ProtocolVersion::TLS1_2, &[ID_BYTE; 32]).unwrap();
    drop(session);
    drop(copy);
    assert!(
        !SAW_KEY.load(Ordering::SeqCst),
        "a freed session left its key behind"
    );
    assert_eq!(
        held.master_key(),
        &[KEY_BYTE; 48],
        "the held session is intact"
    );
    drop(held);
    drop(renewed);
    drop(cache); // the last reference goes with the flush

    // A secret too long to be kept inline lives in its own allocation: zeroized all the same.
    let long = SessionBuilder::new(ProtocolVersion::TLS1_3, 100)
        .id(SessionId::new(&[ID_BYTE; 32]).unwrap())
        .master_key(MasterKey::new(&[KEY_BYTE; 100]).unwrap())
        .build();
    assert_eq!(long.master_key().len(), 100);
    drop(long.dup());
    drop(long);

    // Through OpenSSL's forms and back: the encoded bytes, the PEM text, the buffer PEM is
    // decoded into, the decoded sessions and the printed text all hold the secret.
    let session = SessionBuilder::new(ProtocolVersion::TLS1_2, 100)
        .id(SessionId::new(&[ID_BYTE; 32]).unwrap())
        .master_key(MasterKey::new(&[KEY_BYTE; 48]).unwrap())
        .build();
    let der = sesscache::der::to_der(&session).unwrap();
    let pem = sesscache::der::to_pem(&session).unwrap();
    let from_der = sesscache::der::from_der(&der).unwrap();
    let from_pem = sesscache::der::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(from_pem.master_key(), &[KEY_BYTE; 48]);
    drop(sesscache::der::text::openssl_text(&from_pem));
    drop((session, der, pem, from_der, from_pem));

    // rustls's sessions in the adapter: the value rustls hands over (its encoding, secret
    // included) and the key are wiped when the cache lets them go. (What `get` returns is a
    // copy for rustls, which is rustls's to wipe: this test wipes it as rustls does.)
    {
        use sesscache::ctx::{Context, ContextConfig};
        use sesscache_rustls::rustls::server::StoresServerSessions;
        let context = Context::new(ContextConfig::default());
        let store = sesscache_rustls::ServerSessions::new(&context);
        // rustls's values start with an optional server name and the version: a TLS 1.2
        // session (looked up with `get`) and a TLS 1.3 ticket (with `take`).
        let value = |version: u8| [&[0, 3, version][..], &[KEY_BYTE; 61]].concat();
        assert!(store.put(vec![ID_BYTE; 32], value(3)));
        let mut copy = store.get(&[ID_BYTE; 32]).unwrap();
        zeroize::Zeroize::zeroize(&mut copy);
        assert!(store.put(vec![ID_BYTE; 31], value(4)));
        drop(store.take(&[ID_BYTE; 31]).map(zeroize::Zeroizing::new));
        drop(store);
        drop(context); // flushes the rest
    }
    ARMED.store(false, Ordering::SeqCst);
    assert!(
        !SAW_KEY.load(Ordering::SeqCst),
        "a master key was freed without being zeroized"
    );
    assert!(
        !SAW_ID.load(Ordering::SeqCst),
        "a session id was freed without being zeroized"
    );
}
