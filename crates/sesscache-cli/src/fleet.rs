//! The fleet tier's options, shared by `serve` and `simulate`, and its report.

use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use sesscache_redis::{KeyRing, Tier, TierConfig, TierStats};
use zeroize::Zeroizing;

use crate::report::{label, Figures};

/// The environment variable that holds the store's password when no file does.
const PASSWORD_ENV: &str = "SESSCACHE_REDIS_PASSWORD";

/// Where the fleet's shared store is and how to open what is in it.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// A Redis or Valkey server shared by the fleet (`redis://host:port`, or
    /// `redis://user@host:port` with a username); give it several times for the nodes of a
    /// Redis Cluster. Give the password with --redis-password-file or
    /// SESSCACHE_REDIS_PASSWORD, not in the URL.
    #[arg(long = "redis", value_name = "URL")]
    urls: Vec<String>,
    /// The store's password: the first line of FILE. Without it, the environment variable
    /// SESSCACHE_REDIS_PASSWORD, if set. Not in the URL: every local user sees a command
    /// line (`ps`, /proc). Refused if its group or others may read it (chmod 600).
    #[arg(long = "redis-password-file", value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The key file (`sesscache keygen`): one key per line, newest first. Required with
    /// --redis: values in the store are sealed with these keys. Refused if its group or
    /// others may read it (chmod 600).
    #[arg(long = "redis-keys", value_name = "FILE")]
    keys: Option<PathBuf>,
    /// The most a handshake waits for the store, in milliseconds. A handshake asks the store
    /// once at most (its first offer). Set it above the store's round trip: a slower store
    /// times out every lookup, and after 5 timeouts in a row its breaker skips it (the
    /// `round_trip_us` metric and a warning say so).
    #[arg(long = "redis-budget-ms", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    budget_ms: u64,
}

impl StoreArgs {
    /// The tier these options ask for, if any.
    pub(crate) fn tier(&self) -> Result<Option<Tier>> {
        if self.password_file.is_some() && self.urls.is_empty() {
            bail!("--redis-password-file needs --redis URL");
        }
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
        config.password = self.password()?;
        let tier = Tier::new(config).context("cannot set up the fleet tier")?;
        Ok(Some(tier))
    }

    /// The store's password: from --redis-password-file, else from the environment.
    fn password(&self) -> Result<Option<Zeroizing<String>>> {
        let Some(path) = &self.password_file else {
            return match std::env::var(PASSWORD_ENV) {
                Ok(password) if !password.is_empty() => Ok(Some(Zeroizing::new(password))),
                Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSWORD_ENV} is not UTF-8"),
            };
        };
        let unreadable = || format!("cannot read the password file {}", path.display());
        // One open: the mode checked is that of the file read.
        let mut file = std::fs::File::open(path).with_context(unreadable)?;
        let mode = file.metadata().with_context(unreadable)?.mode();
        if mode & 0o077 != 0 {
            bail!(
                "the password file {} is readable by others (mode {:03o}): run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).with_context(unreadable)?;
        let first = text.lines().next().unwrap_or_default();
        if first.is_empty() {
            bail!(
                "the password file {} is empty (its first line is the password)",
                path.display()
            );
        }
        Ok(Some(Zeroizing::new(first.to_owned())))
    }
}

/// The tier's counters as report lines: those its description reports, in its order.
pub(crate) fn report(stats: &TierStats) -> String {
    let mut out = String::new();
    let figures = Figures::of(stats);
    for key in figures.reported() {
        let (name, value) = match key {
            "breaker" => (
                label::<TierStats>(key),
                format!(
                    "{:?} (opened {}, {} nodes open)",
                    stats.breaker, stats.breaker_opens, stats.nodes_open
                )
                .to_lowercase(),
            ),
            "round_trip_us" => (
                label::<TierStats>(key),
                format!("{:.2} ms", stats.round_trip_us as f64 / 1e3),
            ),
            _ => {
                let (name, n) = figures.row(key);
                (name, n.to_string())
            }
        };
        let _ = writeln!(out, "    {name:<22} {value:>10}");
    }
    out
}
