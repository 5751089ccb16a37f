//! The kernel interfaces etmem can work through, one enum per family (access tracking,
//! swap-out), each with one table of names. Config validation, command-line parsing,
//! `--help`, error messages and the man page's list all come from these tables, so a
//! backend is added in one place.

/// A family of backends chosen by name (`scan_backend=`, `--backend`...). The word
/// `auto` (no choice: detect) is accepted wherever a name is.
pub trait Family: Copy + PartialEq + Sized + 'static {
    /// Every member, in the order auto-detection tries them.
    const ALL: &'static [Self];
    /// What the family is called in messages, e.g. `scan backend`.
    const FAMILY: &'static str;

    /// The member's name in config files, on command lines and in output.
    fn name(self) -> &'static str;

    /// The member named `word`; `Ok(None)` for `auto`. The error lists every word.
    fn choose(word: &str) -> Result<Option<Self>, String> {
        if word == "auto" {
            return Ok(None);
        }
        Self::ALL
            .iter()
            .copied()
            .find(|b| b.name() == word)
            .map(Some)
            .ok_or_else(|| format!("unknown {} {word:?}: use {}", Self::FAMILY, Self::choices()))
    }

    /// Every accepted word, `auto` first.
    fn words() -> Vec<&'static str> {
        std::iter::once("auto")
            .chain(Self::ALL.iter().map(|b| b.name()))
            .collect()
    }

    /// The words as a phrase: `auto, a, b or c`.
    fn choices() -> String {
        let words = Self::words();
        match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => words.join(""),
        }
    }
}

/// Defines a backend enum from its table: variant, name, what it is.
macro_rules! family {
    ($(#[$doc:meta])* $ty:ident, $family:literal, [$($(#[$vdoc:meta])* $v:ident = $word:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $ty {
            $($(#[$vdoc])* $v),+
        }

        impl $ty {
            /// Every member, in the order auto-detection tries them.
            pub const ALL: &'static [$ty] = &[$($ty::$v),+];

            /// The name in config files, on command lines and in output.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$v => $word),+
                }
            }
        }

        impl Family for $ty {
            const ALL: &'static [$ty] = $ty::ALL;
            const FAMILY: &'static str = $family;

            fn name(self) -> &'static str {
                $ty::name(self)
            }
        }
    };
}

family!(
    /// The kernel interfaces access tracking can be built on, in auto-detection order.
    ScanBackend,
    "scan backend",
    [
        /// openEuler's `/proc/PID/idle_pages` (etmem_scan module): per-page accessed bits.
        IdlePages = "idle_pages",
        /// `/sys/kernel/mm/page_idle/bitmap` + pagemap: per-page accessed bits.
        PageIdle = "page_idle",
        /// DAMON virtual address monitoring: per-region access frequency.
        Damon = "damon",
        /// Soft-dirty bits: per-page writes only.
        SoftDirty = "softdirty",
        /// smaps `Referenced` after clear_refs: per-VMA only.
        Smaps = "smaps",
    ]
);

family!(
    /// The kernel interfaces that swap pages out, in auto-detection order.
    SwapBackend,
    "swap backend",
    [
        /// Write page addresses to `/proc/PID/swap_pages` (openEuler, module `etmem_swap`).
        SwapPages = "swap_pages",
        /// `process_madvise(pidfd, ranges, MADV_PAGEOUT)` (Linux 5.10+).
        ProcessMadvise = "process_madvise",
    ]
);

impl ScanBackend {
    /// What the kernel needs for this backend, for `--help` and documentation.
    pub fn needs(self) -> &'static str {
        match self {
            ScanBackend::IdlePages => "openEuler's etmem_scan module",
            ScanBackend::PageIdle => "CONFIG_IDLE_PAGE_TRACKING, and root",
            ScanBackend::Damon => "CONFIG_DAMON_VADDR and CONFIG_DAMON_SYSFS",
            ScanBackend::SoftDirty => "CONFIG_MEM_SOFT_DIRTY",
            ScanBackend::Smaps => "any kernel",
        }
    }

    /// What the backend can observe, for output and documentation.
    pub fn sees(self) -> &'static str {
        match self {
            ScanBackend::IdlePages => "per-page reads and writes (accessed bits)",
            ScanBackend::PageIdle => "per-page reads and writes (accessed bits), not dirtiness",
            ScanBackend::Damon => "per-region access frequency (sampled), mapped to pages",
            ScanBackend::SoftDirty => "per-page writes only: reads are invisible to it",
            ScanBackend::Smaps => {
                "per-VMA references only: every resident page of a VMA gets the VMA's answer"
            }
        }
    }
}

impl SwapBackend {
    /// What the kernel needs for this backend, for `--help` and documentation.
    pub fn needs(self) -> &'static str {
        match self {
            SwapBackend::SwapPages => "openEuler's etmem_swap module",
            SwapBackend::ProcessMadvise => "Linux 5.10+",
        }
    }
}

/// The `--help` paragraph listing a family's backends: one entry per member, in the
/// table's order, `indent` columns in, with what `about` says of it, wrapped at 88
/// columns under the first line's text.
pub fn help_list<F: Family>(indent: usize, about: impl Fn(F) -> String) -> String {
    const WIDTH: usize = 88;
    let mut out = String::new();
    for &b in F::ALL {
        let head = format!("{:indent$}{:<16} ", "", b.name());
        let mut line = head.clone();
        for word in about(b).split(' ') {
            if line.len() + word.len() > WIDTH && line.len() > head.len() {
                out.push_str(line.trim_end());
                out.push('\n');
                line = " ".repeat(head.len());
            }
            line.push_str(word);
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &b in ScanBackend::ALL {
            assert_eq!(ScanBackend::choose(b.name()), Ok(Some(b)));
        }
        for &b in SwapBackend::ALL {
            assert_eq!(SwapBackend::choose(b.name()), Ok(Some(b)));
        }
        assert_eq!(ScanBackend::choose("auto"), Ok(None));
        assert_eq!(SwapBackend::choose("auto"), Ok(None));
        assert_eq!(
            SwapBackend::choose("Swap_Pages").unwrap_err(),
            "unknown swap backend \"Swap_Pages\": use auto, swap_pages or process_madvise"
        );
        assert!(ScanBackend::choose("x")
            .unwrap_err()
            .contains("softdirty or smaps"));
    }

    #[test]
    fn help_lists_every_member() {
        let list = help_list::<ScanBackend>(2, |b| b.needs().to_string());
        assert_eq!(list.lines().count(), ScanBackend::ALL.len());
        assert!(list.starts_with("  idle_pages       openEuler's etmem_scan module\n"));
        let long = help_list::<SwapBackend>(4, |_| "word ".repeat(30));
        assert!(long.lines().all(|l| l.len() <= 88), "{long}");
        assert!(long.lines().nth(1).unwrap().starts_with(&" ".repeat(21)));
    }

    #[test]
    fn words_and_choices() {
        assert_eq!(
            ScanBackend::words(),
            [
                "auto",
                "idle_pages",
                "page_idle",
                "damon",
                "softdirty",
                "smaps"
            ]
        );
        assert_eq!(
            ScanBackend::choices(),
            "auto, idle_pages, page_idle, damon, softdirty or smaps"
        );
        assert_eq!(
            SwapBackend::words(),
            ["auto", "swap_pages", "process_madvise"]
        );
    }
}
