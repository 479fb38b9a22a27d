//! `sesscache inspect`: a session file printed as `openssl sess_id -text -noout` prints it,
//! or as JSON.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::{json, Value};
use session_core::SessionData;
use session_der::text::{
    cipher_name, hex_upper, openssl_text, protocol_name, verify_result_string,
};
use session_der::Format;

use crate::session_file;

/// The options of `sesscache inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The session: PEM (`SSL SESSION PARAMETERS`, as `openssl s_client -sess_out` saves it)
    /// or DER, told apart by its first bytes; `-` reads standard input.
    file: PathBuf,
    /// Print JSON instead of OpenSSL's text. Secrets (the master key or resumption secret,
    /// the ticket) are left out unless --show-secrets is given.
    #[arg(long)]
    json: bool,
    /// With --json: include the secrets.
    #[arg(long, requires = "json")]
    show_secrets: bool,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let (session, format) = session_file::read(&args.file)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = to_json(&session, format, args.show_secrets);
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        out.write_all(openssl_text(&session).as_bytes())?;
    }
    Ok(())
}

fn to_json(s: &SessionData, format: Format, show_secrets: bool) -> Value {
    let e = s.extras();
    let text = |b: &Option<Box<[u8]>>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let secret = |hex: String| {
        if show_secrets {
            Value::from(hex)
        } else {
            Value::Null
        }
    };
    let ticket = s.ticket().map(|t| {
        json!({
            "length": t.data().len(),
            "lifetime_hint": t.lifetime_hint(),
            "age_add": if show_secrets { Value::from(t.age_add()) } else { Value::Null },
            "data": secret(hex_upper(t.data())),
        })
    });
    json!({
        "format": match format { Format::Der => "der", Format::Pem => "pem" },
        "protocol": protocol_name(s.version()),
        "protocol_version": format!("{:#06x}", s.version().wire()),
        "cipher": cipher_name(s.cipher()),
        "cipher_id": format!("{:#06x}", s.cipher().0),
        "session_id": hex_upper(s.id().as_bytes()),
        "sid_ctx": hex_upper(s.sid_ctx().as_bytes()),
        "master_key_length": s.master_key().len(),
        "master_key": secret(hex_upper(s.master_key())),
        "secrets_shown": show_secrets,
        "time": s.time(),
        "timeout": s.timeout(),
        "expiry": s.expiry(),
        "peer_certificate_length": s.peer_certificates().first().map(|c| c.as_bytes().len()),
        "hostname": s.host_name(),
        "alpn": s.alpn().map(|a| String::from_utf8_lossy(a).into_owned()),
        "ticket": ticket,
        "max_early_data": s.max_early_data(),
        "extended_master_secret": s.extended_master_secret(),
        "verify_result": s.verify_result(),
        "verify_result_meaning": verify_result_string(s.verify_result()),
        "resumable": s.is_resumable(),
        "kex_group": e.kex_group,
        "psk_identity": text(&e.psk_identity),
        "psk_identity_hint": text(&e.psk_identity_hint),
        "srp_username": text(&e.srp_username),
        "compression": e.compression,
        "max_fragment_len_mode": e.max_fragment_len_mode,
        "ticket_appdata_length": e.ticket_appdata.as_ref().map(|b| b.len()),
        "peer_raw_public_key_length": e.peer_raw_public_key.as_ref().map(|b| b.len()),
        "other_flags": e.other_flags,
    })
}
