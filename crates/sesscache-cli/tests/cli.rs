//! Runs the `sesscache` binary with small arguments and checks that its report adds up, and
//! that bad arguments get a clear message and exit code 2.

use std::process::{Command, Output};

use serde_json::Value;

fn sesscache(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sesscache"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn simulate_json(extra: &[&str]) -> Value {
    let mut args = vec!["simulate", "--json", "--threads", "2"];
    args.extend_from_slice(extra);
    let out = sesscache(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

fn n(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
}

#[track_caller]
fn check_consistent(r: &Value, connections: u64, limit: u64) {
    assert_eq!(n(r, "connections"), connections, "{r}");
    assert_eq!(
        n(r, "full_handshakes") + n(r, "resumed_handshakes"),
        connections,
        "{r}"
    );
    assert_eq!(
        n(r, "hits"),
        n(r, "resumed_handshakes"),
        "a resumption is a hit: {r}"
    );
    assert_eq!(
        n(r, "hits") + n(r, "misses") + n(r, "timeouts"),
        n(r, "offers"),
        "{r}"
    );
    assert!(
        n(r, "peak_cache_size") <= limit && n(r, "final_cache_size") <= limit,
        "{r}"
    );
    let ratio = r["hit_ratio"].as_f64().unwrap();
    assert!((ratio - n(r, "hits") as f64 / n(r, "offers").max(1) as f64).abs() < 1e-9);
    let lat = &r["latency_us"];
    assert!(lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap());
    assert!(lat["p99"].as_f64().unwrap() <= lat["max"].as_f64().unwrap());
}

#[test]
fn a_small_tls13_run_adds_up() {
    let r = simulate_json(&[
        "--connections",
        "20000",
        "--clients",
        "500",
        "--cache-size",
        "200",
    ]);
    check_consistent(&r, 20_000, 200);
    assert!(n(&r, "hits") > 0 && n(&r, "evictions") > 0, "{r}");
}

#[test]
fn a_uniform_tls12_run_with_expiry_adds_up() {
    let r = simulate_json(&[
        "--connections",
        "20000",
        "--clients",
        "300",
        "--tls",
        "1.2",
        "--distribution",
        "uniform",
        "--timeout",
        "1",
        "--time-scale",
        "100000",
        "--mode",
        "server,no-auto-clear",
        "--unclean-ratio",
        "0.1",
    ]);
    check_consistent(&r, 20_000, 20_480);
    assert!(n(&r, "unclean_drops") > 0, "{r}");
}

#[test]
fn the_table_names_every_figure() {
    let out = sesscache(&["simulate", "--connections", "2000", "--clients", "50"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for label in [
        "connections",
        "resumed handshakes",
        "hit ratio",
        "timeouts",
        "evictions",
        "peak cache size",
        "throughput",
        "p99",
    ] {
        assert!(text.contains(label), "{label} missing from:\n{text}");
    }
}

#[test]
fn bad_arguments_exit_with_2_and_say_why() {
    for (args, says) in [
        (
            &["simulate", "--resumption-ratio", "1.5"][..],
            "between 0 and 1",
        ),
        (&["simulate", "--threads", "0"], "--threads"),
        (&["simulate", "--mode", "server,bogus"], "bogus"),
        (&["simulate", "--tls", "1.1"], "1.1"),
        (&["simulate", "--duration=-3"], "positive"),
        (&["simulate", "--clients", "0"], "--clients"),
        // Out of range: refused, never a panic or a silent wrap.
        (&["simulate", "--duration", "1e300"], "most"),
        (&["simulate", "--duration", "NaN"], "positive"),
        (&["simulate", "--duration", "inf"], "positive"),
        (&["simulate", "--time-scale", "1e300"], "most"),
        (&["simulate", "--time-scale", "0"], "positive"),
        (
            &["simulate", "--flush-interval", "18446744073709551615"],
            "--flush-interval",
        ),
        (&["simulate", "--flush-interval=-1"], "--flush-interval"),
        (&["simulate", "--zipf-exponent", "inf"], "positive"),
        (
            &["simulate", "--timeout", "18446744073709551616"],
            "--timeout",
        ),
        (&["simulate", "--cache-size=-1"], "--cache-size"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let out = sesscache(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
