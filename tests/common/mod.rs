//! Helpers shared by the integration tests: running the `etmem` binary, skipping with a
//! reason (a failure under `ETMEM_REQUIRE_ALL=1`), and reading its JSON back.
#![allow(dead_code)]

pub mod daemon;
pub mod guest;
pub mod workload;

use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn etmem() -> &'static str {
    env!("CARGO_BIN_EXE_etmem")
}

/// Run `etmem ARGS...` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(etmem())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the etmem binary runs")
}

/// Poll `cond` every 100 ms for at most `limit`; true once it holds.
pub fn wait_for(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// stdout and stderr of an output as text.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Say why a test does not run here. Returns normally (the caller returns) unless
/// `ETMEM_REQUIRE_ALL=1`, where a skip is a failure.
pub fn skip(reason: &str) {
    if std::env::var("ETMEM_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("test cannot run (ETMEM_REQUIRE_ALL=1): {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// True when running as root; otherwise skips with a reason.
pub fn require_root() -> bool {
    root_or_skip("this test")
}

/// True when running as root; otherwise skips, saying what needs root.
pub fn root_or_skip(why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip(&format!("needs root: {why}"));
    false
}

/// A parsed JSON value (just enough to read etmem's own output back).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(kv) => kv
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key:?} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }
    pub fn u64(&self) -> u64 {
        match self {
            Json::Num(n) if *n >= 0.0 && n.fract() == 0.0 => *n as u64,
            _ => panic!("not an unsigned integer: {self:?}"),
        }
    }
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

/// Parse a whole JSON text (panics on malformed input: the test fails).
pub fn parse_json(text: &str) -> Json {
    let b = text.trim().as_bytes();
    let mut i = 0;
    let v = value(b, &mut i);
    assert_eq!(i, b.len(), "trailing bytes after JSON value at {i}");
    v
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn value(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    let v = match b[*i] {
        b'{' => {
            *i += 1;
            let mut kv = Vec::new();
            ws(b, i);
            if b[*i] == b'}' {
                *i += 1;
                return Json::Obj(kv);
            }
            loop {
                ws(b, i);
                let Json::Str(k) = value(b, i) else {
                    panic!("object key at {i}")
                };
                ws(b, i);
                assert_eq!(b[*i], b':', "colon at {i}");
                *i += 1;
                kv.push((k, value(b, i)));
                ws(b, i);
                *i += 1;
                match b[*i - 1] {
                    b',' => continue,
                    b'}' => break Json::Obj(kv),
                    c => panic!("unexpected {:?} in object at {i}", c as char),
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut a = Vec::new();
            ws(b, i);
            if b[*i] == b']' {
                *i += 1;
                return Json::Arr(a);
            }
            loop {
                a.push(value(b, i));
                ws(b, i);
                *i += 1;
                match b[*i - 1] {
                    b',' => continue,
                    b']' => break Json::Arr(a),
                    c => panic!("unexpected {:?} in array at {i}", c as char),
                }
            }
        }
        b'"' => {
            *i += 1;
            let mut s = String::new();
            loop {
                let c = b[*i];
                *i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let e = b[*i];
                        *i += 1;
                        match e {
                            b'n' => s.push('\n'),
                            b't' => s.push('\t'),
                            b'r' => s.push('\r'),
                            b'u' => {
                                let h = std::str::from_utf8(&b[*i..*i + 4]).unwrap();
                                s.push(
                                    char::from_u32(u32::from_str_radix(h, 16).unwrap()).unwrap(),
                                );
                                *i += 4;
                            }
                            other => s.push(other as char),
                        }
                    }
                    _ => {
                        // Copy one UTF-8 sequence.
                        let start = *i - 1;
                        while *i < b.len() && (b[*i] & 0xC0) == 0x80 {
                            *i += 1;
                        }
                        s.push_str(std::str::from_utf8(&b[start..*i]).unwrap());
                    }
                }
            }
            Json::Str(s)
        }
        b't' => {
            *i += 4;
            Json::Bool(true)
        }
        b'f' => {
            *i += 5;
            Json::Bool(false)
        }
        b'n' => {
            *i += 4;
            Json::Null
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            Json::Num(std::str::from_utf8(&b[start..*i]).unwrap().parse().unwrap())
        }
    };
    v
}
