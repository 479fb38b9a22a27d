//! Operating `sesscache serve`: its metrics endpoint (scraped and parsed by a Prometheus text
//! parser), why handshakes did not resume, and sizing the cache from a recorded trace with
//! `simulate --replay`, `--cache-sizes` and `--plot`. Clients are `openssl s_client`.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{http, metric, request, scrape, stat, Server, Trickler, BACKENDS};

fn sesscache(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sesscache"))
        .args(args)
        .output()
        .unwrap()
}

/// Sessions saved from one server and offered to another are unknown there.
fn foreign_sessions(backend: &str, dir: &Path) -> (String, String) {
    let other = Server::start(backend, &[]);
    let (v12, v13) = (dir.join("foreign12"), dir.join("foreign13"));
    let (v12, v13) = (v12.to_str().unwrap(), v13.to_str().unwrap());
    request(&other, "-tls1_2", "-sess_out", v12);
    request(&other, "-tls1_3", "-sess_out", v13);
    (v12.to_owned(), v13.to_owned())
}

#[test]
fn the_metrics_endpoint_agrees_with_the_statistics_and_reasons_add_up() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let (foreign12, foreign13) = foreign_sessions(backend, dir.path());
        let mut server = Server::start(backend, &["--metrics", "127.0.0.1:0"]);
        let addr = server.metrics_addr();
        let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

        let mut offers = 0;
        for version in ["-tls1_2", "-tls1_3"] {
            let saved = file(&format!("s{version}"));
            assert!(!request(&server, version, "-sess_out", &saved));
            assert!(request(&server, version, "-sess_in", &saved), "{backend}");
            offers += 1;
        }
        // Offered and unknown here, in both versions.
        assert!(!request(&server, "-tls1_2", "-sess_in", &foreign12));
        assert!(!request(&server, "-tls1_3", "-sess_in", &foreign13));
        offers += 2;
        // A TLS 1.3 ticket used again: the cache gave it up, so it is unknown now.
        let used = file("s-tls1_3");
        assert!(!request(&server, "-tls1_3", "-sess_in", &used));
        offers += 1;

        let metrics = scrape(&addr);
        let report = server.interrupt();

        let outcome = |o: &str| metric(&metrics, "sesscache_resumptions_total", &[("outcome", o)]);
        assert_eq!(outcome("resumed"), 2, "{backend}");
        assert_eq!(outcome("not_offered"), 2, "{backend}");
        assert_eq!(outcome("unknown_id"), 3, "{backend}");
        let reasons = [
            "unknown_id",
            "expired",
            "other_context",
            "already_used",
            "refused_by_stack",
            "store_unavailable",
        ];
        let missed: u64 = reasons.iter().map(|r| outcome(r)).sum();
        assert_eq!(outcome("resumed") + missed, offers, "{backend}: the offers");
        assert_eq!(
            outcome("resumed") + missed + outcome("not_offered"),
            metric(&metrics, "sesscache_accept_good_total", &[]),
            "{backend}: one outcome per handshake"
        );
        // The scrape equals what the server prints when it stops (nothing ran between).
        for (name, label) in [
            ("sesscache_hits_total", "hits"),
            ("sesscache_misses_total", "misses"),
            ("sesscache_timeouts_total", "timeouts"),
            ("sesscache_sessions", "sessions cached"),
            ("sesscache_serve_connections_total", "connections"),
        ] {
            assert_eq!(
                metric(&metrics, name, &[]),
                stat(&report, label),
                "{backend}: {name}"
            );
        }
        assert_eq!(stat(&report, "resumed"), 2);
        assert_eq!(stat(&report, "unknown_id"), 3);
        assert_eq!(metric(&metrics, "sesscache_size_limit", &[]), 20_480);
        assert!(
            metric(
                &metrics,
                "sesscache_operation_duration_seconds_count",
                &[("op", "lookup")]
            ) >= offers,
            "{backend}: every lookup timed"
        );
    }
}

#[test]
fn the_metrics_endpoint_answers_only_what_it_serves() {
    let mut server = Server::start("rustls", &["--metrics", "0"]);
    let addr = server.metrics_addr();
    assert!(addr.starts_with("127.0.0.1:"), "a bare port is on loopback");
    let (status, _) = http(&addr, "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(&addr, "POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, _) = http(&addr, "hello\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let (status, body) = http(&addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));
    assert_eq!(metric(&scrape(&addr), "sesscache_accept_total", &[]), 0);
    server.interrupt();

    let bad = sesscache(&["serve", "--metrics", "nowhere"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an address"));
}

/// What a scraper that never finishes its request sends first.
const STALLED_HEAD: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";

/// A scrape of `addr` that must be answered (200) within `limit`; how long it took.
#[track_caller]
fn scrape_within(addr: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    if let Err(e) = stream.read_to_string(&mut answer) {
        panic!(
            "no answer within {limit:?} ({e}) after {:?}: {answer:?}",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(took < limit, "answered after {took:?}");
    took
}

#[test]
fn a_trickling_scraper_holds_up_no_other_scrape() {
    let mut server = Server::start("rustls", &["--metrics", "0"]);
    let addr = server.metrics_addr();
    let stalled = Trickler::start(&addr, STALLED_HEAD, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    // Several at once, while the stalled one trickles.
    let scrapers: Vec<_> = (0..3)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || scrape_within(&addr, Duration::from_secs(2)))
        })
        .collect();
    for scraper in scrapers {
        scraper.join().unwrap();
    }
    assert_eq!(
        stalled.closed_after(),
        None,
        "the stalled scraper is not dropped before its deadline"
    );
    server.interrupt();
}

#[test]
fn a_stalled_scraper_is_closed_at_its_deadline() {
    let mut server = Server::start("rustls", &["--metrics", "0"]);
    let addr = server.metrics_addr();
    let stalled = Trickler::start(&addr, STALLED_HEAD, Duration::from_secs(12));
    let closed = stalled
        .closed_after()
        .expect("the server closes a scrape that trickles past its deadline");
    assert!(
        (Duration::from_millis(4500)..Duration::from_secs(8)).contains(&closed),
        "closed after {closed:?}, not about 5 s"
    );
    scrape_within(&addr, Duration::from_secs(2));
    server.interrupt();
}

#[test]
fn ctrl_c_does_not_wait_for_a_stalled_scraper() {
    let mut server = Server::start("rustls", &["--metrics", "0"]);
    let addr = server.metrics_addr();
    let stalled = Trickler::start(&addr, STALLED_HEAD, Duration::from_secs(12));
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(3),
            "serve still running 3 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        stalled.closed_after().is_some(),
        "the stalled scraper's connection went with the server"
    );
}

/// `sesscache simulate` with `args` and `--json`, which must succeed; its runs, one per size.
fn runs(args: &[&str]) -> Vec<serde_json::Value> {
    let out = sesscache(&[&["simulate", "--json"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["runs"].as_array().expect("runs").clone()
}

/// The hits `simulate --replay` finds at each size.
fn replay_hits(trace: &Path, sizes: &str) -> Vec<(u64, u64)> {
    runs(&["--replay", trace.to_str().unwrap(), "--cache-sizes", sizes])
        .iter()
        .map(|r| {
            (
                r["cache_size"].as_u64().unwrap(),
                r["hits"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_recorded_trace_replays_to_the_same_hits_at_the_same_size() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let server = Server::start(
            backend,
            &["--cache-size", "4", "--trace", trace.to_str().unwrap()],
        );
        let file = |name: String| dir.path().join(name).to_str().unwrap().to_owned();
        // Five TLS 1.2 sessions in a cache of four: the first is evicted.
        for i in 0..5 {
            request(&server, "-tls1_2", "-sess_out", &file(format!("a{i}")));
        }
        // Newest first: the four cached resume (a TLS 1.2 resumption issues nothing new),
        // the evicted one does not.
        for i in (0..5).rev() {
            request(&server, "-tls1_2", "-sess_in", &file(format!("a{i}")));
        }
        // TLS 1.3: tickets (several per handshake) push the TLS 1.2 sessions out.
        request(&server, "-tls1_3", "-sess_out", &file("t".into()));
        for _ in 0..3 {
            let (from, to) = (file("t".into()), file("t".into()));
            request(&server, "-tls1_3", "-sess_in", &from);
            request(&server, "-tls1_3", "-sess_out", &to);
        }
        for i in 0..5 {
            request(&server, "-tls1_2", "-sess_in", &file(format!("a{i}")));
        }
        let report = server.interrupt();
        let recorded = stat(&report, "resumed");
        assert!(recorded >= 4, "{backend}: {report}");

        let text = std::fs::read_to_string(&trace).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len() as u64, stat(&report, "connections"));
        assert_eq!(
            lines.iter().filter(|l| l.ends_with(" resumed")).count() as u64,
            recorded
        );
        // Anonymous: no session id or address in it.
        assert!(!text.contains("127.0.0.1"));
        for i in 0..5 {
            let saved = std::fs::read_to_string(file(format!("a{i}"))).unwrap();
            let out = Command::new("openssl")
                .args(["sess_id", "-noout", "-text"])
                .stdin(std::fs::File::open(file(format!("a{i}"))).unwrap())
                .output()
                .unwrap();
            let text_out = String::from_utf8_lossy(&out.stdout).to_string();
            let id = text_out
                .lines()
                .find_map(|l| l.trim().strip_prefix("Session-ID: "))
                .unwrap_or_else(|| panic!("no id in {saved}"))
                .to_ascii_lowercase();
            assert!(!id.is_empty() && !text.to_ascii_lowercase().contains(&id));
        }

        let runs = replay_hits(&trace, "4,1k,2");
        assert_eq!(
            runs[0],
            (4, recorded),
            "{backend}: the same size, the same hits"
        );
        assert!(
            runs[1].1 >= recorded,
            "{backend}: a larger cache hits as often"
        );
        assert!(runs[2].1 < recorded, "{backend}: a smaller one less");
    }
}

#[test]
fn the_plot_has_a_point_per_cache_size() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sizes.svg");
    let ratios: Vec<f64> = runs(&[
        "--cache-sizes",
        "100,1k,5k",
        "--connections",
        "20000",
        "--clients",
        "5000",
        "--tls",
        "1.2",
        "--plot",
        svg.to_str().unwrap(),
    ])
    .iter()
    .map(|r| r["hit_ratio"].as_f64().unwrap())
    .collect();
    assert_eq!(ratios.len(), 3);
    assert!(
        ratios.windows(2).all(|w| w[0] < w[1]),
        "more room, more hits: {ratios:?}"
    );
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.trim_end().ends_with("</svg>"));
    assert_eq!(drawn.matches("<circle").count(), 3);

    // One run: the hit ratio over time, a point per window it printed.
    let over_time = dir.path().join("time.svg");
    let out = sesscache(&[
        "simulate",
        "--connections",
        "20000",
        "--rate",
        "100",
        "--threads",
        "1",
        "--plot",
        over_time.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let points: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("plot: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!((40..=50).contains(&points), "{points}");
    let drawn = std::fs::read_to_string(&over_time).unwrap();
    assert_eq!(drawn.matches("<circle").count(), points);
}

#[test]
fn bad_trace_files_name_the_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let good = "1700000000000 0123456789abcdef tls1.2 fresh 1 not_offered";
    let cases = [
        (
            write("header", &format!("{good}\n")),
            "line 1: not a sesscache trace",
        ),
        (
            write(
                "line3",
                &format!(
                    "# sesscache trace v1\n{good}\n1700000000001 0123 tls1.2 fresh 1 not_offered\n"
                ),
            ),
            "line 3: client `0123`",
        ),
        (
            write(
                "outcome",
                &format!(
                    "# sesscache trace v1\n{good}\n\n1 0123456789abcdef tls1.2 offered 0 lucky\n"
                ),
            ),
            "line 4: outcome `lucky`",
        ),
        (write("empty", "# sesscache trace v1\n"), "no handshakes"),
        (
            dir.path().join("missing").to_str().unwrap().to_owned(),
            "cannot open the trace",
        ),
    ];
    for (path, expected) in cases {
        let out = sesscache(&["simulate", "--replay", &path]);
        assert_eq!(out.status.code(), Some(2), "{path}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{path}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let out = sesscache(&["simulate", "--cache-sizes", "1k,lots"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sesscache(&["simulate", "--replay", &write("x", good), "--servers", "2"]);
    assert_eq!(out.status.code(), Some(2), "a replay has its own clients");
}

/// `sesscache` with `args`, which must exit within `limit`; what it printed.
#[track_caller]
fn sesscache_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sesscache"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "sesscache {args:?} still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_trace_is_owner_only_and_never_written_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();

    let made = dir.path().join("made.trace");
    let server = Server::start("rustls", &["--trace", made.to_str().unwrap()]);
    assert_eq!(mode(&made), 0o600, "a trace it makes is owner-only");
    server.interrupt();

    // A file that is there already is truncated and made owner-only too.
    let there = dir.path().join("there.trace");
    std::fs::write(&there, "old\n").unwrap();
    std::fs::set_permissions(&there, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Server::start("rustls", &["--trace", there.to_str().unwrap()]);
    assert_eq!(mode(&there), 0o600);
    server.interrupt();
    assert_eq!(
        std::fs::read_to_string(&there).unwrap(),
        "# sesscache trace v1\n"
    );

    let target = dir.path().join("precious");
    std::fs::write(&target, "keep me\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("link.trace");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = sesscache_within(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--trace",
            link.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("symlink"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    assert_eq!(mode(&target), 0o644);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A client that fails its handshake (it sends what is not TLS); the port it came from.
fn failed_handshake(server: &Server) -> u16 {
    let mut stream = TcpStream::connect(server.connect()).unwrap();
    let port = stream.local_addr().unwrap().port();
    stream.write_all(b"hello, not TLS\r\n\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.read_to_end(&mut Vec::new());
    port
}

/// Serves one resumed-or-not request and one failed handshake with `extra`; what serve
/// logged, the failed client's port, its report and a scrape of its metrics.
fn logged(extra: &[&str]) -> (String, u16, String, prometheus_parse::Scrape) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let stderr = std::fs::File::create(&log).unwrap();
    let args = [&["--metrics", "0"], extra].concat();
    let mut server = Server::start_with("rustls", &args, |command| {
        command.stderr(stderr);
    });
    let addr = server.metrics_addr();
    let session = dir.path().join("session");
    request(&server, "-tls1_2", "-sess_out", session.to_str().unwrap());
    let port = failed_handshake(&server);
    let metrics = scrape(&addr);
    let report = server.interrupt();
    (
        std::fs::read_to_string(&log).unwrap(),
        port,
        report,
        metrics,
    )
}

#[test]
fn with_a_trace_the_log_names_no_client_address() {
    // Without a trace, the log says where each connection came from.
    let (log, port, _, _) = logged(&[]);
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");

    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let (log, port, report, metrics) = logged(&["--trace", trace.to_str().unwrap()]);
    assert!(!log.contains(&format!("127.0.0.1:{port}")), "{log}");
    assert!(!log.contains("127.0.0.1:"), "{log}");
    assert!(log.contains("connection"), "{log}");
    assert!(log.contains("handshake failed"), "{log}");
    // The finished handshake is in the trace (the failed one is not), and nothing was dropped.
    let text = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(stat(&report, "trace lines dropped"), 0, "{report}");
    assert_eq!(
        metric(&metrics, "sesscache_serve_trace_dropped_total", &[]),
        0
    );
    assert_eq!(
        metric(&metrics, "sesscache_serve_trace_write_errors_total", &[]),
        0
    );
}
