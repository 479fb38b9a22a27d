//! `sesscache keygen`: a new key for the fleet tier's key file.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use sesscache_redis::KeyRing;
use zeroize::Zeroizing;

/// The options of `sesscache keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Put the new key at the top of this key file (made, owner-only, if it does not exist;
    /// an existing file keeps its owner and mode, and a symlink stays one: the file it points
    /// to is written): it seals from then on, and the keys below it still open. Without it,
    /// the line is printed.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let line = KeyRing::generate_line()?;
    let Some(named) = &args.output else {
        std::io::stdout().write_all(line.as_bytes())?;
        return Ok(());
    };
    // A symlink stays in place: the file it points to is the one written.
    let path = &resolve(named)?;
    let (old, meta) = match std::fs::read_to_string(path) {
        Ok(text) => (Zeroizing::new(text), Some(std::fs::metadata(path)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Zeroizing::new(String::new()), None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if !old.trim().is_empty() {
        // Refuse to put a key on top of something that is not a key file.
        if let Err(e) = KeyRing::parse(&old) {
            bail!(
                "{} is not a key file ({e}); nothing written",
                path.display()
            );
        }
    }
    let mut text = Zeroizing::new(String::with_capacity(line.len() + old.len()));
    text.push_str(&line);
    text.push_str(&old);
    // Written beside it, then renamed over it: a crash leaves the old file whole.
    // A name of this run's own: a temporary file a crashed run left behind is no obstacle.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let file_name = path
        .file_name()
        .map_or_else(|| "keys".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{file_name}.{}.{stamp}.sesscache-tmp",
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    // An existing file's owner and mode go to its replacement; a new one stays owner-only.
    let kept = meta.map_or(Ok(()), |meta| {
        std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))
            .and_then(|()| file.set_permissions(meta.permissions()))
    });
    let written = kept
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    let ids = KeyRing::parse(&text)?.ids();
    eprintln!(
        "sesscache keygen: {} now holds {} key(s); {:08x} seals",
        named.display(),
        ids.len(),
        ids[0]
    );
    let mode = std::fs::metadata(path).map_or(0, |m| m.mode());
    if mode & 0o077 != 0 {
        eprintln!(
            "sesscache keygen: warning: {} keeps mode {:03o}, which others may read; \
             serve refuses it until `chmod 600 {}`",
            named.display(),
            mode & 0o777,
            named.display()
        );
    }
    Ok(())
}

/// The file `path` names: itself, or, through any symlinks, the file they point to (which
/// need not exist yet).
fn resolve(path: &Path) -> Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)
                    .with_context(|| format!("cannot read the symlink {}", path.display()))?;
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            _ => return Ok(path),
        }
    }
    bail!("{}: too many levels of symlinks", path.display())
}

/// How many symlinks in a row [`resolve`] follows (Linux's own limit).
const MAX_LINKS: usize = 40;
