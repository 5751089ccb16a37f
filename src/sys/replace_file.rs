//! Replacing a file whole: the new contents go to a new file beside it, which is renamed
//! over the old one, so a reader sees the old file or the new one, never a half-written
//! one (a pid file, a heat map, a metrics file a collector reads at any moment).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replace `target` with `contents`, mode `mode`: written to a new file (O_EXCL and
/// O_NOFOLLOW, so never through a link planted there) in the same directory, synced, and
/// renamed over `target`. A link at `target` is replaced, never written through. The
/// error names the file.
pub fn replace(target: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    let path = target.display();
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = target
        .file_name()
        .ok_or_else(|| format!("{path} does not name a file"))?
        .to_string_lossy();
    for attempt in 0..16 {
        let tmp = dir.join(format!(".{base}.{}.{attempt}.tmp", std::process::id()));
        let mut f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", tmp.display())),
        };
        let done = f
            .write_all(contents)
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, target));
        return done.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{path}: {e}")
        });
    }
    Err(format!(
        "{path}: no temporary file could be created beside it"
    ))
}
