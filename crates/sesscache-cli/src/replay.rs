//! `simulate --replay`: a recorded trace (`sesscache-workload`'s) replayed at each cache size
//! asked for, and the hits each size finds, as a table or JSON.

use std::path::Path;

use sesscache_workload::{replay, trace};
use session_cache::Resumption;

use crate::report::Figures;
use crate::simulate::{plot_sizes, plotted, print_sizes, Args, SizeRow};

pub(crate) fn run(args: &Args, path: &Path) -> anyhow::Result<()> {
    let lines = trace::read(path)?;
    let recorded = lines
        .iter()
        .filter(|l| l.outcome == Resumption::Resumed)
        .count() as u64;
    let sizes = args
        .cache_sizes
        .clone()
        .unwrap_or_else(|| vec![args.cache_size]);
    let mut rows = Vec::new();
    let mut timeline = Vec::new();
    for &size in &sizes {
        let replayed = replay::run(
            &lines,
            replay::Settings {
                size,
                timeout: args.timeout.unwrap_or(session_cache::DEFAULT_TIMEOUT),
                flush_interval: args.flush_interval,
            },
        )?;
        let r = replayed.resumptions;
        rows.push(SizeRow {
            cache_size: size,
            offers: r.offered(),
            hits: r.resumed,
            hit_ratio: replayed.hit_ratio(),
            evictions: replayed.stats.cache_full,
            resumptions: r,
        });
        timeline = replayed.timeline;
    }
    if !args.json {
        println!(
            "  replayed {} handshakes from {}",
            lines.len(),
            path.display()
        );
    }
    print_sizes(args, &rows, Some(recorded))?;
    if !args.json {
        if let [row] = &rows[..] {
            println!("  why offers did not resume");
            let resumptions = Figures::of(&row.resumptions);
            for outcome in Resumption::MISSED {
                let (label, count) = resumptions.row(outcome.name());
                println!("    {label:<22} {count:>10}");
            }
        }
    }
    match (&args.plot, &rows[..]) {
        (Some(path), [row]) => {
            let title = format!("hit ratio over time, cache size {}", row.cache_size);
            let points = crate::plot::draw(path, &title, crate::plot::Chart::OverTime(&timeline))?;
            plotted(args, path, points);
            Ok(())
        }
        _ => plot_sizes(args, &rows),
    }
}
