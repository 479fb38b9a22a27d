//! A session as `openssl sess_id -text -noout` prints it (OpenSSL 3's `SSL_SESSION_print`):
//! the same lines, field names and values, so the two can be compared line by line.

use std::fmt::Write as _;

use session_core::{CipherSuite, ProtocolVersion, SessionData};
use zeroize::Zeroizing;

use crate::names::{CIPHERS, VERIFY_RESULTS};

/// The session as `SSL_SESSION_print` prints it, master key included (as OpenSSL prints it):
/// the text zeroizes itself when dropped.
#[doc(alias = "SSL_SESSION_print")]
pub fn openssl_text(s: &SessionData) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(
        1024 + 5 * s.ticket().map_or(0, |t| t.data().len()),
    ));
    // Writing to a String cannot fail.
    let _ = write_text(&mut out, s);
    out
}

fn write_text(out: &mut String, s: &SessionData) -> std::fmt::Result {
    let tls13 = s.version() == ProtocolVersion::TLS1_3;
    let extras = s.extras();
    out.push_str("SSL-Session:\n");
    writeln!(out, "    Protocol  : {}", protocol_name(s.version()))?;
    match cipher_name(s.cipher()) {
        Some(name) => writeln!(out, "    Cipher    : {name}")?,
        None => writeln!(out, "    Cipher    : {:04X}", s.cipher().0)?,
    }
    write!(out, "    Session-ID: {}", hex_upper(s.id().as_bytes()))?;
    write!(
        out,
        "\n    Session-ID-ctx: {}",
        hex_upper(s.sid_ctx().as_bytes())
    )?;
    let key_label = if tls13 {
        "Resumption PSK"
    } else {
        "Master-Key"
    };
    write!(out, "\n    {key_label}: ")?;
    for b in s.master_key() {
        write!(out, "{b:02X}")?;
    }
    write!(
        out,
        "\n    PSK identity: {}",
        c_string(&extras.psk_identity)
    )?;
    write!(
        out,
        "\n    PSK identity hint: {}",
        c_string(&extras.psk_identity_hint)
    )?;
    write!(
        out,
        "\n    SRP username: {}",
        c_string(&extras.srp_username)
    )?;
    let lifetime_hint = s
        .ticket()
        .map_or(extras.ticket_lifetime_hint, |t| t.lifetime_hint().into());
    if lifetime_hint != 0 {
        write!(
            out,
            "\n    TLS session ticket lifetime hint: {lifetime_hint} (seconds)"
        )?;
    }
    if let Some(ticket) = s.ticket() {
        out.push_str("\n    TLS session ticket:\n");
        dump_indent(out, ticket.data(), 4)?;
    }
    if extras.compression != 0 {
        write!(out, "\n    Compression: {}", extras.compression)?;
    }
    if s.time() != 0 {
        write!(out, "\n    Start Time: {}", s.time())?;
    }
    if s.timeout() != 0 {
        write!(out, "\n    Timeout   : {} (sec)", s.timeout())?;
    }
    out.push('\n');
    writeln!(
        out,
        "    Verify return code: {} ({})",
        s.verify_result(),
        verify_result_string(s.verify_result())
    )?;
    let ems = if s.extended_master_secret() {
        "yes"
    } else {
        "no"
    };
    writeln!(out, "    Extended master secret: {ems}")?;
    if tls13 {
        writeln!(out, "    Max Early Data: {}", s.max_early_data())?;
    }
    Ok(())
}

/// OpenSSL's name for a protocol version (`ssl_protocol_to_string`).
pub fn protocol_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::TLS1_3 => "TLSv1.3",
        ProtocolVersion::TLS1_2 => "TLSv1.2",
        ProtocolVersion::TLS1_1 => "TLSv1.1",
        ProtocolVersion::TLS1_0 => "TLSv1",
        ProtocolVersion::SSL3 => "SSLv3",
        ProtocolVersion::DTLS1_BAD => "DTLSv0.9",
        ProtocolVersion::DTLS1_0 => "DTLSv1",
        ProtocolVersion::DTLS1_2 => "DTLSv1.2",
        _ => "unknown",
    }
}

/// OpenSSL's name for a cipher suite (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`),
/// if OpenSSL 3.0 knows it.
pub fn cipher_name(cipher: CipherSuite) -> Option<&'static str> {
    CIPHERS
        .binary_search_by_key(&cipher.0, |&(id, _)| id)
        .ok()
        .map(|i| CIPHERS[i].1)
}

/// `X509_verify_cert_error_string`: what a verify result means.
pub fn verify_result_string(result: i64) -> &'static str {
    usize::try_from(result)
        .ok()
        .and_then(|i| VERIFY_RESULTS.get(i))
        .copied()
        .unwrap_or("unknown certificate verification error")
}

/// Bytes as upper-case hex, two digits each, no separator (how OpenSSL prints ids).
pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// A string OpenSSL keeps NUL-terminated, printed with `%s`: up to the first NUL, or "None".
fn c_string(bytes: &Option<Box<[u8]>>) -> std::borrow::Cow<'_, str> {
    match bytes {
        None => "None".into(),
        Some(b) => {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end])
        }
    }
}

/// `BIO_dump_indent`: 16 bytes a line, offset, hex with a `-` after the eighth, then the
/// printable characters.
fn dump_indent(out: &mut String, data: &[u8], indent: usize) -> std::fmt::Result {
    const WIDTH: usize = 16;
    for (row, chunk) in data.chunks(WIDTH).enumerate() {
        write!(out, "{:indent$}{:04x} - ", "", row * WIDTH)?;
        for j in 0..WIDTH {
            match chunk.get(j) {
                Some(b) => write!(out, "{b:02x}{}", if j == 7 { '-' } else { ' ' })?,
                None => out.push_str("   "),
            }
        }
        out.push_str("  ");
        out.extend(chunk.iter().map(|&c| {
            if (b' '..=b'~').contains(&c) {
                char::from(c)
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    Ok(())
}
