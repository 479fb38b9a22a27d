//! Prints the ratio table from criterion's results of `cargo bench --bench cache` (and of
//! `--bench resumption`, the rustls handshakes): for every
//! group and case, each contender's median time per operation and how many times faster
//! sesscache is (or, for `ceiling` and `unshared`, what fraction of their speed sesscache
//! reaches).
//!
//! `cargo run --release --example bench_ratios [-- TARGET_DIR]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const GROUPS: [&str; 6] = [
    "lookup_hit",
    "add_full",
    "mixed",
    "take",
    "flush",
    "resumption",
];
const CONTENDERS: [&str; 6] = [
    "sesscache",
    "openssl",
    "rustls",
    "moka",
    "ceiling",
    "unshared",
];
/// Contenders that are limits rather than rivals: the ratio is the fraction of their speed.
const LIMITS: [&str; 2] = ["ceiling", "unshared"];

/// The median time per iteration, in nanoseconds, of one benchmark.
fn median(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn main() {
    let target = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let root = target.join("criterion");
    if !root.is_dir() {
        eprintln!(
            "bench_ratios: no {} (run `cargo bench --bench cache` first)",
            root.display()
        );
        std::process::exit(2);
    }
    println!("median time per operation (ns) and sesscache's speed-up over each contender");
    println!(
        "(x > 1: sesscache is faster; for ceiling and unshared, the fraction of their speed)\n"
    );
    for group in GROUPS {
        let mut cases: BTreeMap<String, BTreeMap<&str, f64>> = BTreeMap::new();
        for contender in CONTENDERS {
            let Ok(entries) = std::fs::read_dir(root.join(group).join(contender)) else {
                continue;
            };
            for entry in entries.flatten() {
                let case = entry.file_name().to_string_lossy().into_owned();
                if let Some(m) = median(&entry.path()) {
                    cases.entry(case).or_default().insert(contender, m);
                }
            }
        }
        if cases.is_empty() {
            continue;
        }
        println!("{group}");
        for (case, times) in &cases {
            let Some(&ours) = times.get("sesscache") else {
                continue;
            };
            let mut line = format!("  {case:<12} sesscache {ours:>10.1}");
            for contender in &CONTENDERS[1..] {
                if let Some(&t) = times.get(contender) {
                    let ratio = t / ours;
                    line += &if LIMITS.contains(contender) {
                        format!(" | {contender} {t:>10.1} ({ratio:.2} of {contender})")
                    } else {
                        format!(" | {contender} {t:>10.1} ({ratio:.2} x)")
                    };
                }
            }
            println!("{line}");
        }
        println!();
    }
}
