//! Files etmemd runs or loads as plug-ins (a thirdparty engine's `exec=` program or
//! `libname=` library, spec §8.2): the file a path leads to (symlinks followed) must be a
//! regular file owned by root:root with mode exactly 0500 or 0700, as upstream demands.
//! Unlike upstream, which checked a path and then loaded the path again, every check is
//! made on the open file, and the file stays open: what later runs (through its
//! descriptor, [`crate::sys::exec_fd`]) or loads is the file that was checked, whatever
//! happens to the path meanwhile.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

use super::file_stamp::FileStamp;
use crate::error::{Error, Kind, Result};

/// The modes a plug-in may have: only its owner, root, may read, write or run it.
pub const MODES: [u32; 2] = [0o500, 0o700];

/// A plug-in file, open and checked.
#[derive(Debug)]
pub struct TrustedFile {
    file: File,
    resolved: String,
    stamp: FileStamp,
    script: bool,
}

impl TrustedFile {
    /// Open the file `path` leads to and check it. The error's message is the reason
    /// alone (the caller says which key named the path): kind `NotFound` when there is
    /// no such file, `Invalid` when the file fails a check.
    pub fn open(path: &str) -> Result<TrustedFile> {
        // Look before opening: a device or FIFO is refused unopened (opening one may block
        // or act), then the file opened is checked, which is what counts.
        let meta = std::fs::metadata(path).map_err(|e| not_opened(path, e))?;
        let shown = std::fs::canonicalize(path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.to_string());
        check(&meta, &shown)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| not_opened(path, e))?;
        let file = above_stdio(file)?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("stat {shown}"), e))?;
        // The name of the file really opened, should the path have changed meanwhile.
        let resolved = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map(|p| p.display().to_string())
            .unwrap_or(shown);
        check(&meta, &resolved)?;
        let mut magic = [0u8; 2];
        let script = file.read_at(&mut magic, 0).is_ok_and(|n| n == 2) && &magic == b"#!";
        Ok(TrustedFile {
            file,
            resolved,
            stamp: FileStamp::of(&meta),
            script,
        })
    }

    /// The file's path when it was opened, symlinks resolved.
    pub fn resolved(&self) -> &str {
        &self.resolved
    }

    /// The open file (close-on-exec).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// True when the file starts with `#!`: the kernel runs it through an interpreter,
    /// which reads the script from `/dev/fd/N`, so its descriptor must stay open across
    /// the exec.
    pub fn is_script(&self) -> bool {
        self.script
    }

    /// Check the open file again: still root's with a plug-in's mode, and not written
    /// since it was opened. The error's message is the reason alone.
    pub fn recheck(&self) -> Result<()> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", self.resolved), e))?;
        check(&meta, &self.resolved)?;
        if !FileStamp::of(&meta).same_contents(&self.stamp) {
            return Err(Error::invalid(format!(
                "{} was written since it was checked; delete the engine and add it again \
                 to use the file as it is now",
                self.resolved
            )));
        }
        Ok(())
    }

    /// True when `path` still leads to this file (not to one put in its place).
    pub fn path_leads_here(&self, path: &str) -> bool {
        std::fs::metadata(path)
            .is_ok_and(|m| (m.dev(), m.ino()) == (self.stamp.dev, self.stamp.ino))
    }
}

/// The error for a path that could not be looked at or opened.
fn not_opened(path: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            Kind::NotFound,
            format!("no such file (nothing at {path}, or a symlink to nothing)"),
        ),
        _ => Error::new(Kind::Invalid, format!("cannot open it: {e}")),
    }
}

/// The type, owner and mode checks; `shown` names the file.
fn check(meta: &std::fs::Metadata, shown: &str) -> Result<()> {
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(Error::invalid(format!(
            "{shown} is {what}; a plug-in is a regular file"
        )));
    }
    if (meta.uid(), meta.gid()) != (0, 0) {
        return Err(Error::invalid(format!(
            "{shown} is owned by uid {} gid {}; a plug-in must be owned by root:root \
             (chown root:root {shown})",
            meta.uid(),
            meta.gid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if !MODES.contains(&mode) {
        return Err(Error::invalid(format!(
            "{shown} has mode {mode:04o}; a plug-in must have mode 0500 or 0700, so that \
             only root may read, write or run it (chmod 700 {shown})"
        )));
    }
    Ok(())
}

/// `file` on a descriptor above 2, so that setting up a child's standard streams can
/// never close it.
fn above_stdio(file: File) -> Result<File> {
    if file.as_raw_fd() > 2 {
        return Ok(file);
    }
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and returns a new descriptor or -1; no
    // pointers.
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(Error::io(
            "fcntl(F_DUPFD_CLOEXEC)",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by fcntl and is owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A scratch directory of its own for each test, removed on drop.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d =
                std::env::temp_dir().join(format!("etmem-trusted-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }

        fn file(&self, name: &str, text: &str, mode: u32) -> String {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p.display().to_string()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// True as root; otherwise says why the test stops here (a failure where every test
    /// must run: `ETMEM_REQUIRE_ALL=1`, as CI sets).
    fn root() -> bool {
        if crate::sys::euid() == 0 {
            return true;
        }
        assert_ne!(
            std::env::var("ETMEM_REQUIRE_ALL").as_deref(),
            Ok("1"),
            "needs root: root-owned files"
        );
        eprintln!("skipped: needs root (root-owned files)");
        false
    }

    fn reason(path: &str) -> (Kind, String) {
        let e = TrustedFile::open(path).unwrap_err();
        (e.kind, e.into_info().msg)
    }

    #[test]
    fn only_roots_files_of_mode_0500_or_0700() {
        if !root() {
            return;
        }
        let d = Dir::new("modes");
        for mode in MODES {
            let p = d.file(&format!("ok{mode:o}"), "#!/bin/sh\n", mode);
            let t = TrustedFile::open(&p).unwrap();
            assert_eq!(t.resolved(), p);
            assert!(t.is_script());
            t.recheck().unwrap();
        }
        for mode in [0o755, 0o770, 0o707, 0o600, 0o4700, 0o1700] {
            let p = d.file(&format!("bad{mode:o}"), "x", mode);
            assert_eq!(
                reason(&p),
                (
                    Kind::Invalid,
                    format!("{p} has mode {mode:04o}; a plug-in must have mode 0500 or 0700, so that only root may read, write or run it (chmod 700 {p})")
                )
            );
        }
        let p = d.file("elf", "\x7fELF", 0o700);
        assert!(!TrustedFile::open(&p).unwrap().is_script());
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let (_, msg) = reason(&p);
        assert!(
            msg.contains("is owned by uid 65534 gid 0; a plug-in must be owned by root:root"),
            "{msg}"
        );
        std::os::unix::fs::chown(&p, Some(0), Some(65534)).unwrap();
        assert!(reason(&p).1.contains("is owned by uid 0 gid 65534"));
    }

    #[test]
    fn missing_files_directories_and_links() {
        let d = Dir::new("kinds");
        let missing = d.0.join("none").display().to_string();
        assert_eq!(reason(&missing).0, Kind::NotFound);
        assert!(reason(&missing).1.starts_with("no such file"));
        let dir = d.0.display().to_string();
        assert_eq!(
            reason(&dir),
            (
                Kind::Invalid,
                format!("{dir} is a directory; a plug-in is a regular file")
            )
        );
        assert!(reason("/dev/null")
            .1
            .contains("/dev/null is not a regular file"));
        // A link is followed, and the file it leads to is what is checked and named.
        let bad = d.file("bad", "x", 0o777);
        let link = d.0.join("link");
        std::os::unix::fs::symlink(&bad, &link).unwrap();
        let (_, msg) = reason(link.to_str().unwrap());
        assert!(msg.starts_with(&format!("{bad} ")), "{msg}");
    }

    #[test]
    fn a_file_changed_after_the_check_fails_the_recheck() {
        if !root() {
            return;
        }
        let d = Dir::new("changed");
        let p = d.file("p", "#!/bin/sh\n", 0o700);
        let t = TrustedFile::open(&p).unwrap();
        assert!(t.path_leads_here(&p));
        // Another mode a plug-in may have passes; one it may not fails.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o500)).unwrap();
        t.recheck().unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(t.recheck().unwrap_err().msg.contains("has mode 0755"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Another file renamed over the path: the open file is the old one, unchanged.
        let q = d.file("q", "#!/bin/sh\necho other\n", 0o700);
        std::fs::rename(&q, &p).unwrap();
        assert!(!t.path_leads_here(&p));
        t.recheck().unwrap();
        // Written in place: refused.
        let r = d.file("r", "#!/bin/sh\n", 0o700);
        let t = TrustedFile::open(&r).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&r)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"echo more\n"))
            .unwrap();
        assert!(t
            .recheck()
            .unwrap_err()
            .msg
            .contains("was written since it was checked"));
    }
}
