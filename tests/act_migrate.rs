//! The migration actuator against this host's kernel, which has one NUMA node (0): a
//! child's pages are found on node 0, "moved" to node 0 (all report there), a move to a
//! node that does not exist fails saying so, and unmapped addresses come back absent.
//! Needs root (CAP_SYS_NICE for MPOL_MF_MOVE_ALL). Moves between two real nodes are in
//! tests/guest_migrate.rs.

mod common;

use common::workload::Workload;
use etmem::act::migrate::{can_move_others, Migrator, Place};
use etmem::error::Kind;
use etmem::sys::pidfd::Pidfd;
use etmem::types::{page_size, PageSize, Range};

/// An address below `mmap_min_addr`: never mapped in any process.
const UNMAPPED: u64 = 0x1000;

fn base_pages(r: Range) -> Vec<u64> {
    (r.start..r.end).step_by(page_size() as usize).collect()
}

/// The workload `etmem workload ARGS...` and a pidfd of it; `None` (skipped) when not
/// root.
fn start(args: &[&str]) -> Option<(Workload, Pidfd)> {
    if !common::root_or_skip("move_pages with MPOL_MF_MOVE_ALL over a child") {
        return None;
    }
    assert!(can_move_others(), "root without CAP_SYS_NICE in CapEff");
    let w = Workload::spawn(args);
    let target = Pidfd::open(w.pid).unwrap();
    Some((w, target))
}

#[test]
fn pages_are_located_and_moved_to_their_own_node() {
    let Some((mut w, target)) = start(&["--hot-mib", "8", "--cold-mib", "8"]) else {
        return;
    };
    let mut pages = base_pages(w.hot.unwrap());
    pages.extend(base_pages(w.cold.unwrap()));
    assert_eq!(pages.len(), 4096, "16 MiB of 4 KiB pages");
    pages.push(UNMAPPED);

    let mut m = Migrator::new();
    let mut places = Vec::new();
    m.locate(&target, &pages, &mut places).unwrap();
    assert_eq!(places.len(), pages.len());
    let on0 = places.iter().filter(|&&p| p == Place::Node(0)).count();
    assert_eq!(on0, 4096, "every page of the workload is on node 0");
    assert_eq!(places[4096], Place::Absent);

    // 4097 pages: two calls (BATCH is 4096), and the unmapped one counted absent.
    let sized: Vec<(u64, PageSize)> = pages.iter().map(|&a| (a, PageSize::Base)).collect();
    let r = m.move_to(&target, &sized, 0, &|| false).unwrap();
    println!("move to node 0: {}", r.summary());
    assert_eq!(r.calls, 2);
    assert_eq!((r.asked.pages, r.asked.bytes), (4097, 4097 * page_size()));
    assert_eq!((r.moved.pages, r.moved.bytes), (4096, 16 << 20));
    assert_eq!((r.absent.pages, r.absent.bytes), (1, page_size()));
    assert_eq!(
        r.busy.pages + r.no_memory.pages + r.denied.pages + r.other.pages,
        0
    );
    assert!(!r.stopped);

    m.locate(&target, &pages[..4096], &mut places).unwrap();
    assert!(places.iter().all(|&p| p == Place::Node(0)), "{places:?}");
    assert!(w.verify().starts_with("verify ok"));
}

#[test]
fn a_node_that_is_not_online_is_named() {
    let Some((w, target)) = start(&["--hot-mib", "1", "--cold-mib", "1"]) else {
        return;
    };
    let pages: Vec<_> = base_pages(w.cold.unwrap())
        .into_iter()
        .map(|a| (a, PageSize::Base))
        .collect();
    let mut m = Migrator::new();
    let e = m.move_to(&target, &pages, 99, &|| false).unwrap_err();
    assert_eq!(e.kind, Kind::Invalid, "{e}");
    assert_eq!(e.msg, "NUMA node 99 is not online (or has no memory)");
}

#[test]
fn unmapped_pages_are_absent_and_a_stop_is_prompt() {
    let Some((_w, target)) = start(&["--hot-mib", "1", "--cold-mib", "1"]) else {
        return;
    };
    // Below mmap_min_addr, and between the program (0x55...) and the mmap area (0x7f...).
    let holes = [UNMAPPED, UNMAPPED + page_size(), 0x6fff_ffff_f000];
    let mut m = Migrator::new();
    let mut places = Vec::new();
    m.locate(&target, &holes, &mut places).unwrap();
    assert_eq!(places, vec![Place::Absent; holes.len()]);

    let pages: Vec<_> = holes.iter().map(|&a| (a, PageSize::Base)).collect();
    let r = m.move_to(&target, &pages, 0, &|| false).unwrap();
    assert_eq!(r.absent.pages, 3, "{}", r.summary());
    assert_eq!(r.moved.pages, 0);

    let r = m.move_to(&target, &pages, 0, &|| true).unwrap();
    assert!(r.stopped && r.calls == 0 && r.asked.pages == 0, "{r:?}");
}

#[test]
fn an_exited_process_is_gone() {
    let Some((w, target)) = start(&["--hot-mib", "1"]) else {
        return;
    };
    let hot = w.hot.unwrap();
    drop(w);
    let mut m = Migrator::new();
    let e = m
        .locate(&target, &base_pages(hot), &mut Vec::new())
        .unwrap_err();
    assert_eq!(e.kind, Kind::Gone, "{e}");
    let pages = [(hot.start, PageSize::Base)];
    let e = m.move_to(&target, &pages, 0, &|| false).unwrap_err();
    assert_eq!(e.kind, Kind::Gone, "{e}");
}
