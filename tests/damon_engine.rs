//! The damon engine against a kdamond etmemd did not set up: this machine's own (its
//! DAMON monitors physical memory with a pageout scheme), or in the guest kernel one the
//! test sets up to play that part. `project start` must fail naming that kdamond and its
//! pid, and leave every file of it as it was.

mod common;
use common::daemon::{Daemon, Scratch};
use common::workload::Workload;

const K: &str = "/sys/kernel/mm/damon/admin/kdamonds";

/// The files that describe a kdamond's setup and state, with their contents.
fn snapshot() -> Vec<(String, String)> {
    let mut files = vec![format!("{K}/nr_kdamonds")];
    for rel in [
        "state",
        "pid",
        "contexts/nr_contexts",
        "contexts/0/operations",
        "contexts/0/monitoring_attrs/intervals/sample_us",
        "contexts/0/monitoring_attrs/intervals/aggr_us",
        "contexts/0/monitoring_attrs/intervals/update_us",
        "contexts/0/monitoring_attrs/nr_regions/min",
        "contexts/0/monitoring_attrs/nr_regions/max",
        "contexts/0/targets/nr_targets",
        "contexts/0/schemes/nr_schemes",
        "contexts/0/schemes/0/action",
        "contexts/0/schemes/0/access_pattern/sz/min",
        "contexts/0/schemes/0/access_pattern/sz/max",
        "contexts/0/schemes/0/access_pattern/nr_accesses/min",
        "contexts/0/schemes/0/access_pattern/nr_accesses/max",
        "contexts/0/schemes/0/access_pattern/age/min",
        "contexts/0/schemes/0/access_pattern/age/max",
        "contexts/0/schemes/0/quotas/ms",
        "contexts/0/schemes/0/quotas/bytes",
        "contexts/0/schemes/0/watermarks/metric",
    ] {
        files.push(format!("{K}/0/{rel}"));
    }
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap_or_else(|e| format!("<{e}>"));
            (f, text)
        })
        .collect()
}

fn write(rel: &str, value: &str) {
    let path = format!("{K}/{rel}");
    std::fs::write(&path, value).unwrap_or_else(|e| panic!("write {value} to {path}: {e}"));
}

/// When no kdamond runs, this test plays the other user: a paddr kdamond with a `stat`
/// scheme, turned off and removed again when dropped.
struct OtherUser(bool);

impl OtherUser {
    fn ensure() -> OtherUser {
        let n = std::fs::read_to_string(format!("{K}/nr_kdamonds")).unwrap_or_default();
        if n.trim() != "0" {
            return OtherUser(false);
        }
        write("nr_kdamonds", "1");
        write("0/contexts/nr_contexts", "1");
        write("0/contexts/0/operations", "paddr");
        write("0/contexts/0/targets/nr_targets", "1");
        write("0/contexts/0/schemes/nr_schemes", "1");
        write("0/contexts/0/schemes/0/action", "stat");
        write("0/state", "on");
        OtherUser(true)
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::fs::write(format!("{K}/0/state"), "off");
            for _ in 0..100 {
                if std::fs::write(format!("{K}/nr_kdamonds"), "0").is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn a_kdamond_of_someone_else_refuses_the_start_and_is_left_as_it_was() {
    refused_by_another_kdamond();
}

/// The same in the guest kernel, where no kdamond runs: the test sets one up itself, as
/// another DAMON user would.
#[test]
fn a_kdamond_of_someone_else_refuses_the_start_in_guest() {
    let opts = common::guest::GuestOpts::mem(1024);
    if common::guest::in_guest_or_rerun_with(
        "a_kdamond_of_someone_else_refuses_the_start_in_guest",
        &opts,
    ) {
        refused_by_another_kdamond();
    }
}

fn refused_by_another_kdamond() {
    if !std::path::Path::new(K).is_dir() {
        common::skip("this kernel has no DAMON sysfs interface (CONFIG_DAMON_SYSFS)");
        return;
    }
    if !common::require_root() {
        return;
    }
    let _other = OtherUser::ensure();
    let pid = std::fs::read_to_string(format!("{K}/0/pid")).unwrap();
    let pid = pid.trim();
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "4"]);
    let d = Daemon::start("damon-foreign");
    let s = Scratch::new("damon-foreign");
    let conf = format!(
        "[project]\nname=d\nscan_type=region\nsample_interval=5000\naggr_interval=100000\n\
         update_interval=1000000\nmin_nr_regions=10\nmax_nr_regions=1000\n\
         [engine]\nname=damon\nproject=d\nmin_size=0\nmax_size=9223372036854775807\n\
         min_acc=0\nmax_acc=0\nmin_age=0\nmax_age=4294967295\naction=pageout\n\
         [task]\nproject=d\nengine=damon\nname=w\ntype=pid\nvalue={}\n",
        w.pid
    );
    d.add(&s.conf("d.conf", &conf)).expect(0);
    let before = snapshot();
    let show = d.show();
    d.run(&["project", "start", "-n", "d"]).expect(1).err_has(&[
        "DAMON is in use by someone else",
        &format!("kdamond 0 (on, pid {pid})"),
    ]);
    assert_eq!(snapshot(), before, "the other kdamond's files changed");
    assert_eq!(d.show(), show, "a refused start changed the objects");
}
