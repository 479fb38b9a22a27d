//! The fleet tier from the command line: `sesscache keygen`, and two `sesscache serve`
//! processes sharing one real `redis-server` (started here, on a free loopback port), judged
//! by the real `openssl s_client`.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, Instant};

use test_support::redis_server::{RedisCluster, RedisServer};

mod common;

use common::{
    key_file, metric, printed_hex, scrape, sesscache, stat, tls12, tls13_request, Server, BACKENDS,
};

/// The number on the line starting with `label` in the fleet tier's part of a report.
fn tier_stat(report: &str, label: &str) -> u64 {
    let at = report
        .find("fleet tier")
        .unwrap_or_else(|| panic!("no fleet tier in {report}"));
    stat(&report[at..], label)
}

/// Waits until the store holds at least `n` values and no more arrive for a moment (the
/// servers write in the background; a TLS 1.3 handshake may issue more than one ticket).
fn wait_for_values(redis: &RedisServer, n: u64) {
    let size = || -> u64 {
        String::from_utf8(redis.cli(&["DBSIZE"]))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (size(), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let now = size();
        if now != last.0 {
            last = (now, Instant::now());
        } else if now >= n && last.1.elapsed() >= Duration::from_millis(100) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the store holds {now} values, not {n}"
        );
    }
}

#[test]
fn keygen_prints_a_line_and_puts_new_keys_on_top_of_a_file() {
    let out = sesscache(&["keygen"]);
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("sesscache-key-v1 "), "{line}");
    assert_eq!(line.split_whitespace().count(), 3);

    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path());
    let first = std::fs::read_to_string(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only");
    assert!(sesscache(&["keygen", "-o", &path]).status.success());
    let second = std::fs::read_to_string(&path).unwrap();
    assert_eq!(second.lines().count(), 2);
    assert_eq!(
        second.lines().nth(1).unwrap(),
        first.trim_end(),
        "the old key below"
    );

    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a key file\n").unwrap();
    let out = sesscache(&["keygen", "-o", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
    assert_eq!(std::fs::read_to_string(&junk).unwrap(), "not a key file\n");
}

#[test]
fn keygen_keeps_an_existing_files_mode_and_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A group the servers run in may read it; root (the tests run as root in CI) may also
    // hand it to another owner. Where it may not, the mode alone is checked.
    let owned = std::os::unix::fs::chown(&path, Some(4321), Some(4321)).is_ok();
    assert!(sesscache(&["keygen", "-o", &path]).status.success());
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640, "the mode kept");
    if owned {
        assert_eq!((meta.uid(), meta.gid()), (4321, 4321), "the owner kept");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
}

#[test]
fn keygen_writes_through_a_symlink_and_leaves_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let real = tempfile::tempdir().unwrap();
    let target = key_file(real.path());
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("keys");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = sesscache(&["keygen", "-o", link.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the symlink is still one");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(&target));
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 2);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(std::fs::read_dir(real.path()).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // A relative link to a file not made yet: the file is made where it points, owner-only.
    let dangling = dir.path().join("new-keys");
    std::os::unix::fs::symlink("made-here", &dangling).unwrap();
    let out = sesscache(&["keygen", "-o", dangling.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    let made = dir.path().join("made-here");
    assert_eq!(std::fs::read_to_string(&made).unwrap().lines().count(), 1);
    let mode = std::fs::metadata(&made).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn serve_refuses_a_store_without_keys_and_bad_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "sesscache-key-v1 nothex 00\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    for args in [
        &["serve", "--redis", "redis://127.0.0.1:1"][..],
        &["serve", "--redis-keys", bad.to_str().unwrap()],
        &[
            "serve",
            "--redis",
            "redis://127.0.0.1:1",
            "--redis-keys",
            bad.to_str().unwrap(),
        ],
        &[
            "serve",
            "--redis",
            "redis://127.0.0.1:1",
            "--redis-keys",
            "/nonexistent/keys",
        ],
        &[
            "simulate",
            "--servers",
            "2",
            "--redis",
            "redis://127.0.0.1:1",
        ],
    ] {
        let out = sesscache(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_key_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path());
    for mode in [0o640, 0o604, 0o644, 0o660] {
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(mode)).unwrap();
        for command in ["serve", "simulate"] {
            let mut args = vec![
                command,
                "--redis",
                "redis://127.0.0.1:1",
                "--redis-keys",
                &keys,
            ];
            if command == "simulate" {
                args.extend(["--servers", "2"]);
            }
            let out = sesscache(&args);
            assert_eq!(out.status.code(), Some(2), "{mode:o} {command}: {out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("readable by others") && err.contains("chmod 600"),
                "{mode:o}: {err}"
            );
        }
    }
}

#[test]
fn a_session_saved_from_one_server_resumes_on_another() {
    for backend in BACKENDS {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let keys = key_file(dir.path());
        let store = [
            "--redis",
            &redis.url(),
            "--redis-keys",
            &keys,
            "--redis-budget-ms",
            "1000",
        ];
        let with_metrics = [&store[..], &["--metrics", "0"]].concat();
        let (one, mut two) = (
            Server::start(backend, &store),
            Server::start(backend, &with_metrics),
        );
        let metrics_at = two.metrics_addr();
        let file = dir.path().join("s.pem");
        let file = file.to_str().unwrap();

        // TLS 1.2, by session id.
        let first = tls12(&one, "-sess_out", file);
        assert!(first.contains("New, TLSv1.2"), "{backend}: {first}");
        wait_for_values(&redis, 1);
        let second = tls12(&two, "-sess_in", file);
        assert!(second.contains("Reused, TLSv1.2"), "{backend}: {second}");

        // TLS 1.3, by stateful ticket: once in the whole fleet.
        let before = String::from_utf8(redis.cli(&["DBSIZE"])).unwrap();
        let before: u64 = before.trim().parse().unwrap();
        let first = tls13_request(&one, "-sess_out", file);
        assert!(first.contains("New, TLSv1.3"), "{backend}: {first}");
        wait_for_values(&redis, before + 1);
        let second = tls13_request(&two, "-sess_in", file);
        assert!(second.contains("Reused, TLSv1.3"), "{backend}: {second}");
        let replay = tls13_request(&one, "-sess_in", file);
        assert!(
            replay.contains("resumed: no"),
            "{backend}: used on the second, refused on the first: {replay}"
        );
        let again = tls13_request(&two, "-sess_in", file);
        assert!(again.contains("resumed: no"), "{backend}: {again}");

        let metrics = scrape(&metrics_at);
        let report_two = two.interrupt();
        let report_one = one.interrupt();
        // The tier's counters in the metrics, as the server prints them.
        for (name, label) in [
            ("sesscache_tier_remote_hits_total", "remote hits"),
            ("sesscache_tier_already_used_total", "tickets already used"),
        ] {
            assert_eq!(
                metric(&metrics, name, &[]),
                tier_stat(&report_two, label),
                "{backend}: {name}"
            );
        }
        assert_eq!(
            metric(&metrics, "sesscache_tier_breaker", &[("state", "closed")]),
            1
        );
        assert_eq!(
            metric(
                &metrics,
                "sesscache_resumptions_total",
                &[("outcome", "already_used")]
            ),
            1,
            "{backend}: the used ticket, counted as such"
        );
        assert_eq!(
            tier_stat(&report_two, "remote hits"),
            2,
            "{backend}: {report_two}"
        );
        assert_eq!(
            tier_stat(&report_one, "tickets already used"),
            1,
            "{backend}: {report_one}"
        );
        assert_eq!(
            tier_stat(&report_two, "tickets already used"),
            1,
            "{backend}: {report_two}"
        );
        assert_eq!(
            tier_stat(&report_one, "errors"),
            0,
            "{backend}: {report_one}"
        );
    }
}

/// What the store in the test below asks for.
const PASSWORD: &str = "s3cret-for-the-fleet-7f3a";

#[test]
fn a_password_from_a_file_or_the_environment_reaches_the_store_and_nothing_else() {
    let redis = RedisServer::start_with_password(PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path());
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    let url = redis.url();
    let store = [
        "--redis",
        &url,
        "--redis-keys",
        &keys,
        "--redis-budget-ms",
        "1000",
    ];
    let from_file = [
        &store[..],
        &["--redis-password-file", password_file.to_str().unwrap()],
    ]
    .concat();
    let (one_log, two_log) = (log("one.log"), log("two.log"));
    let one = Server::start_with("rustls", &from_file, |command| {
        command.stderr(one_log);
    });
    let two = Server::start_with("rustls", &store, |command| {
        command
            .env("SESSCACHE_REDIS_PASSWORD", PASSWORD)
            .stderr(two_log);
    });
    for server in [&one, &two] {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.child.id())).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains("--redis"), "{cmdline}");
        assert!(!cmdline.contains(PASSWORD), "{cmdline}");
    }

    let file = dir.path().join("s.pem");
    let file = file.to_str().unwrap();
    let first = tls12(&one, "-sess_out", file);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    wait_for_values(&redis, 1);
    let second = tls12(&two, "-sess_in", file);
    assert!(second.contains("Reused, TLSv1.2"), "{second}");

    let (report_one, report_two) = (one.interrupt(), two.interrupt());
    assert_eq!(tier_stat(&report_one, "errors"), 0, "{report_one}");
    assert_eq!(tier_stat(&report_two, "remote hits"), 1, "{report_two}");
    for name in ["one.log", "two.log"] {
        let logged = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(!logged.contains(PASSWORD), "{name}: {logged}");
    }
    for report in [&report_one, &report_two] {
        assert!(!report.contains(PASSWORD), "{report}");
    }
}

#[test]
fn a_missing_empty_or_exposed_password_file_is_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path());
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    let exposed = dir.path().join("exposed");
    std::fs::write(&exposed, "hunter2\n").unwrap();
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (file, expected) in [
        (&missing, "cannot read"),
        (&empty, "is empty"),
        (&exposed, "readable by others"),
    ] {
        let file = file.to_str().unwrap();
        let out = sesscache(&[
            "serve",
            "--redis",
            "redis://127.0.0.1:1",
            "--redis-keys",
            &keys,
            "--redis-password-file",
            file,
        ]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(file) && stderr.contains(expected),
            "{stderr}"
        );
    }
    for command in ["serve", "simulate"] {
        let help = sesscache(&[command, "--help"]);
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains("--redis-password-file"), "{help}");
        assert!(help.contains("SESSCACHE_REDIS_PASSWORD"), "{help}");
        assert!(help.contains("`ps`"), "why not in the URL: {help}");
    }
}

#[test]
fn the_store_holds_neither_the_master_key_nor_the_session_id() {
    for backend in BACKENDS {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let keys = key_file(dir.path());
        let server = Server::start(backend, &["--redis", &redis.url(), "--redis-keys", &keys]);
        let file = dir.path().join("s.pem");
        let out = tls12(&server, "-sess_out", file.to_str().unwrap());
        let id = printed_hex(&out, "Session-ID:");
        let master = printed_hex(&out, "Master-Key:");
        assert_eq!((id.len(), master.len()), (32, 48), "{out}");
        wait_for_values(&redis, 1);

        let mut seen = Vec::new();
        let names = redis.cli(&["--scan"]);
        for name in String::from_utf8(names.clone()).unwrap().lines() {
            seen.extend_from_slice(name.as_bytes());
            seen.extend_from_slice(&redis.cli(&["GET", name]));
        }
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        for secret in [&id, &master] {
            for form in [
                secret.to_vec(),
                hex(secret).into_bytes(),
                hex(secret).to_uppercase().into_bytes(),
            ] {
                assert!(
                    !seen.windows(form.len()).any(|w| w == form.as_slice()),
                    "{backend}: the store shows a secret"
                );
            }
        }
        let key_secret = std::fs::read_to_string(&keys).unwrap();
        let key_secret = key_secret.split_whitespace().nth(2).unwrap();
        assert!(!seen.windows(64).any(|w| w == key_secret.as_bytes()));
    }
}

#[test]
fn a_hung_store_costs_a_handshake_its_budget_and_no_more() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path());
    let store = ["--redis", &redis.url(), "--redis-keys", &keys];
    let (one, two) = (
        Server::start("rustls", &store),
        Server::start("rustls", &store),
    );
    let file = dir.path().join("s.pem");
    let file = file.to_str().unwrap();
    tls12(&one, "-sess_out", file);
    wait_for_values(&redis, 1);
    redis.hang();
    // Each lookup on the second server waits at most its 5 ms budget, then the breaker
    // skips the store: every handshake is a full one, none hangs.
    for _ in 0..8 {
        let began = Instant::now();
        let out = tls12(&two, "-sess_in", file);
        assert!(out.contains("New, TLSv1.2"), "{out}");
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "{:?}",
            began.elapsed()
        );
    }
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tls12(&two, "-sess_in", file).contains("Reused, TLSv1.2") {
            break;
        }
        assert!(Instant::now() < deadline, "the tier recovers by itself");
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = two.interrupt();
    assert!(
        tier_stat(&report, "timeouts") + tier_stat(&report, "skipped (breaker)") >= 8,
        "{report}"
    );
    assert_eq!(tier_stat(&report, "remote hits"), 1, "{report}");
}

/// `simulate --json`'s hit ratio (and the remote share of it) for these options.
fn simulated(extra: &[&str]) -> (f64, f64) {
    let mut args = vec![
        "simulate",
        "--connections",
        "20000",
        "--clients",
        "2000",
        "--threads",
        "2",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = sesscache(&args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let number = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("\"{key}\": ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .trim_end_matches(',')
            .parse()
            .unwrap()
    };
    (number("hit_ratio"), number("remote_hit_ratio"))
}

#[test]
fn a_simulated_fleet_keeps_its_hit_ratio_with_the_tier_and_loses_it_without() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path());
    for tls in ["1.2", "1.3"] {
        let (one, _) = simulated(&["--servers", "1", "--tls", tls]);
        let (alone, remote) = simulated(&["--servers", "4", "--tls", tls]);
        assert_eq!(remote, 0.0);
        let (shared, remote) = simulated(&[
            "--servers",
            "4",
            "--tls",
            tls,
            "--redis",
            &redis.url(),
            "--redis-keys",
            &keys,
            "--redis-budget-ms",
            "1000",
        ]);
        assert!(
            one > 0.5,
            "TLS {tls}: one server resumes most offers: {one}"
        );
        assert!(
            alone < 0.5 * one,
            "TLS {tls}: without the tier it falls: {alone} / {one}"
        );
        assert!(
            shared >= 0.95 * one,
            "TLS {tls}: with the tier, four keep 0.95 of one: {shared} / {one}"
        );
        assert!(
            remote > 0.3,
            "TLS {tls}: many hits come from the store: {remote}"
        );
    }
}

#[test]
fn servers_on_a_redis_cluster_share_sessions() {
    let cluster = RedisCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path());
    let mut store = Vec::new();
    for url in cluster.urls() {
        store.extend(["--redis".to_owned(), url]);
    }
    store.extend(["--redis-keys".to_owned(), keys]);
    store.extend(["--redis-budget-ms".to_owned(), "1000".to_owned()]);
    let store: Vec<&str> = store.iter().map(String::as_str).collect();
    let stored = || -> u64 {
        cluster
            .nodes()
            .iter()
            .map(|n| {
                let size = String::from_utf8(n.cli(&["DBSIZE"])).unwrap();
                size.trim().parse::<u64>().unwrap()
            })
            .sum()
    };
    for backend in BACKENDS {
        let (one, two) = (
            Server::start(backend, &store),
            Server::start(backend, &store),
        );
        for i in 0..6 {
            let file = dir.path().join(format!("{backend}{i}.pem"));
            let file = file.to_str().unwrap();
            let (first, second) = if i % 2 == 0 {
                (&one, &two)
            } else {
                (&two, &one)
            };
            let before = stored();
            assert!(tls12(first, "-sess_out", file).contains("New, TLSv1.2"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while stored() == before {
                assert!(Instant::now() < deadline, "the session reaches the cluster");
                std::thread::sleep(Duration::from_millis(10));
            }
            let out = tls12(second, "-sess_in", file);
            assert!(
                out.contains("Reused, TLSv1.2"),
                "{backend}, session {i}: {out}"
            );
        }
        let report = one.interrupt();
        assert_eq!(tier_stat(&report, "remote hits"), 3, "{backend}: {report}");
        assert_eq!(tier_stat(&report, "errors"), 0, "{backend}: {report}");
    }
    let used = cluster
        .nodes()
        .iter()
        .filter(|n| String::from_utf8(n.cli(&["DBSIZE"])).unwrap().trim() != "0")
        .count();
    assert!(
        used >= 2,
        "twelve sessions spread over the nodes: {used} used"
    );
}

#[test]
fn a_server_on_the_other_tls_stack_refuses_what_it_finds() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path());
    let store = [
        "--redis",
        &redis.url(),
        "--redis-keys",
        &keys,
        "--redis-budget-ms",
        "1000",
    ];
    let (rustls, openssl) = (
        Server::start("rustls", &store),
        Server::start("openssl", &store),
    );
    let file = dir.path().join("s.pem");
    let file = file.to_str().unwrap();
    tls12(&rustls, "-sess_out", file);
    wait_for_values(&redis, 1);
    let out = tls12(&openssl, "-sess_in", file);
    assert!(out.contains("New, TLSv1.2"), "{out}");

    // A TLS 1.3 ticket offered to the other stack's server is not burnt there: it still
    // resumes, once, on a server of its own stack.
    let ticket = dir.path().join("t.pem");
    let ticket = ticket.to_str().unwrap();
    let before: u64 = String::from_utf8(redis.cli(&["DBSIZE"]))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let first = tls13_request(&rustls, "-sess_out", ticket);
    assert!(first.contains("New, TLSv1.3"), "{first}");
    wait_for_values(&redis, before + 1);
    let elsewhere = tls13_request(&openssl, "-sess_in", ticket);
    assert!(elsewhere.contains("resumed: no"), "{elsewhere}");
    let peer = Server::start("rustls", &store);
    let home = tls13_request(&peer, "-sess_in", ticket);
    assert!(home.contains("Reused, TLSv1.3"), "{home}");

    let report = openssl.interrupt();
    // The names bind the session id context (each stack has its own): the other stack's
    // server finds nothing under its names.
    assert_eq!(tier_stat(&report, "remote misses"), 2, "{report}");
    assert_eq!(tier_stat(&report, "values not opened"), 0, "{report}");
    assert_eq!(tier_stat(&report, "remote hits"), 0, "{report}");
}
