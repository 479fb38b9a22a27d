//! `examples/axum_server.rs` run as its users run it, against the real `openssl s_client` on
//! loopback: TLS 1.2 sessions resume with `-reconnect` and `/metrics` counts them; with the
//! fleet tier (a `redis-server` of the test's own), two servers share a TLS 1.3 ticket that
//! resumes once. Every process started here is killed when its guard drops.

#![cfg(all(feature = "rustls", feature = "redis", feature = "metrics"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sesscache::redis::KeyRing;
use test_support::redis_server::RedisServer;

/// How long one `s_client` may take before the test fails.
const S_CLIENT_LIMIT: Duration = Duration::from_secs(30);

/// The example's binary, which `cargo test` builds along with the tests. When only this test
/// is selected (`--test examples`), cargo builds no example: one built before is used as it
/// is, and without one it is built now, with this test's features.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/examples-<hash> -> <target>/<profile>/examples/axum_server
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile.join("examples").join("axum_server");
    if binary.exists() {
        return binary;
    }
    let mut features = vec!["rustls", "redis", "metrics"];
    if cfg!(feature = "openssl") {
        features.push("openssl");
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--example", "axum_server", "--features"])
        .arg(features.join(","))
        .arg("--target-dir")
        .arg(profile.parent().unwrap())
        .args((!cfg!(debug_assertions)).then_some("--release"));
    // What cargo sets for a test's run: build scripts that watch them (ring's) would run
    // again, and everything above them would be rebuilt.
    for (name, _) in std::env::vars_os() {
        let set_for_tests = name.to_str().is_some_and(|name| {
            [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
                || ["CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"].contains(&name)
        });
        if set_for_tests {
            cargo.env_remove(name);
        }
    }
    assert!(
        cargo.status().unwrap().success(),
        "building the example failed"
    );
    binary
}

/// A running `axum_server` on a free loopback port.
struct Example {
    child: Child,
    addr: String,
}

impl Example {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary())
            .env("SESSCACHE_LISTEN", "127.0.0.1:0")
            .env_remove("SESSCACHE_REDIS")
            .env_remove("SESSCACHE_REDIS_KEYS")
            .env_remove("SESSCACHE_CERT")
            .env_remove("SESSCACHE_KEY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on https://")
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_owned();
        Self { child, addr }
    }

    /// `GET path` over a connection of its own, `s_client`'s `extra` arguments added; the
    /// whole response.
    fn get(&self, path: &str, extra: &[&str]) -> String {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let mut args = vec!["-connect", &self.addr, "-quiet"];
        args.extend_from_slice(extra);
        s_client(&args, request.as_bytes())
    }

    /// The value of the sample that `line_start` begins (a metric's name and labels).
    #[track_caller]
    fn metric(&self, line_start: &str) -> f64 {
        let text = self.get("/metrics", &[]);
        let found = text
            .lines()
            .find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' '));
        found
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl s_client` with `input` on its standard input; its standard output.
fn s_client(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the `openssl` command must be installed (.ci/run installs it)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > S_CLIENT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("s_client did not finish within {S_CLIENT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap()
}

#[test]
fn axum_server_resumes_tls12_sessions_and_counts_them() {
    let server = Example::start(&[]);
    let out = s_client(&["-connect", &server.addr, "-tls1_2", "-reconnect"], b"");
    assert_eq!(out.matches("New, TLSv1.2").count(), 1, "{out}");
    assert_eq!(out.matches("Reused, TLSv1.2").count(), 5, "{out}");

    let resumed = server.metric(r#"sesscache_resumptions_total{outcome="resumed"}"#);
    assert_eq!(resumed, 5.0);
    // The six handshakes above and the two scrapes' own.
    assert_eq!(server.metric("sesscache_accept_good_total"), 8.0);
    // The cache times its operations: each resumption's lookup is in the histogram.
    let lookups = r#"sesscache_operation_duration_seconds_count{op="lookup"}"#;
    assert_eq!(server.metric(lookups), 5.0);
}

#[test]
fn axum_servers_share_a_tls13_ticket_through_the_fleet_tier_once() {
    let redis = RedisServer::start();
    let mut keys = tempfile::NamedTempFile::new().unwrap(); // owner-only, as the tier wants
    keys.write_all(KeyRing::generate_line().unwrap().as_bytes())
        .unwrap();
    let url = redis.url();
    let env = [
        ("SESSCACHE_REDIS", url.as_str()),
        ("SESSCACHE_REDIS_KEYS", keys.path().to_str().unwrap()),
    ];
    let (a, b) = (Example::start(&env), Example::start(&env));
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("session.pem");
    let session = session.to_str().unwrap();

    let first = a.get("/", &["-sess_out", session]);
    assert!(first.ends_with("not_offered\n"), "{first}");
    // The ticket reaches the store in the background.
    let started = Instant::now();
    while redis.command(&["DBSIZE"]).as_deref() == Some(":0\r\n") {
        assert!(started.elapsed() < Duration::from_secs(5), "no write");
        std::thread::sleep(Duration::from_millis(10));
    }
    let on_b = b.get("/", &["-sess_in", session]);
    assert!(on_b.ends_with("resumed\n"), "{on_b}");
    assert_eq!(b.metric("sesscache_tier_remote_hits_total"), 1.0);
    // Used once in the fleet: the server that issued it refuses it now.
    let again = a.get("/", &["-sess_in", session]);
    assert!(again.ends_with("already_used\n"), "{again}");
    assert_eq!(a.metric("sesscache_tier_already_used_total"), 1.0);
}
