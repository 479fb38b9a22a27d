//! What it costs this machine to move one cache line from one core to another (how it is
//! measured: `src/line_transfer.rs`). docs/PERFORMANCE.md uses it to explain what
//! two threads pay to share one expiry order (`add_full/2t_100k`).
//!
//! `cargo run --release -p sesscache-bench --bin line_transfer [-- ROUNDS]`
//!
//! Prints the median and the range over ROUNDS rounds (default 9) of 1,000,000 turns each:
//! the guest's two vCPUs may sit closer together or further apart from one run to the next.

use sesscache_bench::line_transfer;

const TURNS: u64 = 1_000_000;

/// Nanoseconds per turn (one transfer of the line) over `TURNS` turns.
fn one_round() -> f64 {
    line_transfer::take_turns(TURNS).as_nanos() as f64 / TURNS as f64
}

fn main() {
    let rounds: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 9,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("line_transfer: ROUNDS must be a positive whole number");
            std::process::exit(2);
        }
    };
    let mut times: Vec<f64> = (0..rounds).map(|_| one_round()).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "one cache line from one core to the other: median {:.1} ns, range {:.1}-{:.1} ns \
         over {rounds} rounds of {TURNS} transfers",
        times[rounds / 2],
        times[0],
        times[rounds - 1]
    );
}
