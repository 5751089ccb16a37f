//! What tells that a file was written, replaced, or had its owner or mode set: which file
//! it is, its size, and its modification and change times to the nanosecond. A config
//! file must not change while it is read; a plug-in must not change between its check
//! and its start.

use std::os::unix::fs::MetadataExt;

/// A file's identity, size and times, from its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// The device the file is on.
    pub dev: u64,
    /// Its inode number on that device.
    pub ino: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Its change time (written, chmod, chown), seconds and nanoseconds.
    pub ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of the file `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// True when `other` is the same file with the same contents as far as its stamp
    /// tells (size and modification time), whatever its change time says: renaming
    /// another file over a path unlinks this one, which sets its change time.
    pub fn same_contents(&self, other: &FileStamp) -> bool {
        (self.dev, self.ino, self.size, self.mtime)
            == (other.dev, other.ino, other.size, other.mtime)
    }
}
