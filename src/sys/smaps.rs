//! `/proc/PID/smaps`: per-VMA memory facts. The tracker needs `Rss` and `Referenced`
//! (the smaps backend), `AnonHugePages` (THP use) and `VmFlags` (the plug-in API's filter).

use crate::error::{Error, Result};
use crate::sys::maps::parse_line;
use crate::sys::process::{parse_kb, proc_error};
use crate::types::{Pid, Vma};

/// One VMA of smaps with the fields etmem uses (sizes in bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmapsVma {
    /// The VMA, as its maps line describes it.
    pub vma: Vma,
    /// `Rss`: bytes of the VMA resident in RAM.
    pub rss: u64,
    /// `Referenced`: bytes now marked referenced or accessed; `clear_refs` 1 resets it.
    pub referenced: u64,
    /// `AnonHugePages`: bytes mapped by transparent huge pages.
    pub anon_huge: u64,
    /// The two-letter flags after `VmFlags:`, space separated as the kernel prints them.
    pub vmflags: String,
}

impl SmapsVma {
    /// True if `flag` (two letters, e.g. `ht`) is among the VMA's flags.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.vmflags.split_ascii_whitespace().any(|f| f == flag)
    }
}

/// Read and parse `/proc/PID/smaps`.
pub fn read_smaps(pid: Pid) -> Result<Vec<SmapsVma>> {
    let path = format!("/proc/{pid}/smaps");
    let text = std::fs::read_to_string(&path).map_err(|e| proc_error(pid, &path, e))?;
    parse_smaps(&text).map_err(|e| e.context(&path))
}

/// Parse smaps text: a maps line opens each VMA, `Key: value` lines follow it.
pub fn parse_smaps(text: &str) -> Result<Vec<SmapsVma>> {
    let mut out: Vec<SmapsVma> = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let key = line.split_ascii_whitespace().next().unwrap_or("");
        if let Some(name) = key.strip_suffix(':') {
            let Some(cur) = out.last_mut() else {
                return Err(Error::invalid(format!(
                    "smaps field before any VMA: {line:?}"
                )));
            };
            // The key is the first word, after any blanks: cut it from there (cutting
            // `key.len()` bytes off the untrimmed line took the wrong text, or panicked
            // inside a UTF-8 character, on an indented line).
            let value =
                line.trim_start_matches(|c: char| c.is_ascii_whitespace())[key.len()..].trim();
            match name {
                "VmFlags" => cur.vmflags = value.to_string(),
                "Rss" | "Referenced" | "AnonHugePages" => {
                    let v = parse_kb(value)
                        .ok_or_else(|| Error::invalid(format!("unparsable smaps line {line:?}")))?;
                    match name {
                        "Rss" => cur.rss = v,
                        "Referenced" => cur.referenced = v,
                        _ => cur.anon_huge = v,
                    }
                }
                _ => {}
            }
        } else {
            let vma = parse_line(line)
                .ok_or_else(|| Error::invalid(format!("unparsable smaps line {line:?}")))?;
            out.push(SmapsVma {
                vma,
                rss: 0,
                referenced: 0,
                anon_huge: 0,
                vmflags: String::new(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_flags() {
        let t = "\
7f0000000000-7f0000200000 rw-p 00000000 00:00 0 
Size:               2048 kB
Rss:                1024 kB
Referenced:          512 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac 
7f0000400000-7f0000600000 rw-p 00000000 00:00 0    [anon:cold]
Rss:                   8 kB
Referenced:            0 kB
VmFlags: rd wr mr mw me ac ht
";
        let v = parse_smaps(t).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].rss, v[0].referenced), (1024 * 1024, 512 * 1024));
        assert!(v[0].has_flag("ac") && !v[0].has_flag("ht"));
        assert!(v[1].has_flag("ht"));
        assert_eq!(v[1].vma.path, "[anon:cold]");
        assert!(parse_smaps("Rss: 4 kB\n").is_err());
        assert!(parse_smaps("7f-7e rw-p 0 00:00 0\n").is_err());
    }

    #[test]
    fn indented_fields_are_read_whole() {
        // Found by the fuzz target `smaps`: the value was cut at the key's length from the
        // start of the line, so blanks before a key shifted it, or split a character.
        let vma = "7f0000000000-7f0000200000 rw-p 00000000 00:00 0\n";
        let e = parse_smaps(&format!("{vma}\t\t\u{e9}:\n\t\tRss: \u{e9}\n")).unwrap_err();
        assert!(e.msg.starts_with("unparsable smaps line"), "{e}");
        let v = parse_smaps(&format!("{vma}\r\r\rVmFlags:\n  Rss: 8 kB\n")).unwrap();
        assert_eq!((v[0].vmflags.as_str(), v[0].rss), ("", 8192));
    }

    #[test]
    fn reads_own_smaps() {
        let v = read_smaps(std::process::id() as Pid).unwrap();
        assert!(v.iter().any(|s| s.rss > 0 && !s.vmflags.is_empty()));
    }
}
