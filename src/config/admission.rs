//! Which config files the daemon agrees to read (spec §4.1): regular files owned by root
//! (or by the daemon's own uid), mode exactly 0600 or 0400, at most 10 MiB, and (unlike
//! upstream) not on a file system the kernel makes up, such as proc or sysfs. Unlike
//! upstream, which checked by path and then reopened by path, every check is made on the
//! one open file that is then read, so the file cannot be swapped in between; and unlike
//! upstream's `realpath` first, the path is opened as given, so that a file reached through
//! `/proc/PID/root` is the file in that process's mount namespace.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::statfs::{self, fstatfs, FsType};

use crate::error::{Error, Kind, Result};
use crate::sys::file_stamp::FileStamp;

/// The largest config file accepted, in bytes (10 MiB).
pub const MAX_SIZE: u64 = 10 * 1024 * 1024;

/// Opens `name` as given (relative to the current directory), checks the file and reads
/// it. Returns the name to show for the file (see [`open_named`]) and the contents.
pub fn read(name: &str, allowed_uid: u32) -> Result<(String, Vec<u8>)> {
    if name.is_empty() {
        return Err(Error::invalid("no config file named"));
    }
    let (file, shown) = open_named(name)?;
    let before = check(&file, &shown, allowed_uid)?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells a file that grew after the check.
    (&file)
        .take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("read {shown}"), e))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(too_big(&shown, bytes.len() as u64));
    }
    let after = file
        .metadata()
        .map_err(|e| Error::io(format!("stat {shown}"), e))?;
    unchanged(&shown, FileStamp::of(&before), FileStamp::of(&after))?;
    Ok((shown, bytes))
}

/// Refuses a file whose stamp changed between `before` and `after` its read: its text may
/// be half old, half new, or end in a line cut short (a wrong pid, say), as a file read
/// while its writer is still at work does.
fn unchanged(shown: &str, before: FileStamp, after: FileStamp) -> Result<()> {
    if before == after {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{shown} changed while it was being read (is it still being written?); write it \
         elsewhere and rename it into place"
    )))
}

/// Opens the file `name` names, and the name to show for it. The path is opened as given,
/// so that the kernel walks it: a magic link such as `/proc/PID/root` leads into that
/// process's mount namespace, where resolving it by hand (`realpath`) would lead into
/// ours, to another file or none. The file is shown by its resolved path when that names
/// the same file, else by the path opened.
///
/// The final component is never followed: when it is a symlink, its target is read and
/// opened in turn (relative to the link's directory as given, as the kernel would), so the
/// file opened in the end is not a symlink, and a link swapped in is at worst followed to a
/// file that must pass the same checks.
fn open_named(name: &str) -> Result<(File, String)> {
    let no_file = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(Kind::NotFound, format!("{name}: no such file")),
        _ => Error::io(name, e),
    };
    let mut path = PathBuf::from(name);
    // The kernel's limit on symlinks in one walk.
    for _ in 0..=40 {
        match open(&path) {
            Ok(file) => {
                let shown = std::fs::canonicalize(&path)
                    .ok()
                    .filter(|p| std::fs::metadata(p).is_ok_and(|m| same_file(&m, &file)))
                    .unwrap_or(path);
                return Ok((file, shown.display().to_string()));
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                // ELOOP also means too many links on the way; then there is no link to read.
                let target = std::fs::read_link(&path).map_err(|_| Error::io(name, e))?;
                path = match path.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Err(e) => return Err(no_file(e)),
        }
    }
    Err(Error::io(
        name,
        std::io::Error::from_raw_os_error(libc::ELOOP),
    ))
}

/// Whether `meta` is the metadata of the open `file`.
fn same_file(meta: &std::fs::Metadata, file: &File) -> bool {
    file.metadata()
        .is_ok_and(|f| f.dev() == meta.dev() && f.ino() == meta.ino())
}

/// Opens for reading without following a final symlink, without blocking on a FIFO, and
/// not leaking into children.
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// The type, file system, owner, mode and size checks, on the open file; returns its
/// metadata.
fn check(file: &File, shown: &str, allowed_uid: u32) -> Result<std::fs::Metadata> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("stat {shown}"), e))?;
    if meta.is_dir() {
        return Err(Error::invalid(format!(
            "{shown} is a directory, not a config file"
        )));
    }
    let fs = fstatfs(file).map_err(|e| Error::io(format!("statfs {shown}"), e.into()))?;
    if let Some(fs) = kernel_fs(fs.filesystem_type()) {
        return Err(Error::invalid(format!(
            "{shown}: a file on {fs} is not a config file"
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
    Ok(meta)
}

/// The file systems whose files the kernel makes up as they are read (process state,
/// kernel settings, secrets such as `/proc/PID/environ`): never a config file, whatever
/// their owner and mode, so their text is never read and echoed in a parse error. The
/// magic numbers nix lacks are from the kernel's `include/uapi/linux/magic.h`.
const KERNEL_FS: [(FsType, &str); 15] = [
    (statfs::PROC_SUPER_MAGIC, "proc"),
    (statfs::SYSFS_MAGIC, "sysfs"),
    (statfs::DEBUGFS_MAGIC, "debugfs"),
    (statfs::TRACEFS_MAGIC, "tracefs"),
    (statfs::CGROUP_SUPER_MAGIC, "cgroup"),
    (statfs::CGROUP2_SUPER_MAGIC, "cgroup2"),
    (statfs::SECURITYFS_MAGIC, "securityfs"),
    (FsType(0x6265_6570), "configfs"),
    (statfs::DEVPTS_SUPER_MAGIC, "devpts"),
    (statfs::BPF_FS_MAGIC, "bpf"),
    (FsType(0x6165_676c), "pstore"),
    (FsType(0xde5e_81e4_u32 as _), "efivarfs"),
    (statfs::SELINUX_MAGIC, "selinuxfs"),
    (statfs::SMACK_MAGIC, "smackfs"),
    (statfs::NSFS_MAGIC, "nsfs"),
];

/// The name of `fs` when it is one of the [`KERNEL_FS`].
fn kernel_fs(fs: FsType) -> Option<&'static str> {
    KERNEL_FS
        .iter()
        .find(|(magic, _)| magic.0 as u32 == fs.0 as u32)
        .map(|&(_, name)| name)
}

fn too_big(shown: &str, len: u64) -> Error {
    Error::invalid(format!(
        "{shown} is {len} bytes; at most {MAX_SIZE} (10 MiB) are allowed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;
    use std::os::unix::fs::PermissionsExt;

    const GOOD: &str = "[project]\nname=test\nloop=1\ninterval=1\nsleep=1\n";

    /// A fresh path in the temp dir, unique to this process and `tag`.
    fn temp(tag: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("etmem-config-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&path);
        path
    }

    fn write(tag: &str, text: &str, mode: u32) -> PathBuf {
        let path = temp(tag);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn me() -> u32 {
        crate::sys::euid()
    }

    #[test]
    fn modes_0600_and_0400_only() {
        for mode in [0o600, 0o400, 0o4600] {
            let path = write(&format!("mode{mode:o}"), GOOD, mode);
            let c = load(path.to_str().unwrap(), me()).unwrap();
            assert_eq!(c.path, path.to_str().unwrap());
            assert_eq!(c.projects[0].origin.file, c.path);
            std::fs::remove_file(&path).unwrap();
        }
        for mode in [0o644, 0o640, 0o700, 0o200] {
            let path = write(&format!("bad{mode:o}"), GOOD, mode);
            let shown = path.display();
            let e = load(path.to_str().unwrap(), me()).unwrap_err();
            assert_eq!(e.kind, Kind::Invalid);
            assert_eq!(
                e.msg,
                format!("{shown} has mode {mode:04o}; it must be 0600 or 0400 (chmod 600 {shown})")
            );
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn directories_and_missing_files() {
        let dir = temp("dir");
        std::fs::create_dir(&dir).unwrap();
        let e = load(dir.to_str().unwrap(), me()).unwrap_err();
        assert_eq!(
            e.msg,
            format!("{} is a directory, not a config file", dir.display())
        );
        std::fs::remove_dir(&dir).unwrap();
        let missing = temp("missing");
        let e = load(missing.to_str().unwrap(), me()).unwrap_err();
        assert_eq!(e.kind, Kind::NotFound);
        assert_eq!(e.msg, format!("{}: no such file", missing.display()));
        assert_eq!(load("", me()).unwrap_err().kind, Kind::Invalid);
    }

    #[test]
    fn size_limit() {
        let path = write("big", GOOD, 0o600);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(MAX_SIZE + 1).unwrap();
        let e = load(path.to_str().unwrap(), me()).unwrap_err();
        assert_eq!(
            e.msg,
            format!(
                "{} is 10485761 bytes; at most 10485760 (10 MiB) are allowed",
                path.display()
            )
        );
        // Exactly 10 MiB passes admission (and then fails parsing on the NUL bytes' line).
        file.set_len(MAX_SIZE).unwrap();
        let e = load(path.to_str().unwrap(), me()).unwrap_err();
        assert!(!e.msg.contains("bytes; at most"), "{}", e.msg);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn symlinks_are_resolved() {
        let target = write("linked", GOOD, 0o600);
        let link = temp("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let c = load(link.to_str().unwrap(), me()).unwrap();
        assert_eq!(c.path, target.to_str().unwrap());
        std::fs::remove_file(&link).unwrap();
        std::fs::remove_file(&target).unwrap();
        // A link to itself is followed only as far as the kernel would.
        std::os::unix::fs::symlink(link.file_name().unwrap(), &link).unwrap();
        let e = load(link.to_str().unwrap(), me()).unwrap_err();
        assert_eq!(
            e.msg,
            format!(
                "{}: {}",
                link.display(),
                std::io::Error::from_raw_os_error(libc::ELOOP)
            )
        );
        std::fs::remove_file(&link).unwrap();
    }

    /// A process in a mount namespace of its own, killed when dropped.
    struct Namespaced(std::process::Child);

    impl Drop for Namespaced {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_file_through_proc_pid_root_is_read_by_the_path_given() {
        if me() != 0 {
            eprintln!("skipped: needs root (a mount namespace)");
            return;
        }
        // A tmpfs mounted on `dir` in another mount namespace only: its files exist through
        // /proc/PID/root, but resolving that magic link gives `dir` in ours, where x.conf
        // is another file and link.conf (to x.conf) none.
        let dir = temp("mntns");
        std::fs::create_dir(&dir).unwrap();
        let d = dir.display();
        let ours = write("mntns/x.conf", &GOOD.replace("test", "ours"), 0o600);
        let script = format!(
            "mount -t tmpfs none {d} && printf '%s' '{GOOD}' >{d}/x.conf && chmod 600 {d}/x.conf \
             && ln -s x.conf {d}/link.conf && touch {d}/ready && exec sleep 60"
        );
        let Ok(child) = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .spawn()
        else {
            eprintln!("skipped: unshare is not installed");
            let _ = std::fs::remove_dir(&dir);
            return;
        };
        let child = Namespaced(child);
        let root = format!("/proc/{}/root{d}", child.0.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !Path::new(&format!("{root}/ready")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the namespace never got ready"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let given = format!("{root}/x.conf");
        let c = load(&given, 0).unwrap();
        assert_eq!(c.path, given);
        assert_eq!(c.projects[0].name, "test");
        let missing = format!("{root}/missing.conf");
        assert_eq!(
            load(&missing, 0).unwrap_err().msg,
            format!("{missing}: no such file")
        );
        // A final symlink is followed there too, to the file it leads to.
        let link = format!("{root}/link.conf");
        let c = load(&link, 0).unwrap();
        assert_eq!(c.path, given);
        assert_eq!(c.projects[0].name, "test");
        drop(child);
        std::fs::remove_file(&ours).unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn kernel_files_are_not_config_files() {
        // Root's own /proc/self/environ is root's and 0400, so it passes the owner and mode
        // checks; its text must not be read (and echoed back in a parse error).
        if me() == 0 {
            let e = load("/proc/self/environ", 0).unwrap_err();
            assert_eq!(e.kind, Kind::Invalid);
            assert!(
                e.msg
                    .ends_with("environ: a file on proc is not a config file"),
                "{}",
                e.msg
            );
        } else {
            eprintln!("skipped the /proc part: needs root");
        }
        let sys = "/sys/kernel/uevent_seqnum";
        if Path::new(sys).exists() {
            let e = load(sys, me()).unwrap_err();
            assert_eq!(
                e.msg,
                format!("{sys}: a file on sysfs is not a config file")
            );
        } else {
            eprintln!("skipped the /sys part: no {sys}");
        }
    }

    #[test]
    fn any_change_of_size_or_times_during_the_read_refuses_the_file() {
        let at = FileStamp {
            dev: 1,
            ino: 2,
            size: 100,
            mtime: (1_700_000_000, 5),
            ctime: (1_700_000_000, 5),
        };
        assert_eq!(unchanged("f", at, at), Ok(()));
        for after in [
            FileStamp { size: 99, ..at },
            FileStamp {
                mtime: (1_700_000_000, 6),
                ..at
            },
            FileStamp {
                mtime: (1_700_000_001, 5),
                ..at
            },
            FileStamp {
                ctime: (1_700_000_000, 6),
                ..at
            },
        ] {
            let e = unchanged("f", at, after).unwrap_err();
            assert_eq!(e.kind, Kind::Invalid);
            assert!(
                e.msg.starts_with("f changed while it was being read"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_file_being_written_is_refused() {
        let path = write("growing", GOOD, 0o600);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = OpenOptions::new().append(true).open(&path).unwrap();
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    f.write_all(b"# more\n").unwrap();
                    n += 1;
                    if n % 64 == 0 {
                        f.set_len(GOOD.len() as u64).unwrap();
                    }
                }
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut caught = None;
        while caught.is_none() && std::time::Instant::now() < deadline {
            if let Err(e) = load(path.to_str().unwrap(), me()) {
                caught = Some(e);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        std::fs::remove_file(&path).unwrap();
        let e = caught.expect("a file written all along was always accepted");
        assert_eq!(
            e.msg,
            format!(
                "{} changed while it was being read (is it still being written?); write it \
                 elsewhere and rename it into place",
                path.display()
            )
        );
    }

    #[test]
    fn owner_must_be_root_or_the_daemon() {
        let path = write("owner", GOOD, 0o600);
        let name = path.to_str().unwrap();
        if me() != 0 {
            // Our own file is accepted when we are the daemon's uid, refused for root's.
            assert!(load(name, me()).is_ok());
            assert!(load(name, 0)
                .unwrap_err()
                .msg
                .contains("must be owned by root"));
            eprintln!("skipped the chown part: needs root");
        } else {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let e = load(name, 0).unwrap_err();
            assert_eq!(
                e.msg,
                format!("{name} is owned by uid 65534; it must be owned by root")
            );
            let e = load(name, 1000).unwrap_err();
            assert_eq!(
                e.msg,
                format!("{name} is owned by uid 65534; it must be owned by root (or uid 1000, which etmemd runs as)")
            );
            assert!(load(name, 65534).is_ok());
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn parse_errors_name_the_resolved_file() {
        let path = write(
            "parse",
            "[project]\nname=test\nloop=0\ninterval=1\nsleep=1\n",
            0o600,
        );
        let e = load(path.to_str().unwrap(), me()).unwrap_err();
        assert_eq!(
            e.msg,
            format!(
                "{}:3: [project] loop=0: must be an integer from 1 to 120",
                path.display()
            )
        );
        std::fs::remove_file(&path).unwrap();
    }
}
