//! `.so` plug-in engines (the `dlopen` feature): a C plug-in compiled here against
//! `include/etmem/engine.h` (`tests/c/my_engine.c`) logs each of its nine callbacks, so
//! their order and arguments are checked against spec §8.2 and §5.2 through a real
//! daemon; its command handler's answer reaches `etmem engine`; and what `obj add` must
//! refuse, with nothing added: an unknown `ops_name`, a plug-in not built against the
//! header or for another ABI, a refusal of its own keys, and files that fail the checks
//! (writable by group or others, not root's, a symlink to such a file). A path swapped
//! between the check and the load loads the file that was checked. And the example
//! plug-in (`examples/cold_pageout.c`) swaps the workload's cold region out and keeps its
//! hot one.
#![cfg(feature = "dlopen")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::cc;
use common::daemon::{Daemon, Scratch};
use common::workload::Workload;
use common::{can_swap, require_root, wait_for};
use etmem::act::swapped_bytes;

/// Build `SRC` (a path in the project) as a plug-in `NAME` in `dir` (linked to libetmemd_scan.so), mode
/// 0700, owned by root (we are root): what etmemd accepts.
fn plugin(dir: &Scratch, name: &str, src: &str, extra: &[&str]) -> String {
    let out = dir.path(name);
    let mut args = vec!["-shared".to_string(), "-fPIC".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(cc::scan_library_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cc::compile(src, &out, &args);
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o700)).unwrap();
    out
}

/// Root, gcc, and a scratch directory with my_engine.so in it; `None` after a skip.
fn setup(tag: &str) -> Option<(Scratch, String)> {
    if !require_root() || !cc::gcc_or_skip() {
        return None;
    }
    let dir = Scratch::new(tag);
    let so = plugin(&dir, "my_engine.so", "tests/c/my_engine.c", &[]);
    Some((dir, so))
}

/// A project `P`, the engine `my_engine` of plug-in `so` with ops `ops` logging to
/// `log`, and its task `t1` on `pid`; `(key, value)` pairs replace or add keys of the
/// engine (`engine.KEY`) or the task (`task.KEY`).
fn conf(so: &str, ops: &str, log: &str, pid: i32, set: &[(&str, &str)]) -> String {
    let mut engine = vec![
        ("name", "thirdparty".to_string()),
        ("project", "P".into()),
        ("eng_name", "my_engine".into()),
        ("libname", so.into()),
        ("ops_name", ops.into()),
        ("engine_private_key", "1024".into()),
        ("log", log.into()),
    ];
    let mut task = vec![
        ("project", "P".to_string()),
        ("engine", "my_engine".into()),
        ("name", "t1".into()),
        ("type", "pid".into()),
        ("value", pid.to_string()),
        ("task_private_key", "2048".into()),
    ];
    for (k, v) in set {
        let (group, key) = k.split_once('.').unwrap();
        let list = if group == "engine" {
            &mut engine
        } else {
            &mut task
        };
        match list.iter_mut().find(|(name, _)| *name == key) {
            Some(kv) => kv.1 = v.to_string(),
            None => list.push((key, v.to_string())),
        }
    }
    let group = |name: &str, kv: &[(&str, String)]| {
        let lines: String = kv.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        format!("[{name}]\n{lines}")
    };
    format!(
        "[project]\nname=P\nloop=1\ninterval=1\nsleep=1\n{}{}",
        group("engine", &engine),
        group("task", &task)
    )
}

/// The plug-in's log, line by line.
fn log_lines(log: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn nine_callbacks_in_order_with_private_keys_and_the_command_answer() {
    let Some((dir, so)) = setup("plugin-order") else {
        return;
    };
    let log = dir.path("calls.log");
    let w = Workload::spawn(&["--hot-mib", "1", "--cold-mib", "1", "--children", "1"]);
    let (main, child) = (w.pid, w.children[0]);
    let d = Daemon::start("plugin-order");
    let file = dir.conf("p.conf", &conf(&so, "my_engine_ops", &log, main, &[]));
    d.add(&file).expect(0);

    d.run(&["project", "start", "-n", "P"]).expect(0);
    let both = [
        format!("alloc_pid_params t1 {main}"),
        format!("alloc_pid_params t1 {child}"),
    ];
    assert!(
        wait_for(Duration::from_secs(20), || {
            let l = log_lines(&log);
            both.iter().all(|b| l.contains(b))
        }),
        "no alloc_pid_params for both processes: {:?}",
        log_lines(&log)
    );

    let verbose = d
        .run(&["project", "show", "-v", "-n", "P"])
        .expect(0)
        .stdout;
    assert!(
        verbose.contains(&format!("a .so plug-in ({so})")),
        "{verbose}"
    );
    // The command handler's answer, with what libetmemd_scan.so found in each process.
    let r = d
        .run(&["engine", "showme", "-n", "P", "-e", "my_engine", "-t", "t1"])
        .expect(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "msg to client", "{}", r.stdout);
    for (line, pid) in lines[1..].iter().zip([main, child]) {
        let vmas: u64 = line
            .strip_prefix(&format!("pid {pid} vmas "))
            .unwrap_or_else(|| panic!("{line:?} is not about process {pid}"))
            .parse()
            .unwrap();
        assert!(vmas > 0, "{}", r.stdout);
    }
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    // A handler that fails: its output and the failure both reach the client.
    d.run(&["engine", "fail", "-n", "P", "-e", "my_engine"])
        .expect(1)
        .err_has(&["msg to client", "cannot fail", "eng_mgt_func", "returned 1"]);

    // A task added to a started project starts at once; deleted, it stops.
    let t2 = dir.conf(
        "t2.conf",
        "[task]\nproject=P\nengine=my_engine\nname=t2\ntype=name\nvalue=nonesuch\ntask_private_key=2048\n",
    );
    d.add(&t2).expect(0);
    d.run(&["obj", "del", "-f", &t2]).expect(0);

    d.run(&["project", "stop", "-n", "P"]).expect(0);
    d.run(&["obj", "del", "-f", &file]).expect(0);

    let keys = "name project eng_name libname ops_name engine_private_key log";
    let want = vec![
        format!("fill_eng_params my_engine keys {keys}"),
        "flavour good".into(),
        "project P loop 1".into(),
        "engine_private_key 1024".into(),
        "fill_task_params t1 2048".into(),
        format!("task type pid value {main}"),
        "start_task t1".into(),
        both[0].clone(),
        both[1].clone(),
        "eng_mgt_func showme t1".into(),
        "eng_mgt_func fail -".into(),
        "fill_task_params t2 2048".into(),
        "task type name value nonesuch".into(),
        "start_task t2".into(),
        "stop_task t2".into(),
        "clear_task_params t2".into(),
        "stop_task t1".into(),
        format!("free_pid_params t1 {main}"),
        format!("free_pid_params t1 {child}"),
        "clear_task_params t1".into(),
        "clear_eng_params my_engine".into(),
    ];
    // Later cycles find the same processes: no more calls for them.
    let got = log_lines(&log);
    assert_eq!(got, want, "the plug-in's calls");
}

/// `obj add` of `text` fails, naming `parts`, and adds nothing.
fn refused(d: &Daemon, dir: &Scratch, text: &str, parts: &[&str]) {
    let file = dir.conf("refused.conf", text);
    d.add(&file).expect(1).err_has(parts);
    assert_eq!(d.show(), "no project exists\n\n", "nothing added");
}

#[test]
fn obj_add_refuses_what_cannot_be_loaded_or_refuses_its_keys() {
    let Some((dir, so)) = setup("plugin-refusals") else {
        return;
    };
    let log = dir.path("calls.log");
    let me = std::process::id() as i32;
    let d = Daemon::start("plugin-refusals");
    let c = |ops: &str, set: &[(&str, &str)]| conf(&so, ops, &log, me, set);

    refused(
        &d,
        &dir,
        &c("no_such_ops", &[]),
        &["refused.conf:11: [engine] ops_name=no_such_ops: the library has no symbol no_such_ops"],
    );
    refused(
        &d,
        &dir,
        &c("not_ops", &[]),
        &["ops_name=not_ops: not_ops is not a variable"],
    );
    refused(
        &d,
        &dir,
        &c("wrong_abi_ops", &[]),
        &[
            "ops_name=wrong_abi_ops: wrong_abi_ops is no struct etmem_engine_ops of ABI version 1",
            "is 2",
        ],
    );
    let upstream = plugin(&dir, "upstream.so", "tests/c/upstream_ops.c", &[]);
    refused(
        &d,
        &dir,
        &conf(&upstream, "my_engine_ops", &log, me, &[]),
        &[
            "refused.conf:10: [engine] libname=",
            &format!("{upstream} was not built with <etmem/engine.h>"),
            "docs/porting-plugins.md",
        ],
    );
    assert!(
        log_lines(&log).is_empty(),
        "no callback ran: {:?}",
        log_lines(&log)
    );

    // The plug-in refuses its engine's key: nothing to clear.
    refused(
        &d,
        &dir,
        &c("my_engine_ops", &[("engine.engine_private_key", "1")]),
        &[
            "[engine] libname=",
            "fill_eng_params returned -1 (it refused the keys of [engine])",
        ],
    );
    let calls: Vec<String> = log_lines(&log)
        .into_iter()
        .filter(|l| l.contains("_params"))
        .collect();
    assert_eq!(calls, ["fill_eng_params my_engine keys name project eng_name libname ops_name engine_private_key log"]);
    std::fs::remove_file(&log).unwrap();

    // It refuses the task's key: the file's engine, already filled, is cleared again.
    refused(
        &d,
        &dir,
        &c("my_engine_ops", &[("task.task_private_key", "1")]),
        &[
            "refused.conf:",
            "[task] name=t1",
            "fill_task_params returned -1",
        ],
    );
    let calls: Vec<String> = log_lines(&log)
        .into_iter()
        .filter(|l| l.contains("_params"))
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        calls,
        [
            "fill_eng_params my_engine",
            "fill_task_params t1",
            "clear_eng_params my_engine"
        ]
    );
}

#[test]
fn null_callbacks_behave_as_upstream() {
    let Some((dir, so)) = setup("plugin-null") else {
        return;
    };
    let log = dir.path("calls.log");
    let me = std::process::id() as i32;
    let d = Daemon::start("plugin-null");
    // No callback at all: added (nothing to fill), but its project cannot start.
    let file = dir.conf("null.conf", &conf(&so, "start_null_ops", &log, me, &[]));
    d.add(&file).expect(0);
    d.run(&["project", "start", "-n", "P"])
        .expect(1)
        .err_has(&["my_engine", "no start_task"]);
    d.run(&["obj", "del", "-f", &file]).expect(0);
    // Only start_task: it starts, and has no command handler.
    let file = dir.conf("quiet.conf", &conf(&so, "quiet_ops", &log, me, &[]));
    d.add(&file).expect(0);
    d.run(&["project", "start", "-n", "P"]).expect(0);
    d.run(&["engine", "x", "-n", "P", "-e", "my_engine"])
        .expect(1)
        .err_has(&["no command handler"]);
    d.run(&["project", "stop", "-n", "P"]).expect(0);
    d.run(&["obj", "del", "-f", &file]).expect(0);
}

#[test]
fn plugin_files_must_be_roots_and_writable_by_root_alone() {
    let Some((dir, so)) = setup("plugin-perms") else {
        return;
    };
    let log = dir.path("calls.log");
    let me = std::process::id() as i32;
    let d = Daemon::start("plugin-perms");
    let bad = dir.path("bad.so");
    let with = |path: &str| conf(path, "my_engine_ops", &log, me, &[]);
    for mode in [0o720, 0o702, 0o777] {
        std::fs::copy(&so, &bad).unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(mode)).unwrap();
        refused(
            &d,
            &dir,
            &with(&bad),
            &[&format!("libname={bad}"), &format!("has mode {mode:04o}")],
        );
    }
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&bad, Some(65534), Some(0)).unwrap();
    refused(&d, &dir, &with(&bad), &["owned by uid 65534"]);
    // A symlink is followed: the file it leads to is checked, and named.
    let link = dir.path("link.so");
    std::os::unix::fs::symlink(&bad, &link).unwrap();
    refused(&d, &dir, &with(&link), &[&format!("libname={link}"), &bad]);
    assert!(
        log_lines(&log).is_empty(),
        "nothing was loaded: {:?}",
        log_lines(&log)
    );
    // The good file itself is accepted.
    let file = dir.conf("good.conf", &with(&so));
    d.add(&file).expect(0);
    d.run(&["obj", "del", "-f", &file]).expect(0);
}

#[test]
fn a_path_swapped_between_check_and_load_loads_the_checked_file() {
    use etmem::engine::thirdparty::library;
    use etmem::sys::trusted_file::TrustedFile;

    let Some((dir, so)) = setup("plugin-swap") else {
        return;
    };
    let log = dir.path("calls.log");
    let other = plugin(
        &dir,
        "other.so",
        "tests/c/my_engine.c",
        &["-DFLAVOUR=\"other\""],
    );
    let text = conf(&so, "my_engine_ops", &log, 1, &[]);
    let file = etmem::config::parse(&text, "swap.conf").unwrap();
    let etmem::config::EngineKind::Thirdparty(t) = &file.engines[0].kind else {
        panic!("a thirdparty engine");
    };
    let checked = TrustedFile::open(&so).unwrap();
    // Another plug-in (one that would pass the check too) takes the path meanwhile.
    std::fs::rename(&other, &so).unwrap();
    let engine = library::load(t, &file.projects[0], checked).unwrap();
    drop(engine);
    let got = log_lines(&log);
    assert!(got.contains(&"flavour good".to_string()), "{got:?}");
    assert!(!got.iter().any(|l| l.contains("other")), "{got:?}");
}

#[test]
fn daemon_shutdown_stops_and_clears_every_plugin_engine() {
    let Some((dir, so)) = setup("plugin-shutdown") else {
        return;
    };
    let log = dir.path("calls.log");
    let me = std::process::id() as i32;
    let mut d = Daemon::start("plugin-shutdown");
    let file = dir.conf("p.conf", &conf(&so, "my_engine_ops", &log, me, &[]));
    d.add(&file).expect(0);
    d.run(&["project", "start", "-n", "P"]).expect(0);
    let mut child = d.child.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let (_, status) = common::daemon::wait_exit(&mut child, Duration::from_secs(20))
        .expect("etmemd exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    let tail: Vec<String> = log_lines(&log)
        .into_iter()
        .filter(|l| !l.starts_with("alloc_pid_params") && !l.starts_with("free_pid_params"))
        .skip(6)
        .collect();
    assert_eq!(
        tail,
        [
            "start_task t1",
            "stop_task t1",
            "clear_task_params t1",
            "clear_eng_params my_engine"
        ]
    );
}

#[test]
fn the_example_plugin_swaps_the_cold_region_and_keeps_the_hot_one() {
    if !can_swap("root-owned plug-ins and process_madvise on another process") || !cc::gcc_or_skip()
    {
        return;
    }
    let dir = Scratch::new("plugin-example");
    let so = plugin(
        &dir,
        "cold_pageout.so",
        "examples/cold_pageout.c",
        &["-lpthread"],
    );
    let mut w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "64"]);
    let cold = w.cold.unwrap();
    let d = Daemon::start("plugin-example");
    let text = format!(
        "[project]\nname=P\nloop=1\ninterval=1\nsleep=1\n\
         [engine]\nname=thirdparty\nproject=P\neng_name=cold_pageout\nlibname={so}\n\
         ops_name=cold_pageout_ops\n\
         [task]\nproject=P\nengine=cold_pageout\nname=background\ntype=pid\nvalue={}\n",
        w.pid
    );
    d.add(&dir.conf("example.conf", &text)).expect(0);
    let before = swapped_bytes(w.pid).unwrap();
    d.run(&["project", "start", "-n", "P"]).expect(0);
    w.wait_cold_swapped(before);
    let out = d
        .run(&[
            "engine",
            "stats",
            "-n",
            "P",
            "-e",
            "cold_pageout",
            "-t",
            "background",
        ])
        .expect(0)
        .stdout;
    let bytes: u64 = out
        .trim()
        .strip_prefix("swapped out ")
        .and_then(|s| s.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(bytes >= cold.len() * 9 / 10, "{out}");
    d.run(&["project", "stop", "-n", "P"]).expect(0);
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
}
