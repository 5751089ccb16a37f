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

/// `etmem engine WORD -n PROJECT -e ENGINE [-t TASK]`.
fn engine_cmd(
    d: &Daemon,
    word: &str,
    project: &str,
    engine: &str,
    task: Option<&str>,
) -> common::daemon::Run {
    let mut args = vec!["engine", word, "-n", project, "-e", engine];
    if let Some(t) = task {
        args.extend(["-t", t]);
    }
    d.run(&args)
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
    engine_cmd(&d, "showhostpages", "c", "cslide", None)
        .expect(1)
        .err_has(&["project c is not started"]);
    engine_cmd(&d, "showtaskpages", "c", "cslide", Some("w"))
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
    engine_cmd(&d, "showtaskpages", "s", "slide", Some("w"))
        .expect(1)
        .err_has(&["engine slide has no command \"showtaskpages\""]);
    // Unknown engine and task names.
    engine_cmd(&d, "showhostpages", "s", "cslide", None)
        .expect(1)
        .err_has(&["engine cslide"]);
    engine_cmd(&d, "showtaskpages", "s", "slide", Some("nosuch"))
        .expect(1)
        .err_has(&["task nosuch"]);
    d.run(&["project", "stop", "-n", "s"]).expect(0);
}

/// The engine's joint cycle, driven directly: a task whose process is gone fails alone;
/// its neighbour is scanned, located and reported. (This host has one node, so nothing
/// moves; the guest tests move.)
#[test]
fn a_vanished_target_fails_only_its_own_task() {
    use etmem::config::EngineKind;
    use etmem::engine::cslide::Cslide;
    use etmem::engine::stop::Stop;
    use etmem::engine::task_run::TaskRun;
    use etmem::engine::{Command, Engine};
    use std::sync::Arc;

    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "4"]);
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let task = |name: &str, pid: u32| {
        format!("[task]\nproject=c\nengine=cslide\nname={name}\ntype=pid\nvalue={pid}\n")
    };
    let text = format!(
        "[project]\nname=c\nloop=1\ninterval=1\nsleep=1\n\
         [engine]\nname=cslide\nproject=c\nnode_pair=0,1\nhot_threshold=1\n\
         node_mig_quota=16\nnode_hot_reserve=16\n{}{}",
        task("live", w.pid as u32),
        task("dead", gone_pid)
    );
    let mut file = etmem::config::parse(&text, "/etc/etmem/c.conf").unwrap();
    let EngineKind::Cslide(conf) = &file.engines[0].kind else {
        panic!("not a cslide engine");
    };
    let engine = Cslide::new(conf.clone());
    let project = Arc::new(file.projects.remove(0));
    let stop = Arc::new(Stop::new());
    let runs: Vec<TaskRun> = file
        .tasks
        .into_iter()
        .map(|t| TaskRun {
            project: project.clone(),
            task: Arc::new(t),
            status: Arc::default(),
            project_stop: stop.clone(),
            task_stop: Arc::new(Stop::new()),
        })
        .collect();
    let results = engine.run_joint_cycle(&runs);
    assert_eq!(results.len(), 2);
    for (run, r) in runs.iter().zip(&results) {
        match run.task.name.as_str() {
            "live" => {
                assert!(r.is_ok(), "{r:?}");
                let st = run.status();
                let t = st.last.tiering.clone().expect("tiering figures");
                // No project start, so no roles: only the total is meaningful here.
                let all = t.hot_in_dram + t.cold_in_dram + t.hot_on_slow + t.cold_on_slow;
                assert!(all >= 8 << 20, "{t:?}");
                assert!(st.last.pages_scanned >= 2048, "{:?}", st.last);
            }
            _ => {
                let e = r.as_ref().expect_err("a gone process must fail its task");
                assert!(e.msg.contains(&gone_pid.to_string()), "{e}");
            }
        }
    }
    let cmd = |task| Command {
        engine: "cslide",
        word: "showtaskpages",
        task: Some(task),
        json: false,
    };
    let table = engine.command(&cmd("live")).unwrap();
    assert!(
        table.contains(&format!("task {} pages info (KB):", w.pid)),
        "{table}"
    );
    let e = engine.command(&cmd("dead")).unwrap_err();
    assert!(e.msg.contains("task dead has no pages to show yet"), "{e}");
}
