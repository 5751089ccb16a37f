//! A real server to swap: `redis-server` (persistence off, on a unix socket) loaded with
//! a dataset, and a load generator speaking RESP that issues pipelined GET/SET with keys
//! drawn from a Zipf distribution whose hot set shifts at a set time. Every GET's value
//! is checked against what the generator last wrote, so a swap that lost or mixed memory
//! is an error, not a number. Shared by `tests/server_short.rs` and `benches/server.rs`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server, killed on drop.
pub struct Redis {
    child: Child,
    /// Its socket.
    pub socket: PathBuf,
}

impl Redis {
    /// Start `redis-server` in `dir` (created if needed) listening on a unix socket
    /// there, with persistence and protected mode off. `None` if redis-server is not
    /// installed.
    pub fn start(dir: &Path) -> Option<Redis> {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis { child, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        while UnixStream::connect(&r.socket).is_err() {
            assert!(Instant::now() < deadline, "redis-server never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(r)
    }

    /// The server's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A connection to it.
    pub fn connect(&self) -> Conn {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        Conn {
            w: s.try_clone().unwrap(),
            r: BufReader::with_capacity(1 << 16, s),
            out: Vec::with_capacity(1 << 16),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One RESP connection that pipelines: commands are queued, then sent and answered
/// together.
pub struct Conn {
    w: UnixStream,
    r: BufReader<UnixStream>,
    out: Vec<u8>,
}

/// A reply the generator cares about.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and other simple strings.
    Ok,
    /// A bulk string.
    Bulk(Vec<u8>),
    /// `$-1`: no such key.
    Nil,
}

impl Conn {
    /// Queue a command.
    pub fn queue(&mut self, args: &[&[u8]]) {
        let _ = write!(self.out, "*{}\r\n", args.len());
        for a in args {
            let _ = write!(self.out, "${}\r\n", a.len());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Send the queued commands and read `n` replies.
    pub fn flush(&mut self, n: usize) -> Vec<Reply> {
        self.w.write_all(&self.out).unwrap();
        self.out.clear();
        (0..n).map(|_| self.reply()).collect()
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(l.ends_with("\r\n"), "bad RESP line {l:?}");
        l.truncate(l.len() - 2);
        l
    }

    fn reply(&mut self) -> Reply {
        let l = self.line();
        match l.as_bytes().first() {
            Some(b'+') => Reply::Ok,
            Some(b'$') if l == "$-1" => Reply::Nil,
            Some(b'$') => {
                let n: usize = l[1..].parse().unwrap();
                let mut v = vec![0; n + 2];
                self.r.read_exact(&mut v).unwrap();
                v.truncate(n);
                Reply::Bulk(v)
            }
            _ => panic!("redis answered {l:?}"),
        }
    }

    /// The value of `INFO memory`'s `used_memory` (bytes the server's allocator holds).
    pub fn used_memory(&mut self) -> u64 {
        self.queue(&[b"INFO", b"memory"]);
        match self.flush(1).pop() {
            Some(Reply::Bulk(v)) => String::from_utf8_lossy(&v)
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0),
            r => panic!("INFO answered {r:?}"),
        }
    }
}

/// The key of item `i`.
pub fn key(i: usize) -> Vec<u8> {
    format!("key:{i:09}").into_bytes()
}

/// The value of item `i` at `version`, `size` bytes: a header naming both, then bytes
/// that depend on them (not all one byte: zram should not get it for free).
pub fn value(i: usize, version: u32, size: usize) -> Vec<u8> {
    let mut v = format!("{i}:{version}:").into_bytes();
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(version);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 16) as u8);
    }
    v.truncate(size);
    v
}

/// The dataset's shape.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    /// Items.
    pub items: usize,
    /// Bytes per value.
    pub value_size: usize,
}

impl Dataset {
    /// Write every item at version 0, pipelined.
    pub fn load(&self, c: &mut Conn) {
        let batch = 256;
        for start in (0..self.items).step_by(batch) {
            let end = (start + batch).min(self.items);
            for i in start..end {
                c.queue(&[b"SET", &key(i), &value(i, 0, self.value_size)]);
            }
            for r in c.flush(end - start) {
                assert_eq!(r, Reply::Ok);
            }
        }
    }
}

/// A Zipf(θ) sampler over ranks 0..n (rank 0 the most popular), by inverting the CDF.
pub struct Zipf {
    cdf: Vec<f64>,
    rng: u64,
}

impl Zipf {
    /// The sampler for `n` ranks, exponent `theta`, seeded by `seed`.
    pub fn new(n: usize, theta: f64, seed: u64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for r in 1..=n {
            sum += 1.0 / (r as f64).powf(theta);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf, rng: seed | 1 }
    }

    /// A uniform number in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The share of draws that land on the `ranks` least popular ranks (the CDF ends at
    /// exactly 1, so no ranks is a share of 0).
    pub fn tail_share(&self, ranks: usize) -> f64 {
        self.cdf
            .len()
            .checked_sub(ranks + 1)
            .map_or(1.0, |i| 1.0 - self.cdf[i])
    }

    /// The next rank.
    pub fn sample(&mut self) -> usize {
        let u = self.uniform();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// How to drive the server.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// How long to run.
    pub duration: Duration,
    /// When the hot set moves (to the other half of the keys), from the start.
    pub shift_at: Duration,
    /// Zipf exponent (0.99: YCSB's default skew).
    pub theta: f64,
    /// Share of requests that are SET.
    pub set_ratio: f64,
    /// Requests per pipelined batch.
    pub depth: usize,
}

/// What a run measured.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    /// Requests answered.
    pub requests: u64,
    /// GETs whose value was not what was last written (must be 0).
    pub wrong: u64,
    /// Round-trip time of each batch, µs, sorted.
    pub batch_us: Vec<u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Measured {
    /// Requests per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..1) of the batch round trip, µs.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.batch_us.is_empty() {
            return 0;
        }
        let i = ((self.batch_us.len() - 1) as f64 * q).round() as usize;
        self.batch_us[i]
    }
}

/// Drive `c` with `load` over `data`, calling `tick` about once a second (for sampling
/// memory). Checks every GET against the versions this run wrote.
pub fn drive(c: &mut Conn, data: Dataset, load: Load, mut tick: impl FnMut(Duration)) -> Measured {
    let mut zipf = Zipf::new(data.items, load.theta, 0x5eed);
    let mut versions = vec![0u32; data.items];
    let mut m = Measured::default();
    let t0 = Instant::now();
    let mut next_tick = Duration::from_secs(1);
    let mut batch: Vec<(usize, bool, u32)> = Vec::with_capacity(load.depth);
    while t0.elapsed() < load.duration {
        let offset = if t0.elapsed() >= load.shift_at {
            data.items / 2
        } else {
            0
        };
        batch.clear();
        for _ in 0..load.depth {
            let i = (zipf.sample() + offset) % data.items;
            let set = zipf.uniform() < load.set_ratio;
            if set {
                versions[i] += 1;
                c.queue(&[b"SET", &key(i), &value(i, versions[i], data.value_size)]);
            } else {
                c.queue(&[b"GET", &key(i)]);
            }
            // The version this request must see: commands run in order.
            batch.push((i, set, versions[i]));
        }
        let sent = Instant::now();
        let replies = c.flush(batch.len());
        m.batch_us.push(sent.elapsed().as_micros() as u64);
        for (&(i, set, version), r) in batch.iter().zip(replies) {
            let good = if set {
                r == Reply::Ok
            } else {
                r == Reply::Bulk(value(i, version, data.value_size))
            };
            m.wrong += u64::from(!good);
        }
        m.requests += batch.len() as u64;
        if t0.elapsed() >= next_tick {
            tick(t0.elapsed());
            next_tick += Duration::from_secs(1);
        }
    }
    m.elapsed = t0.elapsed();
    m.batch_us.sort_unstable();
    m
}
