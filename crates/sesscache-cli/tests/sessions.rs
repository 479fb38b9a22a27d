//! `sesscache inspect` and `convert` on session files: the same text as `openssl sess_id`,
//! secrets kept out of JSON unless asked for, lossless conversion, and exit code 2 with a
//! clear message for unreadable or malformed input.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use session_core::{
    AlpnProtocol, CipherSuite, MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId,
    Ticket,
};

fn sesscache(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sesscache"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn sesscache_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sesscache"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn session() -> Session {
    SessionBuilder::new(ProtocolVersion::TLS1_3, 1_790_000_000)
        .cipher(CipherSuite(0x1301))
        .id(SessionId::new(&[0xA5; 32]).unwrap())
        .master_key(MasterKey::new(&[0x3C; 32]).unwrap())
        .timeout(7200)
        .alpn(Some(AlpnProtocol::new(b"h2").unwrap()))
        .ticket(Some(Ticket::new(&[0x77; 50], 7200, 0xABCD).unwrap()))
        .max_early_data(16384)
        .build()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn ok(out: &Output) -> &[u8] {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    &out.stdout
}

#[test]
fn inspect_prints_what_openssl_sess_id_prints() {
    let dir = tempfile::tempdir().unwrap();
    let s = session();
    let pem = write(
        dir.path(),
        "s.pem",
        session_der::to_pem(&s).unwrap().as_bytes(),
    );
    let der = write(dir.path(), "s.der", &session_der::to_der(&s).unwrap());
    let openssl = Command::new("openssl")
        .args(["sess_id", "-text", "-noout", "-in", &pem])
        .output()
        .expect("the `openssl` command must be installed (.ci/run installs it)");
    assert!(openssl.status.success());
    assert_eq!(ok(&sesscache(&["inspect", &pem])), &openssl.stdout[..]);
    assert_eq!(ok(&sesscache(&["inspect", &der])), &openssl.stdout[..]);
    let from_stdin = sesscache_stdin(&["inspect", "-"], &std::fs::read(&pem).unwrap());
    assert_eq!(ok(&from_stdin), &openssl.stdout[..]);
}

#[test]
fn json_hides_secrets_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let pem = write(
        dir.path(),
        "s.pem",
        session_der::to_pem(&session()).unwrap().as_bytes(),
    );
    let key_hex = "3C".repeat(32);

    let out = sesscache(&["inspect", "--json", &pem]);
    let text = String::from_utf8(ok(&out).to_vec()).unwrap();
    assert!(
        !text.contains(&key_hex),
        "the key must not be printed: {text}"
    );
    assert!(!text.contains(&"77".repeat(50)), "nor the ticket");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "pem");
    assert_eq!(v["protocol"], "TLSv1.3");
    assert_eq!(v["cipher"], "TLS_AES_128_GCM_SHA256");
    assert_eq!(v["session_id"], "A5".repeat(32));
    assert_eq!(v["master_key"], Value::Null);
    assert_eq!(v["master_key_length"], 32);
    assert_eq!(v["alpn"], "h2");
    assert_eq!(v["ticket"]["length"], 50);
    assert_eq!(v["ticket"]["data"], Value::Null);
    assert_eq!(v["max_early_data"], 16384);
    assert_eq!(v["expiry"], 1_790_007_200u64);

    let v: Value = serde_json::from_slice(ok(&sesscache(&[
        "inspect",
        "--json",
        "--show-secrets",
        &pem,
    ])))
    .unwrap();
    assert_eq!(v["master_key"], key_hex);
    assert_eq!(v["ticket"]["data"], "77".repeat(50));
    assert_eq!(v["ticket"]["age_add"], 0xABCD);
}

#[test]
fn convert_is_lossless_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let s = session();
    let pem_bytes = session_der::to_pem(&s).unwrap().as_bytes().to_vec();
    let pem = write(dir.path(), "s.pem", &pem_bytes);
    let der_path = dir.path().join("s.der");
    let der = der_path.to_str().unwrap();
    ok(&sesscache(&["convert", &pem, "--to", "der", "-o", der]));
    assert_eq!(
        std::fs::read(der).unwrap(),
        *session_der::to_der(&s).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(der).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the file holds a secret: owner only");
    }
    assert_eq!(
        ok(&sesscache(&["convert", der, "--to", "pem"])),
        &pem_bytes[..]
    );
    // Onto an existing file that others may read: it ends up owner-only too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let existing = write(
            dir.path(),
            "existing.pem",
            b"old contents, longer than nothing\n",
        );
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        ok(&sesscache(&[
            "convert", der, "--to", "pem", "-o", &existing,
        ]));
        assert_eq!(std::fs::read(&existing).unwrap(), pem_bytes);
        let mode = std::fs::metadata(&existing).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "an existing file is made owner-only");
    }
    // What `openssl sess_id -text` prints (text, then the PEM) is read as the PEM alone.
    let text_then_pem = [
        b"SSL-Session:\n    Protocol  : TLSv1.3\n".as_slice(),
        &pem_bytes,
    ]
    .concat();
    let with_text = write(dir.path(), "text.pem", &text_then_pem);
    assert_eq!(
        ok(&sesscache(&["convert", &with_text, "--to", "pem"])),
        &pem_bytes[..]
    );
    let piped = sesscache_stdin(&["convert", "-", "--to", "der"], &pem_bytes);
    assert_eq!(ok(&piped), &session_der::to_der(&s).unwrap()[..]);
}

fn fails_with(out: &Output, words: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for w in words {
        assert!(err.contains(w), "{w:?} not in {err:?}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_is_exit_code_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    fails_with(
        &sesscache(&["inspect", missing.to_str().unwrap()]),
        &["cannot read", "missing.pem"],
    );
    let text = write(dir.path(), "notes.txt", b"hello\n");
    fails_with(
        &sesscache(&["inspect", &text]),
        &["not a TLS session", "SEQUENCE"],
    );

    let pem = session_der::to_pem(&session()).unwrap();
    let cert = write(
        dir.path(),
        "cert.pem",
        pem.replace("SSL SESSION PARAMETERS", "CERTIFICATE")
            .as_bytes(),
    );
    fails_with(
        &sesscache(&["inspect", &cert]),
        &["CERTIFICATE", "SSL SESSION PARAMETERS"],
    );

    let der = session_der::to_der(&session()).unwrap();
    let cut = write(dir.path(), "cut.der", &der[..der.len() - 10]);
    fails_with(
        &sesscache(&["convert", &cut, "--to", "pem"]),
        &["malformed DER", "byte"],
    );

    let mut longer = der.to_vec();
    longer.extend(b"junk");
    let junk = write(dir.path(), "junk.der", &longer);
    fails_with(&sesscache(&["inspect", &junk]), &["4 trailing bytes"]);

    let empty = write(dir.path(), "empty", b"");
    fails_with(&sesscache(&["inspect", &empty]), &["empty"]);

    let huge = write(dir.path(), "huge", &vec![0x30; (1 << 20) + 1]);
    fails_with(&sesscache(&["inspect", &huge]), &["larger than"]);

    fails_with(&sesscache(&["convert", &cut, "--to", "xml"]), &["xml"]);
    fails_with(&sesscache(&["inspect"]), &["FILE"]);
}
