//! What it costs this machine to move one cache line from one core to the other: two threads
//! take turns writing one word, each waiting to see the other's write first, so every turn is
//! one transfer of the line. Used by the `line_transfer` tool and by the readings that
//! `benches/cache.rs` takes before each group with two-thread cases.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The wall time of `turns` turns (transfers of the line) between two threads.
pub fn take_turns(turns: u64) -> Duration {
    let word = AtomicU64::new(0);
    let began = Instant::now();
    std::thread::scope(|s| {
        for me in 0..2 {
            let word = &word;
            s.spawn(move || {
                // Thread 0 writes the even values' successors, thread 1 the odd ones'.
                let mut mine = me;
                while mine < turns {
                    if word.load(Ordering::Acquire) == mine {
                        word.store(mine + 1, Ordering::Release);
                        mine += 2;
                    } else {
                        spin_loop();
                    }
                }
            });
        }
    });
    began.elapsed()
}
