//! Sessions on the wire against the real `openssl` tool, which is the judge.
//!
//! One direction: a real `openssl s_server` on a loopback port and `openssl s_client
//! -sess_out` make real sessions (TLS 1.2 with and without tickets, TLS 1.3 with tickets,
//! ALPN, SNI, early data, RSA and ECDSA certificates). We decode them, check the fields,
//! re-encode them to the very same bytes, and print the same text as `openssl sess_id`.
//! The other direction: sessions we build and encode are read by `openssl sess_id`, which
//! prints what we put in and writes back the bytes we wrote.
//!
//! Needs the `openssl` command (`.ci/run` installs it). Every process started here is killed
//! when its guard drops, test failure or not; nothing leaves loopback.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use session_core::{
    AlpnProtocol, CertificateDer, CipherSuite, HostName, MasterKey, OpensslExtras, ProtocolVersion,
    Session, SessionBuilder, SessionId, SidCtx, Ticket,
};
use session_der::{self as wire, text::openssl_text};

/// Runs `openssl` with `args`, failing the test with its stderr if it fails.
fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the `openssl` command must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A child process killed and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    /// Self-signed RSA and ECDSA certificates for `localhost`.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, key) in [("rsa", "rsa:2048"), ("ec", "ec")] {
            let mut args = vec!["req", "-x509", "-newkey", key];
            if name == "ec" {
                args.extend(["-pkeyopt", "ec_paramgen_curve:P-256"]);
            }
            let (crt, pem_key) = (
                dir.path().join(format!("{name}.crt")),
                dir.path().join(format!("{name}.key")),
            );
            args.extend([
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
                pem_key.to_str().unwrap(),
                "-out",
                crt.to_str().unwrap(),
            ]);
            openssl(&args);
        }
        Self { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).to_str().unwrap().to_owned()
    }

    /// The certificate's DER bytes.
    fn der(&self, name: &str) -> Vec<u8> {
        openssl(&[
            "x509",
            "-in",
            &self.path(&format!("{name}.crt")),
            "-outform",
            "DER",
        ])
        .stdout
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An `openssl s_server` on a loopback port.
struct Server {
    port: u16,
    _child: Running,
}

impl Server {
    fn start(certs: &Certs, cert: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let accept = format!("127.0.0.1:{port}");
        let (crt, key) = (
            certs.path(&format!("{cert}.crt")),
            certs.path(&format!("{cert}.key")),
        );
        let child = Command::new("openssl")
            .args([
                "s_server", "-quiet", "-accept", &accept, "-cert", &crt, "-key", &key,
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the `openssl` command must be installed");
        let child = Running(child);
        wait_until("s_server to listen", || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
        Self {
            port,
            _child: child,
        }
    }

    /// Connects with `openssl s_client` and returns the session it saved with `-sess_out`
    /// (the last one, in TLS 1.3, where tickets arrive after the handshake).
    fn session(&self, dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
        let file = dir.join(format!("{name}.pem"));
        let connect = format!("127.0.0.1:{}", self.port);
        let child = Command::new("openssl")
            .args(["s_client", "-connect", &connect, "-ign_eof", "-sess_out"])
            .arg(&file)
            .args(args)
            .stdin(Stdio::piped()) // held open: s_client stays until killed
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _client = Running(child);
        let complete = |file: &PathBuf| {
            std::fs::read(file)
                .map(|b| b.ends_with(b"-----END SSL SESSION PARAMETERS-----\n"))
                .unwrap_or(false)
        };
        wait_until("s_client to save its session", || complete(&file));
        // TLS 1.3 servers send two tickets; let the second one land too.
        std::thread::sleep(Duration::from_millis(300));
        wait_until("s_client to finish writing", || complete(&file));
        std::fs::read(&file).unwrap()
    }
}

/// `openssl sess_id` on a file: its text, and its DER re-encoding.
fn sess_id(file: &Path, inform: &str) -> (String, Vec<u8>) {
    let file = file.to_str().unwrap();
    let text = openssl(&["sess_id", "-inform", inform, "-in", file, "-text", "-noout"]).stdout;
    let der = openssl(&["sess_id", "-inform", inform, "-in", file, "-outform", "DER"]).stdout;
    (String::from_utf8(text).unwrap(), der)
}

/// Decodes a real session and checks it against `openssl sess_id`: same text, same bytes.
fn check_real(certs: &Certs, name: &str, pem: &[u8]) -> Session {
    let session = wire::from_pem(pem).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        wire::to_pem(&session).unwrap().as_bytes(),
        pem,
        "{name}: PEM re-encoding must be byte-identical"
    );
    let file = certs.dir.path().join(format!("{name}.pem"));
    let (text, der) = sess_id(&file, "PEM");
    assert_eq!(
        *wire::to_der(&session).unwrap(),
        der,
        "{name}: DER re-encoding"
    );
    assert_eq!(*openssl_text(&session), text, "{name}: sess_id -text");
    let from_der = wire::from_der(&der).unwrap();
    assert_eq!(*wire::to_der(&from_der).unwrap(), der);
    check_wrapped(certs, name, &file, pem, &der);
    session
}

/// Forms of the same session that `openssl sess_id` reads: its own `-text` output (text, then
/// the PEM), that behind a byte-order mark, CRLF line ends, and two sessions in a row (the
/// first counts). Each must read as the same session here and there.
fn check_wrapped(certs: &Certs, name: &str, file: &Path, pem: &[u8], der: &[u8]) {
    let file = file.to_str().unwrap();
    let with_text = openssl(&["sess_id", "-in", file, "-text"]).stdout;
    assert!(with_text.starts_with(b"SSL-Session:"), "{name}");
    let other = wire::to_pem(&SessionBuilder::new(ProtocolVersion::TLS1_2, 1).build()).unwrap();
    let crlf = String::from_utf8(pem.to_vec())
        .unwrap()
        .replace('\n', "\r\n");
    let forms = [
        ("text", with_text.clone()),
        ("bom", [b"\xEF\xBB\xBF".as_slice(), &with_text].concat()),
        ("crlf", crlf.into_bytes()),
        ("two", [pem, other.as_bytes()].concat()),
    ];
    for (form, bytes) in forms {
        let path = certs.dir.path().join(format!("{name}.{form}.pem"));
        std::fs::write(&path, &bytes).unwrap();
        let (_, theirs) = sess_id(&path, "PEM");
        assert_eq!(
            theirs, der,
            "{name}, {form}: openssl reads the same session"
        );
        let (ours, _) = wire::decode(&bytes).unwrap_or_else(|e| panic!("{name}, {form}: {e}"));
        assert_eq!(*wire::to_der(&ours).unwrap(), der, "{name}, {form}");
    }
}

#[test]
fn real_sessions_decode_and_reencode_byte_for_byte() {
    let certs = Certs::new();
    let dir = certs.dir.path().to_owned();
    let rsa_der = certs.der("rsa");
    let ec_der = certs.der("ec");

    // TLS 1.2, no tickets, RSA, SNI acknowledged (s_server answers SNI for `-servername`).
    let server = Server::start(
        &certs,
        "rsa",
        &[
            "-no_ticket",
            "-servername",
            "localhost",
            "-cert2",
            &certs.path("rsa.crt"),
            "-key2",
            &certs.path("rsa.key"),
        ],
    );
    let pem = server.session(&dir, "tls12_ids", &["-tls1_2", "-servername", "localhost"]);
    let s = check_real(&certs, "tls12_ids", &pem);
    assert_eq!(s.version(), ProtocolVersion::TLS1_2);
    assert_eq!(s.id().as_bytes().len(), 32);
    assert_eq!(s.master_key().len(), 48);
    assert!(s.ticket().is_none(), "-no_ticket: resumption by id");
    assert_eq!(s.host_name(), Some("localhost"));
    assert_eq!(s.peer_certificates()[0].as_bytes(), &rsa_der[..]);
    assert_eq!(s.verify_result(), 18, "self-signed");
    assert!(s.extended_master_secret());
    assert!(s.cipher_name_is("ECDHE-RSA-AES256-GCM-SHA384"));
    drop(server);

    // TLS 1.2 with a ticket, ECDSA, ALPN.
    let server = Server::start(&certs, "ec", &["-alpn", "h2,http/1.1"]);
    let pem = server.session(&dir, "tls12_ticket", &["-tls1_2", "-alpn", "h2"]);
    let s = check_real(&certs, "tls12_ticket", &pem);
    assert_eq!(s.version(), ProtocolVersion::TLS1_2);
    let ticket = s.ticket().expect("a TLS 1.2 ticket");
    assert!(!ticket.data().is_empty());
    assert!(ticket.lifetime_hint() > 0);
    assert_eq!(s.alpn(), Some(&b"h2"[..]));
    assert_eq!(s.peer_certificates()[0].as_bytes(), &ec_der[..]);
    assert!(s.cipher_name_is("ECDHE-ECDSA-AES256-GCM-SHA384"));
    drop(server);

    // TLS 1.3 with tickets, ECDSA, ALPN, early data.
    let server = Server::start(&certs, "ec", &["-alpn", "h2,http/1.1", "-early_data"]);
    let pem = server.session(&dir, "tls13_early", &["-tls1_3", "-alpn", "h2"]);
    let s = check_real(&certs, "tls13_early", &pem);
    assert_eq!(s.version(), ProtocolVersion::TLS1_3);
    let ticket = s.ticket().expect("a TLS 1.3 ticket");
    assert_ne!(ticket.age_add(), 0);
    assert_eq!(
        s.max_early_data(),
        16384,
        "s_server -early_data allows 16384 bytes"
    );
    assert_eq!(s.alpn(), Some(&b"h2"[..]));
    assert_ne!(s.extras().kex_group, 0, "OpenSSL 3 records the group");
    assert!(s.cipher_name_is("TLS_AES_256_GCM_SHA384"));
    drop(server);

    // TLS 1.3, RSA, no early data, another suite.
    let server = Server::start(&certs, "rsa", &[]);
    let pem = server.session(
        &dir,
        "tls13_rsa",
        &["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
    );
    let s = check_real(&certs, "tls13_rsa", &pem);
    assert_eq!(s.max_early_data(), 0);
    assert_eq!(s.peer_certificates()[0].as_bytes(), &rsa_der[..]);
    assert!(s.cipher_name_is("TLS_CHACHA20_POLY1305_SHA256"));
}

trait CipherNameIs {
    fn cipher_name_is(&self, name: &str) -> bool;
}

impl CipherNameIs for Session {
    fn cipher_name_is(&self, name: &str) -> bool {
        wire::text::cipher_name(self.cipher()) == Some(name)
    }
}

/// Sessions we build, covering every field and the printing edge cases (a ticket whose
/// length is not a multiple of 16 and that ends in spaces, NUL-containing identities, an
/// unknown verify result, a version OpenSSL has no name for).
fn built_sessions(cert: &[u8]) -> Vec<Session> {
    let mut extras = OpensslExtras::default();
    extras.kex_group = 23;
    extras.psk_identity = Some(b"identity".as_slice().into());
    extras.psk_identity_hint = Some(b"hint\0hidden".as_slice().into());
    extras.srp_username = Some(b"alice".as_slice().into());
    extras.max_fragment_len_mode = 3;
    extras.ticket_appdata = Some(b"appdata".as_slice().into());
    let mut ticket = vec![b'A'; 37];
    ticket.extend(b"   ");
    ticket.extend([0, 0x7f, 0x80, 0xff]);
    let tls12 = SessionBuilder::new(ProtocolVersion::TLS1_2, 1_790_000_000)
        .cipher(CipherSuite(0xC02B))
        .id(SessionId::new(&(0..32).collect::<Vec<u8>>()).unwrap())
        .sid_ctx(SidCtx::new(b"my context").unwrap())
        .master_key(MasterKey::new(&[0x11; 48]).unwrap())
        .timeout(300)
        .peer_certificates(CertificateDer::chain([cert]).unwrap())
        .host_name(Some(HostName::new("www.example.org").unwrap()))
        .alpn(Some(AlpnProtocol::new(b"http/1.1").unwrap()))
        .ticket(Some(Ticket::new(&ticket, 100_000, 0).unwrap()))
        .extended_master_secret(true)
        .verify_result(20)
        .extras(extras)
        .build();
    let tls13 = SessionBuilder::new(ProtocolVersion::TLS1_3, 1)
        .cipher(CipherSuite(0x1301))
        .master_key(MasterKey::new(&[0x22; 32]).unwrap())
        .timeout(u32::MAX.into())
        .ticket(Some(Ticket::new(&[9; 16], 604_800, 0x1234_5678).unwrap()))
        .max_early_data(u32::MAX)
        .verify_result(94)
        .build();
    let odd = SessionBuilder::new(ProtocolVersion::new(0x0399).unwrap(), 7)
        .cipher(CipherSuite(0x009C))
        .id(SessionId::new(&[0xEE]).unwrap())
        .master_key(MasterKey::new(&[0x33; 100]).unwrap())
        .verify_result(95)
        .build();
    let dtls = SessionBuilder::new(ProtocolVersion::DTLS1_2, 1_000)
        .cipher(CipherSuite(0xC030))
        .id(SessionId::new(&[0x42; 8]).unwrap())
        .build();
    vec![tls12, tls13, odd, dtls]
}

#[test]
fn openssl_reads_what_we_write() {
    let certs = Certs::new();
    let cert = certs.der("rsa");
    for (i, session) in built_sessions(&cert).iter().enumerate() {
        let pem_file = certs.dir.path().join(format!("ours{i}.pem"));
        std::fs::write(&pem_file, wire::to_pem(session).unwrap().as_bytes()).unwrap();
        let (text, der) = sess_id(&pem_file, "PEM");
        assert_eq!(*openssl_text(session), text, "session {i}: sess_id -text");
        assert_eq!(
            *wire::to_der(session).unwrap(),
            der,
            "session {i}: OpenSSL writes back our bytes"
        );

        let der_file = certs.dir.path().join(format!("ours{i}.der"));
        std::fs::write(&der_file, wire::to_der(session).unwrap()).unwrap();
        let (text, der) = sess_id(&der_file, "DER");
        assert_eq!(*openssl_text(session), text, "session {i}, from DER");
        assert_eq!(*wire::to_der(session).unwrap(), der);
    }
}

#[test]
fn what_openssl_refuses_we_refuse_with_a_reason() {
    let certs = Certs::new();
    // A 33-byte session id, built by hand.
    let mut body = vec![
        0x02, 0x01, 0x01, 0x02, 0x02, 0x03, 0x03, 0x04, 0x02, 0xC0, 0x2F, 0x04, 33,
    ];
    body.extend([7; 33]);
    body.extend([0x04, 0x00]);
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    let file = certs.dir.path().join("long_id.der");
    std::fs::write(&file, &der).unwrap();
    let status = Command::new("openssl")
        .args(["sess_id", "-inform", "DER", "-noout", "-in"])
        .arg(&file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!status.status.success(), "OpenSSL refuses a 33-byte id");
    let err = wire::from_der(&der).unwrap_err();
    assert!(err.to_string().contains("session_id"), "{err}");

    // Trailing garbage in a file: OpenSSL reads one session and ignores the rest; we say so.
    let session = &built_sessions(&certs.der("ec"))[1];
    let mut der = wire::to_der(session).unwrap().to_vec();
    der.push(0);
    assert!(matches!(
        wire::from_der(&der),
        Err(wire::DecodeError::TrailingBytes { len: 1, .. })
    ));
}
