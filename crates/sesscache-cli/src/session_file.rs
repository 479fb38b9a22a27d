//! Reading a session file (`FILE` or `-` for stdin), shared by `inspect` and `convert`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use session_core::Session;
use session_der::Format;
use zeroize::Zeroizing;

/// Larger than any session OpenSSL writes (a certificate, a 64 KiB ticket, a 512-byte key):
/// a bigger input is refused before it is read whole.
const MAX_INPUT: usize = 1 << 20;

/// Reads and decodes the session in `path` (`-`: stdin), in either form.
pub(crate) fn read(path: &Path) -> Result<(Session, Format)> {
    let bytes = read_bytes(path)?;
    session_der::decode(&bytes)
        .with_context(|| format!("{} is not a TLS session in PEM or DER", shown(path)))
}

/// The file's bytes, in one buffer allocated once (no reallocation leaves a copy of the
/// secret behind) and zeroized when dropped.
fn read_bytes(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_INPUT + 1));
    let limit = (MAX_INPUT + 1) as u64;
    let read = if path == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut buf))
    };
    read.with_context(|| format!("cannot read {}", shown(path)))?;
    if buf.len() > MAX_INPUT {
        bail!(
            "{} is larger than {} bytes, more than any TLS session",
            shown(path),
            MAX_INPUT
        );
    }
    Ok(buf)
}

pub(crate) fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}
