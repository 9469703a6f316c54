//! Atomic writes: the data goes to a temporary file in the target's
//! directory, is flushed and synced, then renamed over the target. A crash
//! or an error leaves either the old file or no file, never half a file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{k}", std::process::id()))
}

/// Write `path` atomically with the callback `f`.
///
/// # Errors
/// `Error::Io` naming `path` if the temp file cannot be created, written,
/// synced or renamed; the temp file is removed and the target left as it was.
pub fn atomic_write(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::new(file);
        f(&mut w)?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Write a text file atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    atomic_write(path, |w| w.write_all(text.as_bytes()))
}
