//! `simulate --plot`: the hit ratio as an SVG chart, drawn with plotters. Each point is one
//! `<circle>`, joined by a line: against the cache size (one point per size), or, for a
//! single run, against time (one point per time window in which a session was offered, as
//! the run's or the replay's report gives them).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// What the chart shows.
pub(crate) enum Chart<'a> {
    /// (cache size, hit ratio) per run.
    BySize(&'a [(usize, f64)]),
    /// (seconds since the start, hit ratio within the window) for one run.
    OverTime(&'a [(f64, f64)]),
}

/// Draws `chart` to `path`; returns how many points it drew.
pub(crate) fn draw(path: &Path, title: &str, chart: Chart<'_>) -> Result<usize> {
    let (points, x_label): (Vec<(f64, f64)>, &str) = match chart {
        Chart::BySize(runs) => (
            runs.iter().map(|&(size, r)| (size as f64, r)).collect(),
            "cache size (sessions)",
        ),
        Chart::OverTime(windows) => (windows.to_vec(), "time (s)"),
    };
    if points.is_empty() {
        return Err(anyhow!("nothing to plot: no session was offered"));
    }
    let fail = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, _)| {
            (lo.min(x), hi.max(x))
        });
    // Some room either side, so that the first and last points are not on the frame.
    let pad = ((hi - lo) * 0.05).max(0.5);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56);
    let series = |points: &[(f64, f64)]| -> Vec<Circle<(f64, f64), u32>> {
        points
            .iter()
            .map(|&p| Circle::new(p, 4, BLUE.filled()))
            .collect()
    };
    let line = LineSeries::new(points.iter().copied(), BLUE.stroke_width(2));
    let by_size = matches!(chart, Chart::BySize(_));
    if by_size && lo > 0.0 && hi / lo >= 10.0 {
        // Sizes that span orders of magnitude: a log axis spaces them evenly.
        let mut ctx = builder
            .build_cartesian_2d((lo / 1.3..hi * 1.3).log_scale(), 0f64..1.0)
            .map_err(|e| fail(&e))?;
        ctx.configure_mesh()
            .x_desc(x_label)
            .y_desc("hit ratio (hits / offers)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| fail(&e))?;
        ctx.draw_series(line).map_err(|e| fail(&e))?;
        ctx.draw_series(series(&points)).map_err(|e| fail(&e))?;
    } else {
        let mut ctx = builder
            .build_cartesian_2d((lo - pad)..(hi + pad), 0f64..1.0)
            .map_err(|e| fail(&e))?;
        ctx.configure_mesh()
            .x_desc(x_label)
            .y_desc("hit ratio (hits / offers)")
            .draw()
            .map_err(|e| fail(&e))?;
        ctx.draw_series(line).map_err(|e| fail(&e))?;
        ctx.draw_series(series(&points)).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(points.len())
}
