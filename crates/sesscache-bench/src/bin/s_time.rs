//! Connections per second under `openssl s_time`, against `sesscache serve` on each stack
//! (rustls, OpenSSL) and against `openssl s_server -www -no_ticket` (OpenSSL's own server and
//! session cache), all three with one ECDSA P-256 certificate.
//!
//! ```sh
//! cargo build --release -p sesscache-cli
//! cargo run --release -p sesscache-bench --bin s_time -- [--time 3] [--runs 3] [--clients 1,8] [--sesscache PATH]
//! ```
//!
//! For each TLS version (1.2, 1.3), mode (`-new`: a full handshake every time; `-reuse`: every
//! connection offers the session of the one before) and number of clients at once, it runs
//! `--runs` rounds; a round measures each server in turn (so that noise on the machine spreads
//! over all three). A client is `openssl s_time -connect 127.0.0.1:PORT -www / -time N` with
//! the mode and the version; its rate is the connections it reports over the wall time it
//! ran, and the rates of the clients of one measurement add up. The table gives each server's
//! median over the rounds, with the lowest and highest, and the ratio of the medians
//! serve / s_server. Every server keeps its cache's default size (20,480 sessions).

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sesscache_bench::serve_fleet::{check_sesscache, default_sesscache};
use sesscache_bench::spread;

const USAGE: &str =
    "usage: s_time [--time SECONDS] [--runs N] [--clients N,N...] [--workers N] [--sesscache PATH]

  --time       seconds each s_time runs (default 3)
  --runs       rounds, each measuring every server once (default 3)
  --clients    how many s_time run at once, one table row each (default 1,8)
  --workers    serve's --workers (default: serve's own, one per CPU)
  --sesscache  the sesscache binary (default target/release/sesscache in the workspace;
               build it with `cargo build --release -p sesscache-cli`)";

/// How long a server may take to start listening.
const START: Duration = Duration::from_secs(10);

fn usage(problem: &str) -> ! {
    eprintln!("s_time: {problem}\n{USAGE}");
    std::process::exit(2);
}

struct Options {
    time: u64,
    runs: usize,
    clients: Vec<usize>,
    workers: Option<u16>,
    sesscache: PathBuf,
}

fn options() -> Options {
    let mut options = Options {
        time: 3,
        runs: 3,
        clients: vec![1, 8],
        workers: None,
        sesscache: default_sesscache(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--time" => options.time = value().parse().unwrap_or_else(|_| usage("--time")),
            "--runs" => options.runs = value().parse().unwrap_or_else(|_| usage("--runs")),
            "--clients" => {
                options.clients = value()
                    .split(',')
                    .map(|n| n.parse().unwrap_or_else(|_| usage("--clients")))
                    .collect()
            }
            "--workers" => {
                options.workers = Some(
                    value()
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| usage("--workers")),
                )
            }
            "--sesscache" => options.sesscache = PathBuf::from(value()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if options.time == 0 || options.runs == 0 || options.clients.contains(&0) {
        usage("--time, --runs and --clients must be above 0");
    }
    options
}

/// A server under test, killed when dropped.
struct Server {
    name: &'static str,
    addr: SocketAddr,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `sesscache serve --backend BACKEND` with the certificate, on a free loopback port.
    fn serve(
        bin: &Path,
        backend: &str,
        name: &'static str,
        dir: &Path,
        workers: Option<u16>,
    ) -> Result<Self, String> {
        let mut command = Command::new(bin);
        command.args(["serve", "--backend", backend, "--listen", "127.0.0.1:0"]);
        if let Some(workers) = workers {
            command.args(["--workers", &workers.to_string()]);
        }
        let mut child = command
            .arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut first = String::new();
        let stdout = child.stdout.take().expect("piped");
        let _ = BufReader::new(stdout).read_line(&mut first);
        let addr = first
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("{name}: no address in {first:?}"))?;
        Ok(Self { name, addr, child })
    }

    /// `openssl s_server -www -no_ticket` with the certificate, on a free loopback port.
    fn s_server(dir: &Path) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &addr.to_string(),
                "-www",
                "-no_ticket",
            ])
            .args(["-quiet", "-cert"])
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run openssl s_server: {e}"))?;
        let server = Self {
            name: "s_server",
            addr,
            child,
        };
        let deadline = Instant::now() + START;
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("openssl s_server does not listen".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

/// What one measurement saw: connections per second (all clients), and the share of them
/// that resumed.
struct Measured {
    rate: f64,
    resumed: f64,
}

/// `clients` s_time at once against `addr`; their rates added up.
fn measure(addr: SocketAddr, version: &str, mode: &str, clients: usize, time: u64) -> Measured {
    let connect = addr.to_string();
    let time = time.to_string();
    let started: Vec<_> = (0..clients)
        .map(|_| {
            let child = Command::new("openssl")
                .args(["s_time", "-connect", &connect, "-www", "/", "-time", &time])
                .args([mode, version])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| usage(&format!("cannot run openssl s_time: {e}")));
            (Instant::now(), child)
        })
        .collect();
    let (mut rate, mut connections, mut resumed) = (0.0, 0u64, 0u64);
    for (began, mut child) in started {
        let mut out = String::new();
        let _ = child.stdout.take().expect("piped").read_to_string(&mut out);
        let _ = child.wait();
        let wall = began.elapsed().as_secs_f64();
        let made: u64 = out
            .lines()
            .find(|l| l.contains(" connections in ") && l.contains(" real seconds"))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap_or(0);
        // One character per timed connection, `r` for one that resumed.
        let progress = out
            .split("starting\n")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_default();
        rate += made as f64 / wall;
        connections += made;
        resumed += progress.matches('r').count() as u64;
    }
    Measured {
        rate,
        resumed: resumed as f64 / connections.max(1) as f64,
    }
}

fn certificate(dir: &Path) -> Result<(), String> {
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run openssl req: {e}"))?;
    if made.success() {
        Ok(())
    } else {
        Err("openssl req could not make the certificate".to_owned())
    }
}

fn main() {
    let options = options();
    check_sesscache(&options.sesscache).unwrap_or_else(|e| usage(&e));
    let dir = tempfile::tempdir().unwrap_or_else(|e| usage(&format!("a directory: {e}")));
    let run = || -> Result<(), String> {
        certificate(dir.path())?;
        let servers = [
            Server::serve(
                &options.sesscache,
                "rustls",
                "serve rustls",
                dir.path(),
                options.workers,
            )?,
            Server::serve(
                &options.sesscache,
                "openssl",
                "serve OpenSSL",
                dir.path(),
                options.workers,
            )?,
            Server::s_server(dir.path())?,
        ];
        let names: Vec<_> = servers.iter().map(|s| s.name).collect();
        println!(
            "| TLS | mode | clients | {} | {} / s_server | {} / s_server |",
            names.join(" | "),
            names[0],
            names[1]
        );
        println!("|---|---|---|---|---|---|---|---|");
        for (version, label) in [("-tls1_2", "1.2"), ("-tls1_3", "1.3")] {
            for mode in ["-new", "-reuse"] {
                for &clients in &options.clients {
                    let mut rates = vec![Vec::new(); servers.len()];
                    for round in 0..options.runs {
                        for (server, rates) in servers.iter().zip(&mut rates) {
                            let measured =
                                measure(server.addr, version, mode, clients, options.time);
                            eprintln!(
                                "TLS {label} {mode} {clients} client(s), round {}: {}: {:.0}/s, {:.1}% resumed",
                                round + 1,
                                server.name,
                                measured.rate,
                                measured.resumed * 100.0
                            );
                            rates.push(measured.rate);
                        }
                    }
                    let spreads: Vec<_> = rates.iter().map(|r| spread(r)).collect();
                    let cells: Vec<_> = spreads
                        .iter()
                        .map(|(median, low, high)| format!("{median:.0} [{low:.0}-{high:.0}]"))
                        .collect();
                    let base = spreads[2].0;
                    println!(
                        "| {label} | {mode} | {clients} | {} | {:.2}x | {:.2}x |",
                        cells.join(" | "),
                        spreads[0].0 / base,
                        spreads[1].0 / base
                    );
                }
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("s_time: {e}");
        std::process::exit(1);
    }
}
