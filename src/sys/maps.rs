//! `/proc/PID/maps`: the list of a process's VMAs.

use crate::error::{Error, Result};
use crate::types::{Pid, Range, Vma};

/// Read and parse `/proc/PID/maps`.
pub fn read_maps(pid: Pid) -> Result<Vec<Vma>> {
    let path = format!("/proc/{pid}/maps");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    parse_maps(&text).map_err(|e| e.context(&path))
}

/// Parse the text of a maps file. A line that does not parse is an error naming it;
/// a last line without a newline is fine.
pub fn parse_maps(text: &str) -> Result<Vec<Vma>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            parse_line(line).ok_or_else(|| Error::invalid(format!("unparsable maps line {line:?}")))
        })
        .collect()
}

/// One maps line: `start-end perms offset major:minor inode [path]`.
pub fn parse_line(line: &str) -> Option<Vma> {
    let mut rest = line;
    let mut field = || {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        f
    };
    let (start, end) = field().split_once('-')?;
    let perms = field().as_bytes();
    let offset = field();
    let (major, minor) = field().split_once(':')?;
    let inode = field();
    if perms.len() < 4 {
        return None;
    }
    let range = Range::new(
        u64::from_str_radix(start, 16).ok()?,
        u64::from_str_radix(end, 16).ok()?,
    );
    if range.end < range.start {
        return None;
    }
    Some(Vma {
        range,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] != b'p',
        offset: u64::from_str_radix(offset, 16).ok()?,
        major: u32::from_str_radix(major, 16).ok()?,
        minor: u32::from_str_radix(minor, 16).ok()?,
        inode: inode.parse().ok()?,
        path: rest.trim_start_matches(' ').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_lines() {
        let text = "\
55d0c8a00000-55d0c8a21000 rw-p 00000000 00:00 0                          [heap]
7f1c2a000000-7f1c2a200000 r-xp 00002000 fd:01 1234567                    /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2b000000-7f1c2b001000 rw-s 00000000 00:05 42                         /dev/zero (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 ";
        let v = parse_maps(text).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].range, Range::new(0x55d0c8a00000, 0x55d0c8a21000));
        assert_eq!(v[0].path, "[heap]");
        assert!(v[0].is_etmem_anon());
        assert!(v[1].exec && !v[1].is_etmem_anon());
        assert_eq!(
            (v[1].major, v[1].minor, v[1].inode, v[1].offset),
            (0xfd, 1, 1234567, 0x2000)
        );
        assert!(v[2].shared && !v[2].is_etmem_anon());
        assert_eq!(v[2].path, "/dev/zero (deleted)");
        assert_eq!(v[3].path, "");
        assert_eq!(v[3].perms(), "rw-p");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_maps("hello world").is_err());
        assert!(parse_maps("2000-1000 rw-p 0 00:00 0").is_err());
        assert!(parse_maps("1000-2000 rw 0 00:00 0").is_err());
    }

    #[test]
    fn reads_own_maps() {
        let v = read_maps(std::process::id() as Pid).unwrap();
        assert!(v.iter().any(|m| m.path == "[stack]"));
    }
}
