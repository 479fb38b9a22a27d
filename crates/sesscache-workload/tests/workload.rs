//! The workload engine through its public API: synthetic runs as an operator reads them, and a
//! trace file read back and replayed at several cache sizes.

use std::io::Write as _;

use sesscache_workload::simulate::{self, Pace, Stop, Workload};
use sesscache_workload::{replay, trace, Error};
use session_cache::Resumption;
use session_core::ProtocolVersion;

fn workload(servers: usize) -> Workload {
    Workload {
        threads: 1,
        servers,
        clients: 300,
        pace: Pace::Rate(100.0),
        stop: Stop::Connections(6_000),
        timeline: true,
        ..Workload::default()
    }
}

#[test]
fn servers_behind_a_balancer_without_a_shared_tier_resume_less() {
    let one = simulate::run(&workload(1), &[], |_| {}).unwrap();
    let four = simulate::run(&workload(4), &[], |_| {}).unwrap();
    assert_eq!((one.servers, four.servers), (1, 4));
    assert_eq!(one.connections, four.connections);
    assert!(one.hit_ratio() > 0.9, "{}", one.hit_ratio());
    // A client's next connection lands on its server a quarter of the time.
    assert!(
        four.hit_ratio() < 0.5 * one.hit_ratio(),
        "{} against {}",
        four.hit_ratio(),
        one.hit_ratio()
    );
    assert!(four.tier.is_none() && four.remote_hits() == 0);
    let over_time = &one.timeline;
    assert!(!over_time.is_empty() && over_time.len() <= 50);
    assert!(over_time
        .iter()
        .all(|&(_, ratio)| (0.0..=1.0).contains(&ratio)));
    assert_eq!(one.pace.to_string(), "100 connections per simulated second");
}

#[test]
fn a_trace_read_back_replays_to_more_hits_in_a_larger_cache() {
    // Twenty clients get a session, and offer it back a minute later, oldest first.
    let mut lines = Vec::new();
    for round in 0..2u64 {
        for client in 0..20u64 {
            let offered = round == 1;
            lines.push(trace::Line {
                time_ms: 1_700_000_000_000 + round * 60_000 + client,
                client,
                version: ProtocolVersion::TLS1_2,
                offered,
                issued: u32::from(!offered),
                outcome: if offered {
                    Resumption::Resumed
                } else {
                    Resumption::NotOffered
                },
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("handshakes.trace");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "{}", trace::HEADER).unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    let read = trace::read(&path).unwrap();
    assert_eq!(read, lines);

    let hits = |size: usize| {
        let settings = replay::Settings {
            size,
            timeout: 300,
            flush_interval: 60,
        };
        let report = replay::run(&read, settings).unwrap();
        assert_eq!(report.resumptions.offered(), 20);
        report.resumptions.resumed
    };
    assert_eq!(hits(20), 20, "room for all");
    assert_eq!(hits(0), 20, "no limit");
    assert!(hits(10) < 20);

    let missing = dir.path().join("missing");
    assert!(matches!(
        trace::read(&missing),
        Err(Error::OpenTrace { .. })
    ));
}
