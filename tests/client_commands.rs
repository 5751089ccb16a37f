//! Every client command against a real etmemd, with its exit status and output, on
//! success and on each way it can fail.

mod common;
use common::daemon::{show_row, Daemon, Run, Scratch, SHOW_HEADER};
use common::run;

const PROJECT: &str = "[project]\nname=p1\nloop=1\ninterval=1\nsleep=1\n";
const ENGINE: &str = "[engine]\nname=slide\nproject=p1\n";
const TASK: &str =
    "[task]\nproject=p1\nengine=slide\nname=t1\ntype=name\nvalue=no_such_proc\nT=1\n";

#[test]
fn add_show_start_stop_del_round_trip() {
    let d = Daemon::start("roundtrip");
    let s = Scratch::new("roundtrip");
    let f = s.conf("all.conf", &format!("{PROJECT}{ENGINE}{TASK}"));

    assert_eq!(
        d.run(&["project", "show"]).expect(0).stdout,
        "no project exists\n\n"
    );
    d.add(&f).expect(0);
    let want = format!(
        "project: p1\n{SHOW_HEADER}{}",
        show_row(1, "name", "no_such_proc", "t1", "slide", false)
    );
    assert_eq!(d.show(), want);
    assert_eq!(
        d.run(&["project", "show", "-n", "p1"]).expect(0).stdout,
        want
    );
    // Our choice (man page): a project that does not exist is a failure reply, so the
    // client's exit status can be trusted; upstream replied success.
    d.run(&["project", "show", "--name", "zz"])
        .expect(1)
        .err_has(&["error: project is not exist: project zz"]);

    d.run(&["project", "start", "-n", "p1"]).expect(0);
    assert!(d
        .show()
        .contains(&show_row(1, "name", "no_such_proc", "t1", "slide", true)));
    d.run(&["project", "start", "--name", "p1"])
        .expect(1)
        .err_has(&["error: project has been started"]);
    d.run(&["project", "stop", "-n", "p1"]).expect(0);
    d.run(&["project", "stop", "-n", "p1"])
        .expect(1)
        .err_has(&["error: project has been stopped"]);
    d.run(&["obj", "del", "--file", &f]).expect(0);
    assert_eq!(d.show(), "no project exists\n\n");
}

/// Names in any script work as upstream: a config file with UTF-8 project and task
/// names goes through add, show, start, an engine command, stop and del, and the table
/// is padded by bytes as upstream's printf pads it.
#[test]
fn utf8_names_work_end_to_end() {
    let d = Daemon::start("utf8");
    let s = Scratch::new("utf8");
    let f = s.conf(
        "utf8.conf",
        "[project]\nname=проект\nloop=1\ninterval=1\nsleep=1\n\
         [engine]\nname=slide\nproject=проект\n\
         [task]\nproject=проект\nengine=slide\nname=задача\ntype=name\nvalue=no_such_proc\nT=1\n",
    );
    d.add(&f).expect(0);
    // "задача" is 6 characters but 12 bytes: 4 spaces of padding, not 10.
    let row = "1        name     no_such_proc     задача     slide            false   \n";
    assert_eq!(
        row,
        show_row(1, "name", "no_such_proc", "задача", "slide", false)
    );
    let want = format!("project: проект\n{SHOW_HEADER}{row}");
    assert_eq!(d.show(), want);
    assert_eq!(
        d.run(&["project", "show", "-n", "проект"]).expect(0).stdout,
        want
    );
    let json = d
        .run(&["project", "show", "--json", "-n", "проект"])
        .expect(0)
        .stdout;
    assert!(
        json.contains("\"name\":\"проект\"") && json.contains("\"name\":\"задача\""),
        "{json}"
    );

    d.run(&["project", "start", "-n", "проект"]).expect(0);
    assert!(d.show().contains(&show_row(
        1,
        "name",
        "no_such_proc",
        "задача",
        "slide",
        true
    )));
    // The task name reaches the engine: the task is found, slide just has no commands.
    d.run(&[
        "engine",
        "showtaskpages",
        "-n",
        "проект",
        "-e",
        "slide",
        "-t",
        "задача",
    ])
    .expect(1)
    .err_has(&["has no command"]);
    d.run(&["project", "stop", "-n", "проект"]).expect(0);
    d.run(&["obj", "del", "-f", &f]).expect(0);
    assert_eq!(d.show(), "no project exists\n\n");
}

#[test]
fn started_task_reports_its_processes_truthfully() {
    let d = Daemon::start("truth");
    let s = Scratch::new("truth");
    let mut child = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let pid = child.id();
    let f = s.conf(
        "pid.conf",
        &format!("{PROJECT}{ENGINE}[task]\nproject=p1\nengine=slide\nname=bypid\ntype=pid\nvalue={pid}\nT=1\n"),
    );
    d.add(&f).expect(0);
    d.run(&["project", "start", "-n", "p1"]).expect(0);
    let seen = d.verbose_until(&format!("pids: {pid} "));
    assert!(seen.contains(&format!("pids: {pid} ")), "{seen}");
    // After a whole cycle, the task says which backends it used and what it found.
    let seen = d.verbose_until("backend: ");
    assert!(seen.contains("backend: "), "{seen}");
    assert!(
        seen.contains("pages scanned") || seen.contains("scanned "),
        "{seen}"
    );
    let json = d
        .run(&["project", "show", "--json", "-n", "p1"])
        .expect(0)
        .stdout;
    assert!(json.contains(&format!("\"pids\":[{pid}]")), "{json}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The process is gone: the next cycles say so and the project keeps running. A
    // type=pid task names the process it had, which exited (and will not follow
    // another process that gets the pid).
    let seen = d.verbose_until(&format!("error: process {pid} exited"));
    assert!(
        seen.contains(&format!("error: process {pid} exited")),
        "{seen}"
    );
    assert!(seen.contains("pids: none"), "{seen}");
    assert!(seen.contains("true    \n"), "{seen}");
}

#[test]
fn unknown_objects_are_refused() {
    let d = Daemon::start("unknown");
    let s = Scratch::new("unknown");
    d.run(&["project", "start", "-n", "nope"])
        .expect(1)
        .err_has(&["error: project is not exist", "nope"]);
    d.run(&["project", "stop", "-n", "nope"])
        .expect(1)
        .err_has(&["error: project is not exist"]);
    // An engine whose project does not exist; a task whose engine does not exist.
    d.add(&s.conf("e.conf", ENGINE))
        .expect(1)
        .err_has(&["error: project is not exist", "p1"]);
    d.add(&s.conf("p.conf", PROJECT)).expect(0);
    d.add(&s.conf("t.conf", TASK))
        .expect(1)
        .err_has(&["error: engine is not exist", "slide"]);
    // Deleting things that are not there.
    d.run(&["obj", "del", "-f", &s.conf("e2.conf", ENGINE)])
        .expect(1)
        .err_has(&["error: engine is not exist"]);
    d.add(&s.conf("e3.conf", ENGINE)).expect(0);
    d.run(&["obj", "del", "-f", &s.conf("t2.conf", TASK)])
        .expect(1)
        .err_has(&["error: task is not exist", "t1"]);
    let other = PROJECT.replace("p1", "p9");
    d.run(&["obj", "del", "-f", &s.conf("p9.conf", &other)])
        .expect(1)
        .err_has(&["error: project is not exist"]);
}

#[test]
fn duplicates_are_refused_and_change_nothing() {
    let d = Daemon::start("dup");
    let s = Scratch::new("dup");
    let all = s.conf("all.conf", &format!("{PROJECT}{ENGINE}{TASK}"));
    d.add(&all).expect(0);
    let before = d.show();
    d.add(&all)
        .expect(1)
        .err_has(&["error: project has been existed"]);
    d.add(&s.conf("e.conf", ENGINE))
        .expect(1)
        .err_has(&["error: engine has been existed"]);
    d.add(&s.conf("t.conf", TASK))
        .expect(1)
        .err_has(&["error: task has been existed"]);
    // Two tasks of one name in one file: refused whole.
    let twice = s.conf("twice.conf", &format!("{TASK}{TASK}").replace("t1", "t2"));
    d.add(&twice)
        .expect(1)
        .err_has(&["error: invalid parameters", "name=t2", "already defined"]);
    assert_eq!(d.show(), before);
}

#[test]
fn one_bad_group_among_good_ones_adds_nothing() {
    let d = Daemon::start("partial");
    let s = Scratch::new("partial");
    // Good project and engine, a task with T out of range (3 * loop = 3).
    let f = s.conf(
        "bad.conf",
        &format!("{PROJECT}{ENGINE}{}", TASK.replace("T=1", "T=4")),
    );
    d.add(&f).expect(1).err_has(&[
        "error: etmemd has internal error",
        "bad.conf",
        "T=4",
        "at most 3",
    ]);
    assert_eq!(d.show(), "no project exists\n\n");
    // A task that refers to a missing engine, after a good project: nothing added.
    let f = s.conf(
        "bad2.conf",
        &format!("{PROJECT}{}", TASK.replace("engine=slide", "engine=cslide")),
    );
    d.add(&f).expect(1).err_has(&["error: engine is not exist"]);
    assert_eq!(d.show(), "no project exists\n\n");
}

#[test]
fn config_value_errors_name_file_key_and_range() {
    let d = Daemon::start("values");
    let s = Scratch::new("values");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "loop0.conf",
            "[project]\nname=p\nloop=0\ninterval=1\nsleep=1\n",
            &["loop0.conf:3", "loop=0", "1 to 120"],
        ),
        (
            "loop121.conf",
            "[project]\nname=p\nloop=121\ninterval=1\nsleep=1\n",
            &["loop=121", "1 to 120"],
        ),
        (
            "int.conf",
            "[project]\nname=p\nloop=1\ninterval=1201\nsleep=1\n",
            &["interval=1201", "1 to 1200"],
        ),
        (
            "sys.conf",
            "[project]\nname=p\nloop=1\ninterval=1\nsleep=1\nsysmem_threshold=101\n",
            &["sysmem_threshold=101", "0 to 100"],
        ),
        (
            "hex.conf",
            "[project]\nname=p\nloop=0x1\ninterval=1\nsleep=1\n",
            &["loop=0x1"],
        ),
        (
            "wrap.conf",
            "[project]\nname=p\nloop=4294967297\ninterval=1\nsleep=1\n",
            &["loop=4294967297"],
        ),
        (
            "miss.conf",
            "[project]\nname=p\ninterval=1\nsleep=1\n",
            &["loop", "missing"],
        ),
    ];
    for (name, text, want) in cases {
        let r = d.add(&s.conf(name, text));
        r.expect(1)
            .err_has(&["error: invalid parameters"])
            .err_has(want);
    }
    // A bad value inside [engine] or [task] is upstream's "internal error" (spec §4.3);
    // a missing lookup key (the task's name) stays "invalid parameters".
    const P: &str = "[project]\nname=p\nloop=1\ninterval=1\nsleep=1\n";
    const INTERNAL: &str = "error: etmemd has internal error, see reason details in messages: ";
    let by_level: &[(&str, String, &str, &[&str])] = &[
        (
            "type.conf",
            format!("{P}[engine]\nname=nosuch\nproject=p\n"),
            INTERNAL,
            &["nosuch"],
        ),
        (
            "tvalue.conf",
            format!("{P}[engine]\nname=slide\nproject=p\n[task]\nproject=p\nengine=slide\nname=t\ntype=pid\nvalue=1\nT=999\n"),
            INTERNAL,
            &["T=999", "0 to 360"],
        ),
        (
            "tname.conf",
            format!("{P}[engine]\nname=slide\nproject=p\n[task]\nproject=p\nengine=slide\ntype=pid\nvalue=1\nT=999\n"),
            "error: invalid parameters: ",
            &["name is missing", "T=999"],
        ),
    ];
    for (name, text, head, want) in by_level {
        d.add(&s.conf(name, text))
            .expect(1)
            .err_has(&[head])
            .err_has(want);
    }
    assert_eq!(d.show(), "no project exists\n\n");
}

#[test]
fn malformed_ini_is_refused() {
    let d = Daemon::start("ini");
    let s = Scratch::new("ini");
    d.add(&s.conf("before.conf", "name=p\n[project]\n"))
        .expect(1)
        .err_has(&["before.conf:1"]);
    d.add(&s.conf("noeq.conf", "[project]\nname p\n"))
        .expect(1)
        .err_has(&["noeq.conf:2"]);
    d.add(&s.conf("empty.conf", "# nothing\n"))
        .expect(1)
        .err_has(&["error: invalid parameters"]);
    assert_eq!(d.show(), "no project exists\n\n");
}

#[test]
fn file_admission_checks() {
    let d = Daemon::start("admission");
    let s = Scratch::new("admission");
    let text = PROJECT.to_string();
    d.add(&s.file("open.conf", &text, 0o644))
        .expect(1)
        .err_has(&["open.conf", "0644", "0600 or 0400"]);
    d.add(&s.file("ro.conf", &text, 0o400)).expect(0);
    d.run(&["obj", "del", "-f", &s.path("ro.conf")]).expect(0);
    d.add(&s.0.to_string_lossy())
        .expect(1)
        .err_has(&["is a directory"]);
    d.add(&s.path("missing.conf"))
        .expect(1)
        .err_has(&["missing.conf"]);
    let big = s.conf("big.conf", &text);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(10 * 1024 * 1024 + 1)
        .unwrap();
    d.add(&big).expect(1).err_has(&["big.conf", "10485760"]);
    if common::root_or_skip("chown a config file to another user") {
        let other = s.conf("other.conf", &text);
        std::os::unix::fs::chown(&other, Some(65534), None).unwrap();
        d.add(&other)
            .expect(1)
            .err_has(&["other.conf", "owned by uid 65534"]);
    }
    // A relative name is resolved against the client's directory, not the daemon's.
    let rel = s.conf("rel.conf", &text);
    let out = std::process::Command::new(common::etmem())
        .args(["obj", "add", "-f", "rel.conf", "-s", &d.socket])
        .current_dir(&s.0)
        .output()
        .unwrap();
    Run::from(out).expect(0);
    assert!(d.show().contains("project: p1"), "{rel}");
    assert_eq!(d.show().matches("project:").count(), 1);
}

#[test]
fn deleting_a_started_project_stops_it_first() {
    let d = Daemon::start("delstarted");
    let s = Scratch::new("delstarted");
    let f = s.conf("all.conf", &format!("{PROJECT}{ENGINE}{TASK}"));
    d.add(&f).expect(0);
    d.run(&["project", "start", "-n", "p1"]).expect(0);
    d.run(&["obj", "del", "-f", &f]).expect(0);
    assert_eq!(d.show(), "no project exists\n\n");
    // It can be added and started again.
    d.add(&f).expect(0);
    d.run(&["project", "start", "-n", "p1"]).expect(0);
}

#[test]
fn tasks_and_engines_can_be_removed_from_a_running_project() {
    let d = Daemon::start("live");
    let s = Scratch::new("live");
    d.add(&s.conf("pe.conf", &format!("{PROJECT}{ENGINE}")))
        .expect(0);
    d.run(&["project", "start", "-n", "p1"]).expect(0);
    let t = s.conf("t.conf", TASK);
    d.add(&t).expect(0);
    assert!(d
        .show()
        .contains(&show_row(1, "name", "no_such_proc", "t1", "slide", true)));
    d.run(&["obj", "del", "-f", &t]).expect(0);
    d.run(&["obj", "del", "-f", &s.conf("e.conf", ENGINE)])
        .expect(0);
    assert_eq!(d.show(), format!("project: p1\n{SHOW_HEADER}"));
}

#[test]
fn engine_commands() {
    let d = Daemon::start("engine");
    let s = Scratch::new("engine");
    d.add(&s.conf("all.conf", &format!("{PROJECT}{ENGINE}{TASK}")))
        .expect(0);
    let eng = |extra: &[&str]| {
        let mut a = vec!["engine", "showtaskpages", "-n", "p1", "-e", "slide"];
        a.extend(extra);
        d.run(&a)
    };
    eng(&[])
        .expect(1)
        .err_has(&["error: invalid parameters", "not started"]);
    d.run(&["project", "start", "-n", "p1"]).expect(0);
    eng(&["-t", "nosuch"])
        .expect(1)
        .err_has(&["error: task is not exist"]);
    d.run(&["engine", "x", "-n", "p1", "-e", "cslide"])
        .expect(1)
        .err_has(&["error: engine is not exist"]);
    d.run(&["engine", "x", "-n", "zz", "-e", "slide"])
        .expect(1)
        .err_has(&["error: project is not exist"]);
    eng(&["-t", "t1"])
        .expect(1)
        .err_has(&["error: invalid parameters", "has no command"]);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let run = |a: &[&str]| Run::from(run(a));
    assert!(run(&["help"])
        .expect(0)
        .stdout
        .contains("etmem OBJECT COMMAND"));
    run(&[]).expect(2);
    run(&["bogus"]).expect(2).err_has(&["unknown object"]);
    for obj in ["obj", "project", "engine"] {
        assert!(run(&[obj, "help"]).expect(0).stdout.contains("Usage:"));
        run(&[obj]).expect(2);
    }
    assert!(run(&["obj", "help"])
        .stdout
        .contains("-f|--file <conf_file>       Add configuration file"));
    run(&["obj", "add", "-f", "x"])
        .expect(2)
        .err_has(&["socket name (-s) must be given"]);
    run(&["obj", "add", "-s", "x"])
        .expect(2)
        .err_has(&["configuration file (-f) must be given"]);
    run(&["obj", "put", "-s", "x", "-f", "y"])
        .expect(2)
        .err_has(&["obj cmd put is not supported"]);
    run(&["obj", "add", "-s", "x", "-f", "y", "junk"])
        .expect(2)
        .err_has(&["unexpected argument"]);
    run(&["obj", "add", "-o", "x"])
        .expect(2)
        .err_has(&["invalid option -- 'o'"]);
    run(&["project", "start", "-s", "x"])
        .expect(2)
        .err_has(&["project name (-n) must be given"]);
    run(&["project", "launch", "-s", "x"])
        .expect(2)
        .err_has(&["not supported"]);
    run(&["project", "show", "-s", "x", "-v", "--json"]).expect(2);
    run(&["engine", "cmd", "-s", "x", "-e", "slide"])
        .expect(2)
        .err_has(&["project name (-n) must be given"]);
    run(&["engine", "cmd", "-s", "x", "-n", "p"])
        .expect(2)
        .err_has(&["engine name (-e) must be given"]);
    run(&["engine", "-s", "x", "-n", "p", "-e", "slide"])
        .expect(2)
        .err_has(&["engine command must be given"]);
    let long = "s".repeat(107);
    run(&["project", "show", "-s", &long])
        .expect(2)
        .err_has(&["at most 106"]);
}

#[test]
fn no_daemon_exits_3() {
    let sock = common::daemon::unique("nodaemon");
    for args in [
        vec!["project", "show", "-s", &sock],
        vec!["project", "start", "-n", "p", "-s", &sock],
        vec!["obj", "add", "-f", "/x", "-s", &sock],
        vec!["engine", "c", "-n", "p", "-e", "slide", "-s", &sock],
    ] {
        Run::from(run(&args))
            .expect(3)
            .err_has(&["no etmemd is listening"]);
    }
}

#[test]
fn gnu_option_forms_work_as_upstream_scripts_use_them() {
    let d = Daemon::start("forms");
    let s = Scratch::new("forms");
    let f = s.conf("p.conf", PROJECT);
    let sock_eq = format!("--socket={}", d.socket);
    Run::from(run(&["obj", "add", &sock_eq, &format!("--file={f}")])).expect(0);
    let short = format!("-s{}", d.socket);
    Run::from(run(&["project", "start", "-np1", &short])).expect(0);
    Run::from(run(&["project", "stop", "--sock", &d.socket, "--na", "p1"])).expect(0);
}
