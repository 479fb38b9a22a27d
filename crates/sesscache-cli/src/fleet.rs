//! The fleet tier's options, shared by `serve` and `simulate`, and its report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use sesscache_redis::{KeyRing, Tier, TierConfig, TierStats};

/// Where the fleet's shared store is and how to open what is in it.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// A Redis or Valkey server shared by the fleet (`redis://host:port`); give it several
    /// times for the nodes of a Redis Cluster.
    #[arg(long = "redis", value_name = "URL")]
    urls: Vec<String>,
    /// The key file (`sesscache keygen`): one key per line, newest first. Required with
    /// --redis: values in the store are sealed with these keys.
    #[arg(long = "redis-keys", value_name = "FILE")]
    keys: Option<PathBuf>,
    /// The most a handshake waits for the store, in milliseconds.
    #[arg(long = "redis-budget-ms", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    budget_ms: u64,
}

impl StoreArgs {
    /// The tier these options ask for, if any.
    pub(crate) fn tier(&self) -> Result<Option<Tier>> {
        let keys = match (&self.keys, self.urls.is_empty()) {
            (None, true) => return Ok(None),
            (Some(_), true) => bail!("--redis-keys needs --redis URL"),
            (None, false) => bail!(
                "--redis needs --redis-keys FILE: values in the store are sealed with those keys (make one with `sesscache keygen -o FILE`)"
            ),
            (Some(path), false) => KeyRing::load(path)?,
        };
        let mut config = TierConfig::new(self.urls.clone(), keys);
        config.budget = Duration::from_millis(self.budget_ms);
        let tier = Tier::new(config).context("cannot set up the fleet tier")?;
        Ok(Some(tier))
    }
}

/// The tier's counters as report lines.
pub(crate) fn report(stats: &TierStats) -> String {
    let mut out = String::new();
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "    {name:<22} {value:>10}");
    };
    row("remote hits", stats.remote_hits.to_string());
    row("remote misses", stats.remote_misses.to_string());
    row("tickets already used", stats.already_used.to_string());
    row("values not opened", stats.open_failures.to_string());
    row("errors", stats.errors.to_string());
    row("timeouts", stats.timeouts.to_string());
    row("skipped (breaker)", stats.skipped.to_string());
    row(
        "breaker",
        format!("{:?} (opened {})", stats.breaker, stats.breaker_opens).to_lowercase(),
    );
    row("writes", stats.writes.to_string());
    row("dropped writes", stats.dropped_writes.to_string());
    row("write errors", stats.write_errors.to_string());
    row("deletes", stats.deletes.to_string());
    out
}
