//! `sesscache convert`: a session file from PEM to DER or back.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use zeroize::Zeroizing;

use crate::session_file;

/// The form to write.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum To {
    /// Binary DER, as `openssl sess_id -outform DER` writes it.
    Der,
    /// PEM labelled `SSL SESSION PARAMETERS`.
    Pem,
}

/// The options of `sesscache convert`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The session, PEM or DER (told apart by its first bytes); `-` reads standard input.
    file: PathBuf,
    /// The form to write.
    #[arg(long, value_enum)]
    to: To,
    /// Where to write (default: standard output). The file, new or replaced, is readable by
    /// its owner only: it holds the session's secret.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let (session, _) = session_file::read(&args.file)?;
    let bytes: Zeroizing<Vec<u8>> = match args.to {
        To::Der => session_der::to_der(&session)?,
        To::Pem => Zeroizing::new(session_der::to_pem(&session)?.as_bytes().to_vec()),
    };
    match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            if matches!(args.to, To::Der) && out.is_terminal() {
                bail!("not writing binary DER to a terminal: give -o FILE or redirect the output");
            }
            out.write_all(&bytes)?;
            out.flush()?;
        }
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // An existing file keeps its mode when opened: make it owner-only before the
            // secret is in it.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot make {} owner-only", path.display()))?;
            }
            file.write_all(&bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}
