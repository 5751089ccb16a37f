//! The scan loop: `begin`, then `loops` times an interruptible pause and a pass, checking
//! after each step that the target is still the live process we started with.

use std::time::{Duration, Instant};

use crate::error::{Error, Kind, Result};
use crate::sys::pidfd::Pidfd;
use crate::sys::process;
use crate::track::{Tracker, VmaCounts};
use crate::types::Vma;

/// How often an interruptible pause checks `stop`.
const TICK: Duration = Duration::from_millis(20);

/// Run a whole scan: `begin(vmas)`, then `loops` × (pause `interval`, `pass`). `stop` is
/// polled during pauses; when it returns true the scan ends with an error of kind `Gone`
/// saying it was interrupted. The tracker is left begun (counts readable) either way;
/// call `finish` when done with it.
pub fn scan(
    tr: &mut dyn Tracker,
    target: &Pidfd,
    vmas: &[Vma],
    loops: u32,
    interval: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    scan_observed(tr, target, vmas, loops, interval, stop, &mut |_| {})
}

/// [`scan`], handing the counts to `after_pass` after each pass (a heat map over time
/// is drawn from them).
pub fn scan_observed(
    tr: &mut dyn Tracker,
    target: &Pidfd,
    vmas: &[Vma],
    loops: u32,
    interval: Duration,
    stop: &dyn Fn() -> bool,
    after_pass: &mut dyn FnMut(&[VmaCounts]),
) -> Result<()> {
    check_target(target)?;
    tr.begin(target, vmas, stop)
        .map_err(|e| gone_or(target, e))?;
    for _ in 0..loops {
        if !pause(interval, stop) {
            return Err(Error::new(Kind::Gone, "scan interrupted"));
        }
        check_target(target)?;
        tr.pass(target, stop).map_err(|e| gone_or(target, e))?;
        after_pass(tr.counts());
    }
    check_target(target)
}

/// Sleep `d` in short ticks; false if `stop` said so first.
pub fn pause(d: Duration, stop: &dyn Fn() -> bool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(TICK.min(until - now));
    }
}

/// `Gone` if the target exited: dead, or a zombie without an address space.
pub fn check_target(target: &Pidfd) -> Result<()> {
    let pid = target.pid();
    let gone = || Error::new(Kind::Gone, format!("process {pid} exited during the scan"));
    if !target.is_alive() {
        return Err(gone());
    }
    match process::stat(pid) {
        Ok(st) if !st.is_zombie() && !st.is_kernel_thread() => Ok(()),
        _ => Err(gone()),
    }
}

/// A backend error seen after the target died is reported as the target's exit.
pub(crate) fn gone_or(target: &Pidfd, e: Error) -> Error {
    match check_target(target) {
        Err(g) => g,
        Ok(()) => e,
    }
}
