//! Prints the ratio table from criterion's results of `cargo bench -p sesscache-bench --bench
//! cache` (and of `--bench resumption`, the rustls handshakes): for every group and case, each contender's median time per operation and how many times faster
//! sesscache is (or, for `ceiling`, its pinned variants and `unshared`, what fraction of
//! their speed sesscache reaches).
//!
//! `cargo run --release -p sesscache-bench --bin bench_ratios [-- TARGET_DIR]`
//!
//! Two-thread cases swing between runs on this machine (docs/PERFORMANCE.md), so one run is
//! weak evidence. Save several runs under names of their own and read them together:
//!
//! ```text
//! for run in run1 run2 run3; do cargo bench -p sesscache-bench --bench cache -- --save-baseline $run; done
//! cargo run --release -p sesscache-bench --bin bench_ratios -- --runs run1,run2,run3
//! ```
//!
//! Each ratio is then taken within one run, and the table shows the median of those ratios
//! with the lowest and highest, beside the median of the times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sesscache_bench::spread;

const GROUPS: [&str; 7] = [
    "lookup_hit",
    "add_full",
    "mixed",
    "take",
    "flush",
    "resumption",
    "openssl_resumption",
];
const CONTENDERS: [&str; 9] = [
    "sesscache",
    "openssl",
    "rustls",
    "moka",
    "dashmap",
    "ceiling",
    "ceiling_pin",
    "ceiling_pin_cmp",
    "unshared",
];
/// Contenders that are limits rather than rivals: the ratio is the fraction of their speed.
const LIMITS: [&str; 4] = ["ceiling", "ceiling_pin", "ceiling_pin_cmp", "unshared"];

/// Prints, for each run, the `line_transfer` readings `benches/cache.rs` takes before each
/// group with two-thread cases: what one cache line's transfer between the cores cost then.
fn print_line_transfers(root: &Path, runs: &[String]) {
    let dir = root.join("line_transfer").join("pingpong");
    let readings: Vec<(&str, Vec<Option<f64>>)> = GROUPS
        .iter()
        .map(|group| {
            let times = runs.iter().map(|run| median(&dir.join(group), run));
            (*group, times.collect::<Vec<_>>())
        })
        .filter(|(_, times)| times.iter().any(Option::is_some))
        .collect();
    if readings.is_empty() {
        return;
    }
    println!("line_transfer (ns per transfer of one cache line between the cores, just before the group;");
    println!("two-thread cases are comparable only between runs that read alike)");
    for (group, times) in readings {
        let mut line = format!("  before {group:<10}");
        for (run, time) in runs.iter().zip(times) {
            line += &match time {
                Some(t) => format!(" | {run} {t:.1}"),
                None => format!(" | {run} -"),
            };
        }
        println!("{line}");
    }
    println!();
}

/// The median time per iteration, in nanoseconds, of one benchmark in one saved run.
fn median(dir: &Path, run: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(run).join("estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

struct Args {
    target: PathBuf,
    /// Criterion's names of the runs to read: `new` (the last run) unless `--runs` names
    /// baselines saved with `--save-baseline`.
    runs: Vec<String>,
}

fn usage(problem: &str) -> ! {
    eprintln!("bench_ratios: {problem}");
    eprintln!("usage: bench_ratios [--runs NAME,NAME,...] [TARGET_DIR]");
    std::process::exit(2)
}

fn args() -> Args {
    let mut runs = vec!["new".to_owned()];
    let mut target = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            let list = args.next().unwrap_or_else(|| usage("--runs needs a list"));
            runs = list.split(',').map(str::to_owned).collect();
            if runs.iter().any(String::is_empty) {
                usage("--runs: an empty run name");
            }
        } else if arg.starts_with('-') || target.is_some() {
            usage(&format!("unexpected argument {arg:?}"));
        } else {
            target = Some(PathBuf::from(arg));
        }
    }
    Args {
        target: target.unwrap_or_else(|| PathBuf::from("target")),
        runs,
    }
}

/// One contender's figures in one case, from its time in each run (`None` where that run
/// lacks it): its times, and sesscache's ratio to it in each run that has both (a ratio is
/// only ever taken within a run, never across runs).
fn figures(times: &[Option<f64>], ours: &[Option<f64>]) -> (Vec<f64>, Vec<f64>) {
    let ratios = times
        .iter()
        .zip(ours)
        .filter_map(|(t, o)| Some((*t)? / (*o)?))
        .collect();
    (times.iter().flatten().copied().collect(), ratios)
}

fn main() {
    let Args { target, runs } = args();
    let root = target.join("criterion");
    if !root.is_dir() {
        usage(&format!(
            "no {} (run `cargo bench -p sesscache-bench --bench cache` first)",
            root.display()
        ));
    }
    let several = runs.len() > 1;
    println!("median time per operation (ns) and sesscache's speed-up over each contender");
    println!(
        "(x > 1: sesscache is faster; for {}, the fraction of their speed)",
        LIMITS.join(", ")
    );
    if several {
        println!(
            "over runs {}: each ratio is taken within one run; shown is the median of those \
             ratios [lowest-highest], beside the median time",
            runs.join(", ")
        );
    }
    println!();
    print_line_transfers(&root, &runs);
    let mut missing = 0;
    for group in GROUPS {
        // case -> contender -> run -> time
        let mut cases: BTreeMap<String, BTreeMap<&str, Vec<Option<f64>>>> = BTreeMap::new();
        for contender in CONTENDERS {
            let Ok(entries) = std::fs::read_dir(root.join(group).join(contender)) else {
                continue;
            };
            for entry in entries.flatten() {
                let case = entry.file_name().to_string_lossy().into_owned();
                let times: Vec<Option<f64>> =
                    runs.iter().map(|run| median(&entry.path(), run)).collect();
                if times.iter().any(Option::is_some) {
                    missing += times.iter().filter(|t| t.is_none()).count();
                    cases.entry(case).or_default().insert(contender, times);
                }
            }
        }
        if cases.is_empty() {
            continue;
        }
        println!("{group}");
        for (case, by_contender) in &cases {
            let Some(ours) = by_contender.get("sesscache") else {
                continue;
            };
            let own: Vec<f64> = ours.iter().flatten().copied().collect();
            let mut line = format!("  {case:<12} sesscache {:>10.1}", spread(&own).0);
            for contender in &CONTENDERS[1..] {
                let Some(times) = by_contender.get(contender) else {
                    continue;
                };
                let (times, ratios) = figures(times, ours);
                if ratios.is_empty() {
                    continue;
                }
                let (ratio, lo, hi) = spread(&ratios);
                let range = if several {
                    format!(" [{lo:.2}-{hi:.2}]")
                } else {
                    String::new()
                };
                let t = spread(&times).0;
                line += &if LIMITS.contains(contender) {
                    format!(" | {contender} {t:>10.1} ({ratio:.2}{range} of {contender})")
                } else {
                    format!(" | {contender} {t:>10.1} ({ratio:.2}{range} x)")
                };
            }
            println!("{line}");
        }
        println!();
    }
    if missing > 0 {
        eprintln!("bench_ratios: {missing} benchmark results missing from some of the runs");
    }
}
