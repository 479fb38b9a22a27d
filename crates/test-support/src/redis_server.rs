//! A real `redis-server` for a test: started on a free loopback port, without persistence, in
//! a directory of its own, and killed when dropped. Also a three-node Redis Cluster.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process this test owns.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    /// What `--requirepass` asks of clients, if anything.
    password: Option<String>,
    /// The extra arguments it was started with, for [`restart_in_place`](Self::restart_in_place).
    extra: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A loopback port nobody listens on now (and, with `+ 10000`, the cluster bus port too).
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Starts `redis-server` on `port` with no persistence, in a new directory of its own.
fn spawn(port: u16, extra: &[&str]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let child = spawn_in(port, dir.path(), extra);
    (child, dir)
}

/// Starts `redis-server` on `port` with no persistence, in `dir` (a cluster node finds its
/// `nodes.conf` there).
fn spawn_in<S: AsRef<std::ffi::OsStr>>(port: u16, dir: &Path, extra: &[S]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--protected-mode", "no", "--loglevel", "warning"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (apt-get install redis-server)")
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    ///
    /// Panics (the test fails) if `redis-server` is not installed: `.ci/run` installs it.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments (`--cluster-enabled yes`, ...).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_server(extra, None)
    }

    /// Starts a server that asks clients for `password` (`--requirepass`); [`command`] and
    /// [`cli`] give it.
    ///
    /// [`command`]: Self::command
    /// [`cli`]: Self::cli
    pub fn start_with_password(password: &str) -> Self {
        Self::start_server(&["--requirepass", password], Some(password.to_owned()))
    }

    fn start_server(extra: &[&str], password: Option<String>) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let (child, dir) = spawn(port, extra);
            let mut server = Self {
                child,
                port,
                password: password.clone(),
                extra: extra.iter().map(|&a| a.to_owned()).collect(),
                _dir: dir,
            };
            if server.wait_until_up(Duration::from_secs(10)) {
                return server;
            }
            // The port was taken meanwhile: try another.
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        panic!("redis-server did not come up");
    }

    fn wait_until_up(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self
                .command(&["PING"])
                .is_some_and(|r| r.starts_with("+PONG"))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command (RESP, no client library) and returns the raw reply, or `None` if the
    /// server did not answer within a second.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        if let Some(password) = &self.password {
            let auth = Self::send(&mut stream, &["AUTH", password])?;
            if !auth.starts_with("+OK") {
                return Some(auth);
            }
        }
        Self::send(&mut stream, args)
    }

    fn send(stream: &mut TcpStream, args: &[&str]) -> Option<String> {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(req.as_bytes()).ok()?;
        let mut buf = vec![0u8; 1 << 16];
        let n = stream.read(&mut buf).ok()?;
        (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Runs `redis-cli` against this server and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(password) = &self.password {
            // Through the environment, not the command line.
            command.env("REDISCLI_AUTH", password);
        }
        let out = command.args(args).output().expect("redis-cli is installed");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        out.stdout
    }

    /// Stops the process (SIGSTOP): it keeps its connections and answers nothing.
    pub fn hang(&self) {
        signal(self.pid(), "STOP");
    }

    /// Lets a stopped process go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// Kills the process and starts a new one on the same port (empty: no persistence).
    pub fn restart_after(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let (child, dir) = spawn(self.port, &[]);
        self.child = child;
        self._dir = dir;
        assert!(
            self.wait_until_up(Duration::from_secs(10)),
            "redis-server came back"
        );
    }

    /// Kills the process and starts a new one on the same port, in the same directory and
    /// with the same arguments: a cluster node comes back with its `nodes.conf` (its id, its
    /// slots, its peers) and rejoins; its data is gone (no persistence).
    pub fn restart_in_place(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = spawn_in(self.port, self._dir.path(), &self.extra);
        assert!(
            self.wait_until_up(Duration::from_secs(10)),
            "redis-server came back"
        );
    }

    /// How often each command ran so far (`INFO commandstats`): `(command, calls)`.
    pub fn command_calls(&self) -> Vec<(String, u64)> {
        let info = String::from_utf8(self.cli(&["INFO", "commandstats"])).unwrap_or_default();
        info.lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    /// The calls of the commands that read or write sessions (GET, SET, DEL) so far.
    pub fn session_commands(&self) -> u64 {
        self.command_calls()
            .into_iter()
            .filter(|(name, _)| matches!(name.as_str(), "get" | "set" | "del"))
            .map(|(_, calls)| calls)
            .sum()
    }

    /// Kills the process (it stays down until [`restart_after`](Self::restart_after)).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A stopped process must be let go before it can die.
        signal(self.pid(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// Three `redis-server` nodes in one Redis Cluster (masters only), every slot covered.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes, joins them with `redis-cli --cluster create`, and waits until the
    /// cluster says `cluster_state:ok` on every node.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`start`](Self::start), each node with extra arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let mut args = vec!["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"];
                args.extend_from_slice(extra);
                RedisServer::start_with(&args)
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = nodes.iter().all(|n| {
                n.command(&["CLUSTER", "INFO"])
                    .is_some_and(|r| r.contains("cluster_state:ok"))
            });
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { nodes }
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, to hang, kill or restart one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}
