//! The openEuler `/proc/PID/idle_pages` stream (spec §9.1): `idle_pages_stream::parse` on
//! any bytes, for any scanned window, with a sink that may fail.
//!
//! The input is `window start (8 bytes) | window length (8) | sink fails after N records
//! (1) | stream`. Properties: the parser never panics and agrees with a model written from
//! the spec with 128-bit arithmetic (same records, same end address, an error exactly when
//! the model finds one); every record lies in the window, is aligned to its size class and
//! does not overflow; a sink error stops the parse at once and is returned.
#![no_main]

use etmem::error::Error;
use etmem::track::idle_pages_stream::{parse, PageState, Record, SET_ADDR};
use etmem::types::{PageSize, Range};
use libfuzzer_sys::fuzz_target;

/// What the spec's table says a type nibble is: (size, pages per nr, state), a hole, or
/// the address command.
enum Kind {
    Pages(PageSize, u64, PageState),
    Hole(PageSize),
    Command,
}

fn kind(t: u8) -> Option<Kind> {
    let ptes_per_pmd = PageSize::Pmd.bytes() / PageSize::Base.bytes();
    Some(match t {
        0 => Kind::Pages(PageSize::Base, 1, PageState::Accessed),
        1 => Kind::Pages(PageSize::Pmd, 1, PageState::Accessed),
        2 => Kind::Pages(PageSize::Pud, 1, PageState::Accessed),
        3 => Kind::Pages(PageSize::Base, 1, PageState::Dirty),
        4 => Kind::Pages(PageSize::Pmd, 1, PageState::Dirty),
        5 => Kind::Pages(PageSize::Base, 1, PageState::Idle),
        6 => Kind::Pages(PageSize::Pmd, 1, PageState::Idle),
        7 => Kind::Pages(PageSize::Base, ptes_per_pmd, PageState::Idle),
        8 => Kind::Hole(PageSize::Base),
        9 => Kind::Hole(PageSize::Pmd),
        10 => Kind::Command,
        _ => return None,
    })
}

/// The records the spec describes, and the end address, or `Err(())` where the parser must
/// refuse the stream (the records are then those before the bad byte).
fn model(stream: &[u8], w: Range) -> (Vec<Record>, Result<u64, ()>) {
    let mut out = Vec::new();
    let end = walk(stream, w, &mut out);
    (out, end)
}

fn walk(stream: &[u8], w: Range, out: &mut Vec<Record>) -> Result<u64, ()> {
    let mut addr: Option<u128> = None;
    let mut i = 0;
    while i < stream.len() {
        let b = stream[i];
        let nr = u128::from(b & 0x0f);
        let (size, mul, state) = match kind(b >> 4).ok_or(())? {
            Kind::Command => {
                if b != SET_ADDR || i + 9 > stream.len() {
                    return Err(());
                }
                let a = u64::from_be_bytes(stream[i + 1..i + 9].try_into().unwrap());
                if !(w.start <= a && a < w.end) {
                    return Err(());
                }
                addr = Some(a.into());
                i += 9;
                continue;
            }
            Kind::Pages(size, mul, state) => (size, mul, Some(state)),
            Kind::Hole(size) => (size, 1, None),
        };
        let cur = addr.ok_or(())?;
        if nr != 0 && !(u128::from(w.start) <= cur && cur < u128::from(w.end)) {
            return Err(());
        }
        let pages = nr * u128::from(mul);
        let next = cur + pages * u128::from(size.bytes());
        if next > u128::from(u64::MAX) {
            return Err(());
        }
        // An idle-PTEs record covers whole PMDs, so it must start on one.
        let align = u128::from(if mul > 1 { PageSize::Pmd } else { size }.bytes());
        if let Some(state) = state {
            if pages > 0 && cur % align == 0 {
                out.push(Record {
                    addr: cur as u64,
                    size,
                    nr: pages as u64,
                    state,
                });
            }
        }
        addr = Some(next);
        i += 1;
    }
    Ok(addr.map_or(w.start, |a| a as u64))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let start = u64::from_le_bytes(data[0..8].try_into().unwrap());
    let len = u64::from_le_bytes(data[8..16].try_into().unwrap());
    // Mostly small windows at a seed's address, sometimes anything at all.
    let len = if len >> 63 == 1 { len } else { len % (1 << 40) };
    let window = Range::new(start, start.saturating_add(len));
    let fail_after = usize::from(data[16]);
    let stream = &data[17..];

    let mut got = Vec::new();
    let mut calls_after_failure = 0;
    let res = parse(stream, window, |r| {
        if got.len() == fail_after {
            calls_after_failure += 1;
            return Err(Error::invalid("sink full"));
        }
        assert!(window.contains(r.addr), "{r:?} outside {window}");
        let align = if r.size == PageSize::Base && r.state == PageState::Idle && r.nr > 15 {
            PageSize::Pmd.bytes()
        } else {
            r.size.bytes()
        };
        assert_eq!(r.addr % align, 0, "{r:?}");
        assert!(r.nr > 0);
        assert!(r
            .nr
            .checked_mul(r.size.bytes())
            .and_then(|l| r.addr.checked_add(l))
            .is_some());
        got.push(r);
        Ok(())
    });
    assert!(
        calls_after_failure <= 1,
        "the sink was called after it failed"
    );

    let (want, end) = model(stream, window);
    let delivered = want.len().min(fail_after);
    assert_eq!(got, want[..delivered]);
    match (end, res) {
        (Ok(end), Ok(next)) => {
            assert!(want.len() <= fail_after, "the sink's error was lost");
            assert_eq!(next, end);
        }
        (Ok(_), Err(e)) => {
            // Only the sink's own error may stop a stream the model accepts.
            assert!(want.len() > fail_after && e.msg == "sink full", "{e}");
        }
        (Err(()), Ok(next)) => panic!("accepted a bad stream, end {next:#x}, records {got:?}"),
        (Err(()), Err(e)) => {
            if want.len() > fail_after {
                assert_eq!(e.msg, "sink full");
            } else {
                assert!(e.msg.starts_with("idle_pages stream: byte "), "{e}");
            }
        }
    }
});
