//! Inputs that operators, peers and the kernel hand us, mutated at random (a fixed seed,
//! so a failure reproduces): config files built from the shipped examples, socket
//! requests, /proc/PID/maps lines and /proc/meminfo. Each parser must answer with a
//! value or an error, never a panic.

use std::panic;

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Words config mutations splice in: group names, keys, edge values, separators.
const CONFIG_WORDS: &[&str] = &[
    "[project]",
    "[engine]",
    "[task]",
    "name=",
    "type=",
    "loop=",
    "interval=",
    "sleep=",
    "T=",
    "max_threads=",
    "value=",
    "engine=",
    "project=",
    "=",
    "\n",
    "0",
    "-1",
    "99999999999999999999",
    "18446744073709551616",
    " ",
    "#",
    ";",
    "\t",
    "slide",
    "cslide",
    "damon",
    "thirdparty",
    "memdcd",
    "pid",
    "yes",
    "no",
    "scan_type=",
    "region",
    "page",
    "sysmem_threshold=",
    "swapcache_high_wmark=",
    "swapcache_low_wmark=",
    "node_pair=",
    "0,1;",
    "é",
    "\u{0}",
    "\r",
    "eng_name=",
    "libname=",
    "ops_name=",
    "vm_flags=",
    "ht",
    "anon_only=",
    "ign_host=",
    "hot_threshold=",
    "node_mig_quota=",
    "node_hot_reserve=",
    "swap_threshold=",
    "10g",
    "5M",
    "dram_percent=",
    "swap_flag=",
    "scan_backend=",
    "swap_backend=",
    "sock=",
    "min_nr_regions=",
    "max_nr_regions=",
    "aggr_interval=",
    "min_size=",
    "max_age=",
    "action=",
    "pageout",
];

/// Apply 1..=6 random edits to `text`: splice a word in, cut a stretch, replace a
/// character, or copy a whole line somewhere else.
fn mutate(text: &str, words: &[&str], r: &mut Rng) -> String {
    let mut t: Vec<char> = text.chars().collect();
    for _ in 0..1 + r.below(6) {
        let pos = r.below(t.len() + 1);
        match r.below(4) {
            0 => {
                let w = words[r.below(words.len())];
                t.splice(pos..pos, w.chars());
            }
            1 => {
                let end = (pos + r.below(20)).min(t.len());
                t.drain(pos..end);
            }
            2 if pos < t.len() => t[pos] = char::from(r.below(128) as u8),
            _ => {
                let s: String = t.iter().collect();
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let line = format!("\n{}", lines[r.below(lines.len())]);
                    t.splice(pos..pos, line.chars());
                }
            }
        }
    }
    t.into_iter().collect()
}

/// Run `parse` on `n` mutations of the seeds; fail naming the first input that panics.
fn never_panics(seeds: &[String], words: &[&str], n: usize, parse: fn(&str)) {
    // The panic hook is process-wide: one of these at a time.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let shown = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut failed = None;
    for _ in 0..n {
        let input = mutate(&seeds[r.below(seeds.len())], words, &mut r);
        let copy = input.clone();
        if panic::catch_unwind(move || parse(&copy)).is_err() {
            failed = Some(input);
            break;
        }
    }
    panic::set_hook(shown);
    if let Some(input) = failed {
        parse(&input); // again, with the panic message shown
        panic!("no message for {input:?}");
    }
}

#[test]
fn config_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/conf");
    let seeds: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(seeds.len() >= 5, "the guide's examples are in conf/");
    never_panics(&seeds, CONFIG_WORDS, 20_000, |t| {
        let _ = etmem::config::parse(t, "mutated.yaml");
    });
}

#[test]
fn socket_requests() {
    let seeds = [
        "0 test - - - -".to_string(),
        "4 /root/a.conf - - - -".to_string(),
        "5 test slide task showtaskpages -".to_string(),
    ];
    let words = [" ", "-", "0", "9", "\u{0}", "4294967296", "showhostpages"];
    never_panics(&seeds, &words, 30_000, |t| {
        let _ = etmem::rpc::request::Request::decode(t.as_bytes());
    });
}

#[test]
fn proc_maps_lines() {
    let seeds = [
        "7f1a85600000-7f1a87600000 rw-p 00000000 00:00 0 ".to_string(),
        "55d49d1a6000-55d49d1a8000 r-xp 00002000 fd:01 1234 /usr/bin/x (deleted)".to_string(),
        "7ffe6266a000-7ffe6268b000 rw-p 00000000 00:00 0 [stack]".to_string(),
    ];
    let words = [
        "-",
        " ",
        "ffffffffffffffffff",
        "0",
        "[anon:etmem_swap]",
        "rwxs",
        "::",
    ];
    never_panics(&seeds, &words, 30_000, |t| {
        let _ = etmem::sys::maps::parse_line(t);
    });
}

#[test]
fn proc_meminfo() {
    let seeds = ["MemTotal: 24576000 kB\nMemFree: 100 kB\nMemAvailable: 2000 kB\n".to_string()];
    let words = [
        "MemAvailable:",
        "kB",
        " ",
        "\n",
        "18446744073709551615",
        "-",
    ];
    never_panics(&seeds, &words, 20_000, |t| {
        let _ = etmem::sys::meminfo::parse(t);
    });
}
