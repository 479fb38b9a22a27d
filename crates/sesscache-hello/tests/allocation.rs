//! The parsers never allocate more than their input's size, whatever the input: measured
//! with a global allocator that tracks, per thread, the peak of live heap bytes.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sesscache_hello::{parse_handshake, parse_records};
use support::hello::{message, record, records, Hello};

thread_local! {
    /// Heap bytes this thread allocated less those it freed since `peak_of` began, and
    /// their peak (const-initialized: no allocation).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// `System`, tracking each thread's live bytes and their peak.
struct Peak;

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.get() + layout.size() as isize;
        LIVE.set(live);
        PEAK.set(PEAK.get().max(live));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.set(LIVE.get() - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Peak = Peak;

/// The most heap bytes `f` held at once, on this thread.
fn peak_of<T>(f: impl FnOnce() -> T) -> usize {
    LIVE.set(0);
    PEAK.set(0);
    let out = f();
    let peak = PEAK.get();
    drop(out);
    peak as usize
}

#[test]
fn never_more_than_the_input() {
    let ids: Vec<Vec<u8>> = (0..900u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let ids: Vec<(&[u8], u32)> = ids.iter().map(|id| (&id[..], 0)).collect();
    let big = Hello::tls13().psk(&ids);
    let mut inputs = vec![
        include_bytes!("fixtures/openssl-tls12-session-id.bin").to_vec(),
        include_bytes!("fixtures/openssl-tls13-ticket.bin").to_vec(),
        Hello::tls12().records(1),
        big.records(16384),
        big.message(),
        // Lengths that claim far more than there is.
        records(&message(&[0xff; 300]), 100),
        record(22, &[1, 0, 0xff, 0xff]),
        message(&[3, 3]),
        vec![1, 0, 0xff, 0xff],
    ];
    // A whole body copied, then found wrong (an odd cipher_suites length).
    let bad = Hello {
        cipher_suites: vec![0x13],
        ..Hello::tls13()
    };
    inputs.push(bad.records(50));

    for input in &inputs {
        let records = peak_of(|| parse_records(input));
        let handshake = peak_of(|| parse_handshake(input));
        assert!(records <= input.len(), "{records} > {}", input.len());
        assert!(handshake <= input.len(), "{handshake} > {}", input.len());
    }
    // A whole ClientHello costs one copy of its body, and nothing while incomplete.
    let flight = big.records(16384);
    assert_eq!(peak_of(|| parse_records(&flight)), big.body().len());
    assert_eq!(peak_of(|| parse_records(&flight[..flight.len() - 1])), 0);
}
