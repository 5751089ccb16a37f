//! The byte stream of openEuler's `/proc/PID/idle_pages` (spec §9.1), parsed defensively:
//! a pure function over bytes, so that every malformed input is a test case and an error,
//! never a panic or a write outside the counters.
//!
//! A byte is `type << 4 | nr` (nr consecutive pages of that type); `0xA0` is followed by
//! an 8-byte big-endian virtual address that the next record starts at.

use crate::error::{Error, Result};
use crate::types::{PageSize, Range};

/// What a record says about its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    /// Accessed since the last scan: +1 (`PTE_ACCESSED`, `PMD_ACCESSED`, `PUD_PRESENT`).
    Accessed,
    /// Written since the last scan: +3 (`PTE_DIRTY`, `PMD_DIRTY`).
    Dirty,
    /// Present but not accessed: +0, still recorded (`PTE_IDLE`, `PMD_IDLE`,
    /// `PMD_IDLE_PTES`).
    Idle,
}

impl PageState {
    /// The count weight of spec §6.2.
    pub fn weight(self) -> u16 {
        match self {
            PageState::Accessed => 1,
            PageState::Dirty => 3,
            PageState::Idle => 0,
        }
    }
}

/// `nr` consecutive pages of one size class and state starting at `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Address of the first page.
    pub addr: u64,
    /// Size class of every page in the record.
    pub size: PageSize,
    /// How many pages of `size` (an idle-PTEs record is expanded to its base pages).
    pub nr: u64,
    /// What the kernel saw of these pages since the last scan.
    pub state: PageState,
}

/// The set-address command byte (`PIP_CMD_SET_HVA`).
pub const SET_ADDR: u8 = 0xA0;

/// How a type nibble is interpreted: a page record, a hole, or the address command.
#[derive(Clone, Copy)]
enum Type {
    Pages(PageSize, PageState),
    /// `PMD_IDLE_PTES`: nr PMD units of idle base pages.
    IdlePtes,
    Hole(PageSize),
    Command,
}

fn type_of(t: u8) -> Option<Type> {
    use PageSize::*;
    use PageState::*;
    Some(match t {
        0 => Type::Pages(Base, Accessed),
        1 => Type::Pages(Pmd, Accessed),
        2 => Type::Pages(Pud, Accessed),
        3 => Type::Pages(Base, Dirty),
        4 => Type::Pages(Pmd, Dirty),
        5 => Type::Pages(Base, Idle),
        6 => Type::Pages(Pmd, Idle),
        7 => Type::IdlePtes,
        8 => Type::Hole(Base),
        9 => Type::Hole(Pmd),
        10 => Type::Command,
        _ => return None,
    })
}

fn bad(at: usize, what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("idle_pages stream: byte {at}: {what}"))
}

/// Parse `stream`, the answer to a read of `window`, calling `sink` for each page record
/// (holes are skipped, misaligned records are skipped but advance the address, as
/// etmemd does). Returns the address after the last record (where the next read should
/// start). Errors: a page record before any address, an unknown type, an address record
/// cut short, an address outside `window`, address arithmetic overflow — and whatever
/// `sink` returns.
pub fn parse(
    stream: &[u8],
    window: Range,
    mut sink: impl FnMut(Record) -> Result<()>,
) -> Result<u64> {
    let mut addr: Option<u64> = None;
    let mut at = 0usize;
    while at < stream.len() {
        let b = stream[at];
        let (t, nr) = (b >> 4, u64::from(b & 0x0F));
        let ty = type_of(t).ok_or_else(|| bad(at, format!("unknown page type {t}")))?;
        let (size, count, state) = match ty {
            Type::Command => {
                if nr != 0 {
                    return Err(bad(at, format!("unknown command byte {b:#04x}")));
                }
                let Some(raw) = stream.get(at + 1..at + 9) else {
                    return Err(bad(at, "address record cut short"));
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(raw);
                let a = u64::from_be_bytes(be);
                if !window.contains(a) {
                    return Err(bad(
                        at,
                        format!("address {a:#x} outside the scanned range {window}"),
                    ));
                }
                addr = Some(a);
                at += 9;
                continue;
            }
            Type::Pages(size, state) => (size, nr, Some(state)),
            Type::IdlePtes => (
                PageSize::Base,
                nr * (PageSize::Pmd.bytes() / PageSize::Base.bytes()),
                Some(PageState::Idle),
            ),
            Type::Hole(size) => (size, nr, None),
        };
        let Some(cur) = addr else {
            return Err(bad(at, "page record before any address"));
        };
        if !window.contains(cur) && nr != 0 {
            return Err(bad(
                at,
                format!("record at {cur:#x} outside the scanned range {window}"),
            ));
        }
        let span = count
            .checked_mul(size.bytes())
            .and_then(|len| cur.checked_add(len))
            .ok_or_else(|| bad(at, "address overflow"))?;
        if let Some(state) = state {
            let align = match ty {
                Type::IdlePtes => PageSize::Pmd.bytes(),
                _ => size.bytes(),
            };
            if count > 0 && cur % align == 0 {
                sink(Record {
                    addr: cur,
                    size,
                    nr: count,
                    state,
                })?;
            }
        }
        addr = Some(span);
        at += 1;
    }
    Ok(addr.unwrap_or(window.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Range = Range {
        start: 0x7f00_0000_0000,
        end: 0x7f00_4000_0000,
    };

    fn at(a: u64) -> Vec<u8> {
        let mut v = vec![SET_ADDR];
        v.extend_from_slice(&a.to_be_bytes());
        v
    }

    fn all(stream: &[u8]) -> Result<(Vec<Record>, u64)> {
        let mut out = Vec::new();
        let next = parse(stream, W, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok((out, next))
    }

    fn rec(addr: u64, size: PageSize, nr: u64, state: PageState) -> Record {
        Record {
            addr,
            size,
            nr,
            state,
        }
    }

    #[test]
    fn every_page_type() {
        if PageSize::Base.bytes() != 4096 {
            return;
        }
        let p = 4096u64;
        let m = 2 << 20;
        let g = 1 << 30;
        let s0 = W.start;
        let mut s = at(s0);
        s.extend([0x03, 0x32, 0x51, 0x81]); // 3 accessed, 2 dirty, 1 idle, 1 hole
        let a1 = s0 + 7 * p;
        let pmd = (a1 + m - 1) & !(m - 1);
        s.extend(at(pmd));
        s.extend([0x11, 0x41, 0x61, 0x91, 0x71]); // accessed, dirty, idle, hole, idle-ptes
        let pud = W.start; // aligned to 1 GiB
        s.extend(at(pud));
        s.push(0x21);
        let (r, next) = all(&s).unwrap();
        use PageSize::*;
        use PageState::*;
        assert_eq!(
            r,
            vec![
                rec(s0, Base, 3, Accessed),
                rec(s0 + 3 * p, Base, 2, Dirty),
                rec(s0 + 5 * p, Base, 1, Idle),
                rec(pmd, Pmd, 1, Accessed),
                rec(pmd + m, Pmd, 1, Dirty),
                rec(pmd + 2 * m, Pmd, 1, Idle),
                rec(pmd + 4 * m, Base, 512, Idle),
                rec(pud, Pud, 1, Accessed),
            ]
        );
        assert_eq!(next, pud + g);
        assert_eq!(Accessed.weight() + Dirty.weight() + Idle.weight(), 4);
    }

    #[test]
    fn holes_and_misaligned_records_advance() {
        let p = PageSize::Base.bytes();
        let mut s = at(W.start + p);
        s.extend([0x8F, 0x11, 0x02]); // 15-page hole, misaligned PMD (skipped), 2 pages
        let (r, next) = all(&s).unwrap();
        let after = W.start + 16 * p + PageSize::Pmd.bytes();
        assert_eq!(r, vec![rec(after, PageSize::Base, 2, PageState::Accessed)]);
        assert_eq!(next, after + 2 * p);
    }

    #[test]
    fn empty_and_zero_count_records() {
        assert_eq!(all(&[]).unwrap(), (vec![], W.start));
        let mut s = at(W.start);
        s.extend([0x00, 0x50]);
        assert_eq!(all(&s).unwrap().0, vec![]);
    }

    #[test]
    fn stream_cut_mid_record() {
        for cut in 1..9 {
            let s = &at(W.start)[..cut];
            let e = all(s).unwrap_err();
            assert!(e.msg.contains("cut short"), "{}", e.msg);
        }
        let mut s = at(W.start);
        s.extend([0x01, SET_ADDR, 0x00, 0x7f]);
        assert!(all(&s)
            .unwrap_err()
            .msg
            .contains("byte 10: address record cut short"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(all(&[0x01]).unwrap_err().msg.contains("before any address"));
        for t in 11u8..16 {
            let mut s = at(W.start);
            s.push(t << 4 | 1);
            assert!(all(&s).unwrap_err().msg.contains("unknown page type"));
        }
        let mut s = at(W.start);
        s.push(0xA3);
        assert!(all(&s).unwrap_err().msg.contains("unknown command"));
        assert!(all(&at(W.end)).unwrap_err().msg.contains("outside"));
        assert!(all(&at(0)).unwrap_err().msg.contains("outside"));
        // Running past the window is caught at the next record.
        let mut s = at(W.end - PageSize::Base.bytes());
        s.extend([0x02, 0x01]);
        assert!(all(&s).unwrap_err().msg.contains("outside"));
        // Overflow.
        let big = Range::new(0, u64::MAX);
        let mut s = at(u64::MAX - 4096);
        s.extend([0x2F, 0x2F]);
        assert!(parse(&s, big, |_| Ok(())).is_err());
        // Pseudo-random garbage never panics.
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let n = (x % 64) as usize;
            let v: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = all(&v);
        }
    }

    #[test]
    fn sink_errors_propagate() {
        let mut s = at(W.start);
        s.push(0x01);
        let e = parse(&s, W, |_| Err(Error::invalid("stop"))).unwrap_err();
        assert_eq!(e.msg, "stop");
    }
}
