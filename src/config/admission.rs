//! Which config files the daemon agrees to read (spec §4.1): regular files owned by root
//! (or by the daemon's own uid), mode exactly 0600 or 0400, at most 10 MiB. Unlike
//! upstream, which checked by path and then reopened by path, every check is made on the
//! one open file that is then read, so the file cannot be swapped in between.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Kind, Result};

/// The largest config file accepted, in bytes (10 MiB).
pub const MAX_SIZE: u64 = 10 * 1024 * 1024;

/// Resolves `name` (relative to the current directory), checks the file and reads it.
/// Returns the resolved path and the contents.
pub fn read(name: &str, allowed_uid: u32) -> Result<(String, Vec<u8>)> {
    if name.is_empty() {
        return Err(Error::invalid("no config file named"));
    }
    let path = std::fs::canonicalize(name).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(Kind::NotFound, format!("{name}: no such file")),
        _ => Error::io(name, e),
    })?;
    let shown = path.display().to_string();
    let file = open(&path).map_err(|e| Error::io(&shown, e))?;
    check(&file, &shown, allowed_uid)?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells a file that grew after the check.
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("read {shown}"), e))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(too_big(&shown, bytes.len() as u64));
    }
    Ok((shown, bytes))
}

/// Opens without following a final symlink (the path is already resolved, so one would
/// be a swap since), without blocking on a FIFO, and not leaking into children.
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// The type, owner, mode and size checks, on the open file.
fn check(file: &File, shown: &str, allowed_uid: u32) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("stat {shown}"), e))?;
    if meta.is_dir() {
        return Err(Error::invalid(format!(
            "{shown} is a directory, not a config file"
        )));
    }
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{shown} is not a regular file, so not a config file"
        )));
    }
    let uid = meta.uid();
    if uid != 0 && uid != allowed_uid {
        let also = if allowed_uid == 0 {
            String::new()
        } else {
            format!(" (or uid {allowed_uid}, which etmemd runs as)")
        };
        return Err(Error::invalid(format!(
            "{shown} is owned by uid {uid}; it must be owned by root{also}"
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode != 0o600 && mode != 0o400 {
        return Err(Error::invalid(format!(
            "{shown} has mode {mode:04o}; it must be 0600 or 0400 (chmod 600 {shown})"
        )));
    }
    if meta.len() > MAX_SIZE {
        return Err(too_big(shown, meta.len()));
    }
    Ok(())
}

fn too_big(shown: &str, len: u64) -> Error {
    Error::invalid(format!(
        "{shown} is {len} bytes; at most {MAX_SIZE} (10 MiB) are allowed"
    ))
}
