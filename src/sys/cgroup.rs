//! Memory cgroups for the psi engine: where the memory controller is mounted (cgroup v2,
//! or v1 with openEuler's extra files), and the reading and writing of one cgroup's
//! interface files: single numbers (`max` = unlimited), `memory.stat` fields,
//! `memory.pressure` (PSI) and `memory.reclaim`. The parsers are pure, for the tests.

use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result};

/// Where the memory controller lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v2 with the memory controller: every file in one directory per cgroup.
    V2 {
        /// The cgroup2 mount point, e.g. `/sys/fs/cgroup`.
        root: PathBuf,
    },
    /// cgroup v1: the memory hierarchy, and the cpuacct one where openEuler puts
    /// `memory.pressure` (its `psi_v1=1`).
    V1 {
        /// The mount point of the v1 hierarchy with the memory controller.
        memory: PathBuf,
        /// The mount point of the v1 hierarchy with cpuacct, if mounted.
        cpuacct: Option<PathBuf>,
    },
}

impl Layout {
    /// The directory `cg_dir` patterns are relative to.
    pub fn root(&self) -> &Path {
        match self {
            Layout::V2 { root } => root,
            Layout::V1 { memory, .. } => memory,
        }
    }

    /// `cgroup v2` or `cgroup v1`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::V2 { .. } => "cgroup v2",
            Layout::V1 { .. } => "cgroup v1",
        }
    }

    /// The cgroup at `rel` (relative to [`Layout::root`]).
    pub fn memcg(&self, rel: &str) -> Memcg {
        match self {
            Layout::V2 { root } => Memcg {
                dir: root.join(rel),
                pressure: root.join(rel).join("memory.pressure"),
                v2: true,
            },
            Layout::V1 { memory, cpuacct } => {
                let own = memory.join(rel).join("memory.pressure");
                // openEuler's psi_v1 puts memory.pressure in the cpuacct hierarchy.
                let pressure = match cpuacct {
                    Some(c) if !own.exists() => c.join(rel).join("memory.pressure"),
                    _ => own,
                };
                Memcg {
                    dir: memory.join(rel),
                    pressure,
                    v2: false,
                }
            }
        }
    }
}

/// One line of `/proc/self/mountinfo` that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted (octal escapes decoded).
    pub point: PathBuf,
    /// `cgroup` or `cgroup2` (or any other type).
    pub fstype: String,
    /// The super options, e.g. `rw,memory`.
    pub options: String,
}

/// The mounts of mountinfo text; malformed lines are left out.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let _source = r.next()?;
            let options = r.next().unwrap_or("").to_string();
            Some(Mount {
                point: PathBuf::from(unescape_octal(point)),
                fstype,
                options,
            })
        })
        .collect()
}

/// mountinfo's `\040`-style escapes decoded.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                // \777 is more than a byte: keep its low 8 bits rather than fail.
                out.push((v & 0xff) as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Picks the layout from the mounts: a cgroup2 mount whose root offers the memory
/// controller (`controllers(point)` gives its `cgroup.controllers`) wins; else a v1
/// hierarchy with `memory` among its options.
pub fn pick_layout(mounts: &[Mount], controllers: impl Fn(&Path) -> String) -> Option<Layout> {
    let v1_with = |opt: &str| {
        mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == opt))
            .map(|m| m.point.clone())
    };
    if let Some(m) = mounts.iter().find(|m| {
        m.fstype == "cgroup2"
            && controllers(&m.point)
                .split_whitespace()
                .any(|c| c == "memory")
    }) {
        return Some(Layout::V2 {
            root: m.point.clone(),
        });
    }
    Some(Layout::V1 {
        memory: v1_with("memory")?,
        cpuacct: v1_with("cpuacct"),
    })
}

/// This machine's memory cgroup layout, from `/proc/self/mountinfo`.
pub fn layout() -> Result<Layout> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let controllers =
        |p: &Path| std::fs::read_to_string(p.join("cgroup.controllers")).unwrap_or_default();
    pick_layout(&parse_mountinfo(&text), controllers).ok_or_else(|| {
        Error::new(
            Kind::Unsupported,
            "no memory cgroup is mounted: neither cgroup v2 with the memory controller nor a \
             cgroup v1 memory hierarchy (see /proc/self/mountinfo)",
        )
    })
}

/// The figures of the `some` line of a PSI file, percent of time stalled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    /// `avg10`: over the last 10 s.
    pub avg10: f64,
    /// `avg60`: over the last 60 s.
    pub avg60: f64,
}

/// The `some` line of PSI text (`some avg10=0.00 avg60=0.00 avg300=0.00 total=0`). Each
/// average must be a finite number from 0 to 100; NaN or junk is an error, not "high".
pub fn parse_pressure(text: &str) -> std::result::Result<Pressure, String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("some "))
        .ok_or("no 'some' line")?;
    let (mut avg10, mut avg60) = (None, None);
    for token in line.split_whitespace() {
        let (key, value) = token
            .split_once('=')
            .ok_or_else(|| format!("{token:?} is not key=value"))?;
        let avg = || -> std::result::Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (0.0..=100.0).contains(v))
                .ok_or_else(|| format!("{key}={value} is not a percentage"))
        };
        match key {
            "avg10" => avg10 = Some(avg()?),
            "avg60" => avg60 = Some(avg()?),
            "avg300" => {
                avg()?;
            }
            "total" => {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("total={value} is not a number"))?;
            }
            _ => return Err(format!("unknown field {key:?}")),
        }
    }
    match (avg10, avg60) {
        (Some(avg10), Some(avg60)) => Ok(Pressure { avg10, avg60 }),
        _ => Err("no avg10 or avg60".into()),
    }
}

/// A one-number interface file: decimal bytes, or `max` (no limit) as `u64::MAX`.
pub fn parse_number(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim_end_matches('\n');
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>()
        .ok()
        .filter(|_| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            let shown: String = t.chars().take(32).collect();
            format!("{shown:?} is not a number or max")
        })
}

/// The value of field `key` of `memory.stat` text (`key value` lines, exact key).
pub fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// One memory cgroup's interface files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memcg {
    /// Its directory in the memory hierarchy.
    pub dir: PathBuf,
    /// Its `memory.pressure` (under cpuacct on openEuler's v1).
    pub pressure: PathBuf,
    /// cgroup v2 file names (else v1's).
    pub v2: bool,
}

/// Bytes the cgroup charges and what of it could be reclaimed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `memory.current` (v1: `memory.usage_in_bytes`).
    pub current: u64,
    /// Anonymous memory (v2 `anon`; v1 `total_inactive_anon + total_active_anon`).
    pub anon: u64,
    /// Page cache (v2 `file`; v1 `total_inactive_file + total_active_file`).
    pub file: u64,
    /// Swap the cgroup may still use (v2 `memory.swap.max - memory.swap.current`; v1
    /// `memory.memsw.limit_in_bytes - memory.memsw.usage_in_bytes`); 0 without the files.
    pub swap_headroom: u64,
    /// `memory.min` (v1 openEuler: the same name).
    pub min: u64,
    /// `memory.low`.
    pub low: u64,
    /// `memory.max` (v1: `memory.limit_in_bytes`); `u64::MAX` for none.
    pub limit: u64,
}

impl Memcg {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn current_name(&self) -> &'static str {
        if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        }
    }

    /// The files the psi engine cannot work without, in the order it needs them.
    pub fn required_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.file(self.current_name())];
        let names: &[&str] = if self.v2 {
            &[
                "memory.stat",
                "memory.min",
                "memory.low",
                "memory.max",
                "memory.reclaim",
            ]
        } else {
            &[
                "memory.stat",
                "memory.min",
                "memory.low",
                "memory.limit_in_bytes",
                "memory.reclaim",
            ]
        };
        files.extend(names.iter().map(|n| self.file(n)));
        files.push(self.pressure.clone());
        files
    }

    /// Those of [`Memcg::required_files`] that are missing.
    pub fn missing_files(&self) -> Vec<PathBuf> {
        self.required_files()
            .into_iter()
            .filter(|f| !f.exists())
            .collect()
    }

    fn number(&self, name: &str) -> Result<u64> {
        read_number(&self.file(name))
    }

    /// The bytes charged now.
    pub fn current(&self) -> Result<u64> {
        self.number(self.current_name())
    }

    /// The pressure figures.
    pub fn pressure(&self) -> Result<Pressure> {
        let text = read(&self.pressure)?;
        parse_pressure(&text)
            .map_err(|why| Error::invalid(format!("{}: {why}", self.pressure.display())))
    }

    /// Every figure the floor is made of.
    pub fn usage(&self) -> Result<Usage> {
        let stat_path = self.file("memory.stat");
        let stat = read(&stat_path)?;
        let field = |k: &str| {
            stat_field(&stat, k)
                .ok_or_else(|| Error::invalid(format!("{}: no {k} field", stat_path.display())))
        };
        let (anon, file, headroom, limit) = if self.v2 {
            let headroom = match (
                self.number("memory.swap.max"),
                self.number("memory.swap.current"),
            ) {
                (Ok(max), Ok(cur)) => max.saturating_sub(cur),
                _ => 0,
            };
            (
                field("anon")?,
                field("file")?,
                headroom,
                self.number("memory.max")?,
            )
        } else {
            let anon = field("total_inactive_anon")?.saturating_add(field("total_active_anon")?);
            let file = field("total_inactive_file")?.saturating_add(field("total_active_file")?);
            let headroom = match (
                self.number("memory.memsw.limit_in_bytes"),
                self.number("memory.memsw.usage_in_bytes"),
            ) {
                (Ok(max), Ok(cur)) => max.saturating_sub(cur),
                _ => 0,
            };
            (anon, file, headroom, self.number("memory.limit_in_bytes")?)
        };
        Ok(Usage {
            current: self.current()?,
            anon,
            file,
            swap_headroom: headroom,
            min: self.number("memory.min")?,
            low: self.number("memory.low")?,
            limit,
        })
    }

    /// Ask the kernel to reclaim `bytes` from the cgroup (`memory.reclaim`, plain decimal
    /// text). `EAGAIN` (it reclaimed less than asked) is not an error: the caller measures
    /// what left.
    pub fn reclaim(&self, bytes: u64) -> Result<()> {
        let path = self.file("memory.reclaim");
        match std::fs::write(&path, bytes.to_string()) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(()),
            Err(e) => Err(Error::io(format!("write {bytes} to {}", path.display()), e)),
        }
    }

    /// The inode of the cgroup's directory: a cgroup deleted and made again is new.
    pub fn inode(&self) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&self.dir)
            .map(|m| m.ino())
            .map_err(|e| Error::io(self.dir.display(), e))
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))
}

fn read_number(path: &Path) -> Result<u64> {
    let text = read(path)?;
    parse_number(&text).map_err(|why| Error::invalid(format!("{}: {why}", path.display())))
}

/// The system-wide memory pressure file.
pub const SYSTEM_PRESSURE: &str = "/proc/pressure/memory";

/// The memory pressure process `pid` is under, and the file it was read from: its
/// memory cgroup's `memory.pressure` where the kernel has one (cgroup v2, openEuler's
/// v1) and the process is not in the root cgroup, else the system's.
pub fn pressure_of(pid: crate::types::Pid) -> Result<(Pressure, PathBuf)> {
    let own = layout().ok().and_then(|l| {
        let rel = memcg_of(pid).ok()?;
        let rel = rel.trim_start_matches('/');
        (!rel.is_empty())
            .then(|| l.memcg(rel).pressure)
            .filter(|p| p.exists())
    });
    let file = own.unwrap_or_else(|| PathBuf::from(SYSTEM_PRESSURE));
    let text = read(&file)?;
    let p = parse_pressure(&text)
        .map_err(|why| Error::invalid(format!("{}: {why}", file.display())))?;
    Ok((p, file))
}

/// The memory cgroup of process `pid`, as a path from the memory hierarchy's root (`/`
/// for the root cgroup), from `/proc/PID/cgroup`.
pub fn memcg_of(pid: crate::types::Pid) -> Result<String> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    parse_memcg(&text).ok_or_else(|| {
        Error::new(
            Kind::Unsupported,
            format!("{path}: no memory cgroup (neither a v1 memory line nor a v2 line)"),
        )
    })
}

/// The memory cgroup in `/proc/PID/cgroup` text: the v1 line whose controllers include
/// `memory`, else the v2 line (`0::PATH`).
pub fn parse_memcg(text: &str) -> Option<String> {
    let mut v2 = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if ctrls.split(',').any(|c| c == "memory") {
            return Some(path.to_string());
        }
        if id == "0" && ctrls.is_empty() {
            v2 = Some(path.to_string());
        }
    }
    v2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcg_lines() {
        assert_eq!(
            parse_memcg("0::/user.slice/x\n").as_deref(),
            Some("/user.slice/x")
        );
        assert_eq!(
            parse_memcg("12:memory:/etmem\n11:cpu,cpuacct:/\n0::/other\n").as_deref(),
            Some("/etmem")
        );
        assert_eq!(parse_memcg("3:cpu:/a\n"), None);
    }

    const HOST: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
        junk\n";

    #[test]
    fn layouts_from_mountinfo() {
        let mounts = parse_mountinfo(HOST);
        assert_eq!(mounts.len(), 4);
        // A hybrid host: the cgroup2 mount has no memory controller, v1 has it.
        assert_eq!(
            pick_layout(&mounts, |_| "cpu io".into()),
            Some(Layout::V1 {
                memory: "/sys/fs/cgroup/memory".into(),
                cpuacct: Some("/sys/fs/cgroup/cpuacct".into()),
            })
        );
        let v2 = "24 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = pick_layout(&parse_mountinfo(v2), |_| {
            "cpuset cpu io memory pids\n".into()
        });
        assert_eq!(
            l,
            Some(Layout::V2 {
                root: "/sys/fs/cgroup".into()
            })
        );
        let l = l.unwrap();
        assert_eq!(l.root(), Path::new("/sys/fs/cgroup"));
        let m = l.memcg("a/b");
        assert_eq!(m.pressure, Path::new("/sys/fs/cgroup/a/b/memory.pressure"));
        assert_eq!(
            m.required_files()[0],
            Path::new("/sys/fs/cgroup/a/b/memory.current")
        );
        assert_eq!(pick_layout(&parse_mountinfo(v2), |_| "cpu".into()), None);
        assert_eq!(pick_layout(&[], |_| String::new()), None);
        let spaced = parse_mountinfo("1 1 0:1 / /a\\040b rw - cgroup2 none rw\n");
        assert_eq!(spaced[0].point, Path::new("/a b"));
        assert_eq!(unescape_octal("x\\04"), "x\\04");
        assert_eq!(unescape_octal("\\777\\134"), "\u{fffd}\\");
    }

    #[test]
    fn pressure_lines() {
        let ok = "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(
            parse_pressure(ok),
            Ok(Pressure {
                avg10: 1.5,
                avg60: 0.25
            })
        );
        for bad in [
            "",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=nan avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=inf avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=-1 avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=101 avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=0.00 avg300=0.00 total=0\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=x\n",
            "some avg10=0.00 avg60=0.00 bogus=1\n",
            "some avg10 avg60=0.00\n",
            "some avg10=0.00 avg60=\n",
        ] {
            assert!(parse_pressure(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_and_stat_fields() {
        assert_eq!(parse_number("123\n"), Ok(123));
        assert_eq!(parse_number("max\n"), Ok(u64::MAX));
        assert_eq!(
            parse_number("9223372036854771712\n"),
            Ok(9223372036854771712)
        );
        for bad in [
            "",
            "\n",
            "-1",
            "12 ",
            "0x10",
            "maxx",
            "18446744073709551616",
            "1\n2\n",
        ] {
            assert!(parse_number(bad).is_err(), "{bad:?}");
        }
        let stat = "anon 4096\nfile 8192\nanon_thp 0\ntotal_active_file 3\n";
        assert_eq!(stat_field(stat, "anon"), Some(4096));
        assert_eq!(stat_field(stat, "file"), Some(8192));
        assert_eq!(stat_field(stat, "active_file"), None);
        assert_eq!(stat_field("anon x\n", "anon"), None);
    }
}
