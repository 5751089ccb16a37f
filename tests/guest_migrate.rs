//! Migration between two real NUMA nodes, inside the guest kernel (`../shared/vm/run
//! --tier 512` adds node 1: 512 MiB and no CPUs, a slow tier). The workload's cold pages
//! go to node 1 and come back; where they are is checked in `/proc/PID/numa_maps`, the
//! kernel's own count, not in what `move_pages` said.

mod common;

use common::guest::{in_guest_or_rerun_with, GuestOpts};
use common::numa_maps::{self, parse_vma};
use common::workload::Workload;
use etmem::act::migrate::{Migrator, MoveReport, Place};
use etmem::sys::numa;
use etmem::sys::pidfd::Pidfd;
use etmem::types::{page_size, PageSize, Range};

const GUEST: GuestOpts = GuestOpts::tier(1024, 512);

/// Automatic NUMA balancing off, so only our moves move pages.
fn balancing_off() {
    std::fs::write("/proc/sys/kernel/numa_balancing", "0").expect("turn numa_balancing off");
}

/// The guest's two nodes as the sys readers see them, with balancing off.
fn two_nodes() {
    balancing_off();
    assert_eq!(numa::online_nodes(), vec![0, 1]);
    assert_eq!(numa::node_cpus(1), Some(vec![]), "node 1 has no CPUs");
    assert!(numa::node_cpus(0).is_some_and(|c| !c.is_empty()));
    let mem = etmem::sys::node_mem::node_meminfo(1).unwrap();
    println!("node 1: {mem:?}, tiers {:?}", numa::memory_tiers());
    assert!(mem.total > 400 << 20 && mem.total <= 512 << 20, "{mem:?}");
    assert!(etmem::act::migrate::can_move_others());
}

/// One address per page of class `size` in `r`.
fn pages(r: Range, size: PageSize) -> Vec<(u64, PageSize)> {
    (r.start..r.end)
        .step_by(size.bytes() as usize)
        .map(|a| (a, size))
        .collect()
}

/// Move `r`'s pages to `node` and check the move in numa_maps: at least 95% of the
/// region on `node` afterwards, and the report's moved bytes equal to what numa_maps
/// says arrived there (within 1%, for pages the kernel moves by itself meanwhile).
fn move_and_check(w: &Workload, r: Range, size: PageSize, node: u32) -> MoveReport {
    let target = Pidfd::open(w.pid).unwrap();
    let before = numa_maps::vma(w.pid, r.start);
    let report = Migrator::new()
        .move_to(&target, &pages(r, size), node, &|| false)
        .unwrap();
    let after = numa_maps::vma(w.pid, r.start);
    println!(
        "{r} to node {node} ({size:?} pages): {}\n  numa_maps before {:?}, after {:?}",
        report.summary(),
        before.pages,
        after.pages
    );
    assert_eq!(report.asked.bytes, r.len());
    let share = after.bytes_on(node) as f64 / r.len() as f64;
    assert!(share >= 0.95, "only {:.1}% on node {node}", share * 100.0);
    // Pages already on the node report as moved too (their status is the node), so the
    // moved bytes are those that arrived plus those that were there: all it has now.
    let arrived = after.bytes_on(node).saturating_sub(before.bytes_on(node));
    let want = arrived + before.bytes_on(node);
    let diff = report.moved.bytes.abs_diff(want);
    assert!(
        diff <= r.len() / 100,
        "report says {} bytes moved, numa_maps {want}",
        report.moved.bytes
    );
    report
}

#[test]
fn cold_pages_go_to_the_slow_node_and_back() {
    if !in_guest_or_rerun_with("cold_pages_go_to_the_slow_node_and_back", &GUEST) {
        return;
    }
    two_nodes();
    let mut w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "32"]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    assert_eq!(numa_maps::vma(w.pid, cold.start).on(1), 0);

    let r = move_and_check(&w, cold, PageSize::Base, 1);
    assert_eq!(r.moved.pages, r.moved.bytes / page_size());
    let h = numa_maps::vma(w.pid, hot.start);
    assert_eq!(h.on(1), 0, "hot pages stayed on node 0: {:?}", h.pages);
    assert!(h.bytes_on(0) >= hot.len() * 95 / 100);

    // move_pages' own reading agrees with numa_maps.
    let target = Pidfd::open(w.pid).unwrap();
    let addrs: Vec<u64> = pages(cold, PageSize::Base).iter().map(|p| p.0).collect();
    let mut places = Vec::new();
    Migrator::new()
        .locate(&target, &addrs, &mut places)
        .unwrap();
    let on1 = places.iter().filter(|&&p| p == Place::Node(1)).count() as u64;
    assert_eq!(on1, numa_maps::vma(w.pid, cold.start).on(1));

    move_and_check(&w, cold, PageSize::Base, 0);
    assert_eq!(numa_maps::vma(w.pid, cold.start).on(1), 0);
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
}

#[test]
fn transparent_huge_pages_move_whole() {
    if !in_guest_or_rerun_with("transparent_huge_pages_move_whole", &GUEST) {
        return;
    }
    two_nodes();
    let mut w = Workload::spawn(&["--hot-mib", "8", "--cold-mib", "16", "--thp"]);
    let cold = w.cold.unwrap();
    let huge = |pid| {
        etmem::sys::smaps::read_smaps(pid)
            .unwrap()
            .into_iter()
            .find(|v| v.vma.range == cold)
            .map_or(0, |v| v.anon_huge)
    };
    assert_eq!(huge(w.pid), cold.len(), "the cold region is all THP");

    // One address per 2 MiB page, each counted at 2 MiB.
    let r = move_and_check(&w, cold, PageSize::Pmd, 1);
    assert_eq!(r.asked.pages, cold.len() / PageSize::Pmd.bytes());
    assert_eq!(r.moved.pages, r.asked.pages, "{}", r.summary());
    assert_eq!(r.moved.bytes, cold.len());
    println!("after the move: {} bytes of THP", huge(w.pid));

    move_and_check(&w, cold, PageSize::Pmd, 0);
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
}

#[test]
fn a_full_node_is_counted_as_no_memory() {
    let small = GuestOpts {
        tier_mib: 128,
        ..GUEST
    };
    if !in_guest_or_rerun_with("a_full_node_is_counted_as_no_memory", &small) {
        return;
    }
    balancing_off();
    // 192 MiB into a 128 MiB node: what fits moves, the rest is counted, none is lost.
    let mut w = Workload::spawn(&["--cold-mib", "192"]);
    let cold = w.cold.unwrap();
    let target = Pidfd::open(w.pid).unwrap();
    let r = Migrator::new()
        .move_to(&target, &pages(cold, PageSize::Base), 1, &|| false)
        .unwrap();
    let after = numa_maps::vma(w.pid, cold.start);
    println!(
        "{}
  numa_maps after {:?}",
        r.summary(),
        after.pages
    );
    assert!(
        r.moved.pages > 0 && r.no_memory.pages > 0,
        "{}",
        r.summary()
    );
    assert_eq!(r.asked.bytes, cold.len());
    assert_eq!(
        r.asked.pages,
        r.moved.pages + r.no_memory.pages + r.busy.pages,
        "{}",
        r.summary()
    );
    let diff = r.moved.bytes.abs_diff(after.bytes_on(1));
    assert!(
        diff <= cold.len() / 100,
        "{} vs {:?}",
        r.summary(),
        after.pages
    );

    move_and_check(&w, cold, PageSize::Base, 0);
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
}

#[test]
fn numa_maps_lines_parse() {
    let text = "55d0a0000000 default file=/bin/x mapped=3 N0=3 kernelpagesize_kB=4
7f0000000000 default anon=2048 dirty=2048 active=0 N0=1024 N1=1024 kernelpagesize_kB=4
7f0000800000 default
";
    let v = parse_vma(text, 0x7f00_0000_0000).unwrap();
    assert_eq!(
        (v.on(0), v.on(1), v.on(2), v.total()),
        (1024, 1024, 0, 2048)
    );
    assert_eq!(v.bytes_on(1), 4 << 20);
    assert_eq!(parse_vma(text, 0x7f00_0080_0000).unwrap().total(), 0);
    assert_eq!(parse_vma(text, 0x1000), None);
    assert_eq!(
        parse_vma("7f0000000000 default Nx=1", 0x7f00_0000_0000),
        None
    );
}
