//! The cslide engine on this machine, which has one NUMA node: a project naming a node
//! the machine lacks refuses to start, says which node, and changes nothing; the engine
//! commands fail clearly on a stopped project and on an engine without them.

mod common;
use common::daemon::{Daemon, Scratch};
use common::workload::Workload;

fn cslide(name: &str, pairs: &str, pid: i32) -> String {
    format!(
        "[project]\nname={name}\nloop=1\ninterval=1\nsleep=1\n\
         [engine]\nname=cslide\nproject={name}\nnode_pair={pairs}\nhot_threshold=1\n\
         node_mig_quota=16\nnode_hot_reserve=16\n\
         [task]\nproject={name}\nengine=cslide\nname=w\ntype=pid\nvalue={pid}\n"
    )
}

#[test]
fn a_missing_node_refuses_the_start_and_changes_nothing() {
    let online = std::fs::read_to_string("/sys/devices/system/node/online").unwrap_or_default();
    if online.trim() != "0" {
        common::skip("this test needs a machine with NUMA node 0 only");
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "4"]);
    let d = Daemon::start("cslide-one-node");
    let s = Scratch::new("cslide-one-node");
    d.add(&s.conf("c.conf", &cslide("c", "1,0", w.pid)))
        .expect(0);
    let before = d.show();
    let r = d.run(&["project", "start", "-n", "c"]).expect(1);
    r.err_has(&["NUMA node 1", "online nodes are 0"]);
    assert_eq!(d.show(), before, "a refused start changed the objects");
    assert!(before.contains("false"), "{before}");
    // The project can still be deleted, and a fresh start fails the same way.
    d.run(&["project", "start", "-n", "c"]).expect(1);
    d.run(&["obj", "del", "-f", &s.path("c.conf")]).expect(0);
}

#[test]
fn engine_commands_fail_clearly() {
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "4"]);
    let d = Daemon::start("cslide-cmds");
    let s = Scratch::new("cslide-cmds");
    d.add(&s.conf("c.conf", &cslide("c", "1,0", w.pid)))
        .expect(0);
    // Not started.
    d.run(&["engine", "showhostpages", "-n", "c", "-e", "cslide"])
        .expect(1)
        .err_has(&["project c is not started"]);
    d.run(&[
        "engine",
        "showtaskpages",
        "-n",
        "c",
        "-e",
        "cslide",
        "-t",
        "w",
    ])
    .expect(1)
    .err_has(&["project c is not started"]);
    // A slide engine has no engine commands.
    let slide = format!(
        "[project]\nname=s\nloop=1\ninterval=1\nsleep=5\n[engine]\nname=slide\nproject=s\n\
         [task]\nproject=s\nengine=slide\nname=w\ntype=pid\nvalue={}\nT=1\n",
        w.pid
    );
    d.add(&s.conf("s.conf", &slide)).expect(0);
    d.run(&["project", "start", "-n", "s"]).expect(0);
    d.run(&[
        "engine",
        "showtaskpages",
        "-n",
        "s",
        "-e",
        "slide",
        "-t",
        "w",
    ])
    .expect(1)
    .err_has(&["engine slide has no command \"showtaskpages\""]);
    // Unknown engine and task names.
    d.run(&["engine", "showhostpages", "-n", "s", "-e", "cslide"])
        .expect(1)
        .err_has(&["engine cslide"]);
    d.run(&[
        "engine",
        "showtaskpages",
        "-n",
        "s",
        "-e",
        "slide",
        "-t",
        "nosuch",
    ])
    .expect(1)
    .err_has(&["task nosuch"]);
    d.run(&["project", "stop", "-n", "s"]).expect(0);
}
