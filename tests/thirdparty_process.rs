//! Thirdparty engines as policy processes (`exec=`, etmem-policy(7)) on this machine's
//! kernel with real swap (zram in CI): the shipped example policy swaps a workload's cold
//! region out and keeps its hot one; plug-ins that exit, hang, flood, talk nonsense or
//! answer outside the scan fail only themselves while the project's other engines go on;
//! engine commands reach the plug-in under upstream's rules; the plug-in hears each step
//! of its tasks; and its file is checked at `obj add` on the file opened, so a file put
//! in its place afterwards never runs.

mod common;
use common::daemon::{Daemon, Run, Scratch};
use common::workload::Workload;
use common::{can_swap, parse_json, root_or_skip, wait_for};

use etmem::act::swapped_bytes;
use std::time::Duration;

/// A policy script that answers every request as a good policy does. `on_scan` is the
/// sh code that answers a scan once its body is read (the ranges of its `pages` lines
/// with count 0 are in `$idle`); `hello` is its answer to the hello; `$0`-free so that
/// the same text can run from any path. Its standard error records what it was told.
fn policy(name: &str, hello: &str, on_scan: &str) -> String {
    format!(
        r#"#!/bin/sh
while read -r word a rest; do
  echo "got $word $a" >&2
  case $word in
    hello) echo "{hello}" ;;
    engine | task)
      while read -r w k v; do
        [ "$w" = end ] && break
        echo "key $k=$v" >&2
      done
      echo ok ;;
    start | stop | forget) echo ok ;;
    scan)
      idle=
      while read -r w range size count; do
        case $w in
          end) break ;;
          pages) [ "$count" = 0 ] && idle="$idle $range" ;;
        esac
      done
      {on_scan} ;;
    command)
      case $a in
        stats) echo "text {name} answers stats for ${{rest%% *}}"; echo end ;;
        *) echo "error {name} has no command $a" ;;
      esac ;;
    bye) exit 0 ;;
    *) echo "error unknown request $word" ;;
  esac
done
"#
    )
}

const HELLO: &str = "hello etmem-policy 1 command";
const SWAP_IDLE: &str = r#"for r in $idle; do echo "swap $r"; done; echo end"#;

/// `policy` installed in `s` as root:root with mode 0700 (the scratch dir is root's):
/// its path.
fn install(s: &Scratch, file: &str, text: &str) -> String {
    s.file(file, text, 0o700)
}

fn project(name: &str) -> String {
    format!("[project]\nname={name}\nloop=1\ninterval=1\nsleep=1\n")
}

/// A thirdparty engine `eng` running `exec` with a task `t_ENG` on `pid`.
fn engine(project: &str, eng: &str, exec: &str, extra: &str, pid: i32) -> String {
    format!(
        "[engine]\nname=thirdparty\nproject={project}\neng_name={eng}\nexec={exec}\n\
         engine_private_key=1024\n{extra}\
         [task]\nproject={project}\nengine={eng}\nname=t_{eng}\ntype=pid\nvalue={pid}\n\
         task_private_key=2048\n"
    )
}

/// A daemon `tag` that holds project `p` with a thirdparty engine (and its task) for each
/// `(name, exec, pid)`, not started; the config file's path.
fn added(tag: &str, s: &Scratch, engines: &[(&str, &str, i32)]) -> (Daemon, String) {
    let mut conf = project("p");
    for (name, exec, pid) in engines {
        conf.push_str(&engine("p", name, exec, "", *pid));
    }
    let d = Daemon::start(tag);
    let path = s.conf("p.conf", &conf);
    d.add(&path).expect(0);
    (d, path)
}

/// The JSON status of the task of engine `eng` in project `p`.
fn status(d: &Daemon, p: &str, eng: &str) -> serde_json::Value {
    let out = d
        .run(&["project", "show", "--json", "-n", p])
        .expect(0)
        .stdout;
    let all = parse_json(&out);
    let engines = all["projects"][0]["engines"].as_array().unwrap().clone();
    let e = engines
        .iter()
        .find(|e| e["name"] == eng)
        .unwrap_or_else(|| panic!("no engine {eng}: {out}"));
    e["tasks"][0].clone()
}

fn error_of(d: &Daemon, p: &str, eng: &str) -> String {
    status(d, p, eng)["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn cycles(d: &Daemon, p: &str, eng: &str) -> u64 {
    status(d, p, eng)["cycles"].as_u64().unwrap()
}

/// Root (plug-ins must be root's), a small workload to be a task's process, and a
/// scratch dir for the plug-ins; `None` after a skip.
fn small_target(tag: &str) -> Option<(Workload, Scratch)> {
    if !root_or_skip("plug-ins must be owned by root") {
        return None;
    }
    let w = Workload::spawn(&["--hot-mib", "1", "--cold-mib", "1"]);
    Some((w, Scratch::new(tag)))
}

#[test]
fn the_example_policy_swaps_the_cold_region_and_keeps_the_hot_one() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let mut w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "64"]);
    let cold = w.cold.unwrap();
    let s = Scratch::new("tp-example");
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/swap_idle_policy.sh"
    ))
    .unwrap();
    let exec = install(&s, "swap_idle_policy.sh", &example);
    // The shipped config, with the policy where this test put it and the workload as
    // its task's process (loop=1, sleep=1: the test need not wait long).
    let conf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/thirdparty_exec_conf.yaml"
    ))
    .unwrap()
    .replace("/usr/libexec/etmem/swap_idle_policy.sh", &exec)
    .replace(
        "type=name\nvalue=mysql",
        &format!("type=pid\nvalue={}", w.pid),
    )
    .replace("loop=3", "loop=1")
    .replace("sleep=5", "sleep=1");
    let d = Daemon::start("tp-example");
    d.add(&s.conf("policy.conf", &conf)).expect(0);
    let before = swapped_bytes(w.pid).unwrap();
    d.run(&["project", "start", "-n", "policy"]).expect(0);
    w.wait_cold_swapped(before);
    let st = status(&d, "policy", "swap_idle");
    assert_eq!(st["last_error"], serde_json::Value::Null, "{st}");
    assert!(
        st["swapped_total"].as_u64().unwrap() >= cold.len() * 9 / 10,
        "{st}"
    );
    assert!(
        st["note"]
            .as_str()
            .unwrap()
            .contains("a policy process: the plug-in"),
        "{st}"
    );
    // Its engine command's answer reaches the client.
    let out = d
        .run(&["engine", "stats", "-n", "policy", "-e", "swap_idle"])
        .expect(0)
        .stdout;
    let asked: u64 = out
        .trim()
        .strip_prefix("swap ranges asked: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(asked >= 1, "{out}");
    d.run(&["project", "stop", "-n", "policy"]).expect(0);
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
}

#[test]
fn broken_plugins_fail_their_own_engine_and_the_others_go_on() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let s = Scratch::new("tp-broken");
    let bad = [
        ("exits", "exit 3", "exited (exit status: 3)"),
        (
            "hangs",
            "sleep 600",
            "did not answer within 2 s (reply_timeout=2)",
        ),
        (
            "floods_a_line",
            "yes x | tr -d '\\n'",
            "wrote a line longer than 4096 bytes",
        ),
        (
            "floods_lines",
            "yes 'swap 1000-2000'",
            "answered a scan with more than 1048576 lines",
        ),
        (
            "talks_nonsense",
            "echo 'what is a scan?'",
            "answered a scan with \"what is a scan?\", not \"swap START-END\"",
        ),
    ];
    let small = ["--hot-mib", "2", "--cold-mib", "16"];
    let slide_w = Workload::spawn(&small);
    let good_w = Workload::spawn(&small);
    let outside_w = Workload::spawn(&small);
    let bad_w: Vec<Workload> = bad.iter().map(|_| Workload::spawn(&small)).collect();
    let mut conf = project("p");
    conf.push_str(&format!(
        "[engine]\nname=slide\nproject=p\n[task]\nproject=p\nengine=slide\nname=t_slide\n\
         type=pid\nvalue={}\nT=1\n",
        slide_w.pid
    ));
    let good = install(&s, "good", &policy("good", HELLO, SWAP_IDLE));
    conf.push_str(&engine("p", "good", &good, "", good_w.pid));
    // Swaps the cold pages and one range outside the scan: the whole answer is refused.
    let outside = install(
        &s,
        "outside",
        &policy(
            "outside",
            HELLO,
            &SWAP_IDLE.replace("echo end", "echo 'swap 1000-2000'; echo end"),
        ),
    );
    conf.push_str(&engine("p", "outside", &outside, "", outside_w.pid));
    for ((name, on_scan, _), w) in bad.iter().zip(&bad_w) {
        let exec = install(&s, name, &policy(name, HELLO, on_scan));
        // Only the hang waits for its timeout; the rest must be caught by what they do.
        let timeout = if *name == "hangs" { 2 } else { 60 };
        let extra = format!("reply_timeout={timeout}\n");
        conf.push_str(&engine("p", name, &exec, &extra, w.pid));
    }
    let d = Daemon::start("tp-broken");
    d.add(&s.conf("p.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "p"]).expect(0);
    for (name, _, why) in &bad {
        let failed = wait_for(Duration::from_secs(60), || {
            error_of(&d, "p", name).contains("failed")
        });
        let e = error_of(&d, "p", name);
        assert!(failed, "{name}: {e}");
        assert!(
            e.starts_with(&format!(
                "engine {name} failed: the plug-in {}/{name} (pid ",
                s.0.display()
            )),
            "{e}"
        );
        assert!(e.contains(why), "{name}: {e}");
        assert!(
            e.ends_with("it stays failed until the project is stopped and started again"),
            "{e}"
        );
    }
    // The failures are visible in project show -v under each task.
    let verbose = d
        .run(&["project", "show", "-v", "-n", "p"])
        .expect(0)
        .stdout;
    assert!(
        verbose.contains("error: engine hangs failed: "),
        "{verbose}"
    );
    // The refused answer: nothing of it was done, and that plug-in goes on.
    let refused = "is refused, nothing of it was done: answer line ";
    assert!(wait_for(Duration::from_secs(30), || error_of(
        &d, "p", "outside"
    )
    .contains(refused)));
    let e = error_of(&d, "p", "outside");
    assert!(
        e.contains("swap 1000-2000: 1000-2000 is outside the VMAs this scan covered"),
        "{e}"
    );
    // The others keep working after all of that: cycles go on, cold memory leaves.
    let (slide0, good0, outside0) = (
        cycles(&d, "p", "slide"),
        cycles(&d, "p", "good"),
        cycles(&d, "p", "outside"),
    );
    assert!(wait_for(Duration::from_secs(60), || {
        cycles(&d, "p", "slide") >= slide0 + 2
            && cycles(&d, "p", "good") >= good0 + 2
            && cycles(&d, "p", "outside") >= outside0 + 2
    }));
    assert!(wait_for(Duration::from_secs(60), || {
        slide_w.resident_share(slide_w.cold.unwrap()) <= 0.10
            && good_w.resident_share(good_w.cold.unwrap()) <= 0.10
    }));
    assert_eq!(error_of(&d, "p", "good"), "");
    assert!(error_of(&d, "p", "outside").contains(refused));
    let kept = outside_w.resident_share(outside_w.cold.unwrap());
    assert!(kept >= 0.9, "a refused answer swapped: {kept}");
    // A failed engine's command says why; the daemon answers all along.
    d.run(&["engine", "stats", "-n", "p", "-e", "exits"])
        .expect(1)
        .err_has(&["engine exits failed: "]);
    // A new start starts the plug-ins afresh (no restart while the project runs).
    d.run(&["project", "stop", "-n", "p"]).expect(0);
    d.run(&["project", "start", "-n", "p"]).expect(0);
    let out = d
        .run(&["engine", "stats", "-n", "p", "-e", "exits"])
        .expect(0)
        .stdout;
    assert_eq!(out, "exits answers stats for -\n");
}

#[test]
fn moves_go_through_move_pages_and_offline_nodes_are_refused() {
    let Some((w, s)) = small_target("tp-moves") else {
        return;
    };
    // Every resident run to node 0 (where it is on a one-node machine: the pages count as
    // moved), and a policy that names a node no machine here has.
    let all = r#"for r in $idle; do echo "move $r 0"; done; echo end"#;
    let other = Workload::spawn(&["--hot-mib", "1", "--cold-mib", "1"]);
    let to_zero = install(&s, "zero", &policy("zero", HELLO, all));
    let offline = install(
        &s,
        "off",
        &policy("off", HELLO, &all.replace(" 0\"", " 4096\"")),
    );
    let (d, _) = added(
        "tp-moves",
        &s,
        &[("zero", &to_zero, w.pid), ("off", &offline, other.pid)],
    );
    d.run(&["project", "start", "-n", "p"]).expect(0);
    assert!(wait_for(Duration::from_secs(30), || {
        status(&d, "p", "zero")["moved_bytes"].as_u64().unwrap() > 0
    }));
    assert_eq!(error_of(&d, "p", "zero"), "");
    assert!(wait_for(Duration::from_secs(30), || {
        error_of(&d, "p", "off").contains("node 4096 is not an online NUMA node")
    }));
    let verbose = d
        .run(&["project", "show", "-v", "-n", "p"])
        .expect(0)
        .stdout;
    assert!(verbose.contains(" bytes to the nodes asked"), "{verbose}");
}

#[test]
fn engine_commands_follow_upstreams_rules() {
    let Some((w, s)) = small_target("tp-commands") else {
        return;
    };
    let with = install(&s, "with", &policy("with", HELLO, SWAP_IDLE));
    let without = install(
        &s,
        "without",
        &policy("without", "hello etmem-policy 1", SWAP_IDLE),
    );
    let (d, _) = added(
        "tp-commands",
        &s,
        &[("with", &with, w.pid), ("without", &without, w.pid)],
    );
    let cmd = |args: &[&str]| -> Run {
        let mut a = vec!["engine"];
        a.extend(args);
        d.run(&a)
    };
    // A stopped project takes no engine command.
    cmd(&["stats", "-n", "p", "-e", "with"])
        .expect(1)
        .err_has(&["invalid parameters", "project p is not started"]);
    d.run(&["project", "start", "-n", "p"]).expect(0);
    assert_eq!(
        cmd(&["stats", "-n", "p", "-e", "with"]).expect(0).stdout,
        "with answers stats for -\n"
    );
    assert_eq!(
        cmd(&["stats", "-n", "p", "-e", "with", "-t", "t_with"])
            .expect(0)
            .stdout,
        "with answers stats for t_with\n"
    );
    cmd(&["nope", "-n", "p", "-e", "with"])
        .expect(1)
        .err_has(&["invalid parameters", "refused: with has no command nope"]);
    cmd(&["stats", "-n", "p", "-e", "without"])
        .expect(1)
        .err_has(&[
            "invalid parameters",
            "engine without has no command handler: its plug-in's hello did not offer \"command\"",
        ]);
    cmd(&["stats", "-n", "p", "-e", "other"])
        .expect(1)
        .err_has(&["engine is not exist"]);
    cmd(&["stats", "-n", "p", "-e", "with", "-t", "other"])
        .expect(1)
        .err_has(&["task is not exist"]);
    cmd(&["stats", "-n", "q", "-e", "with"])
        .expect(1)
        .err_has(&["project is not exist"]);
}

#[test]
fn the_plugin_hears_each_step_of_its_tasks() {
    let Some((w, s)) = small_target("tp-steps") else {
        return;
    };
    let exec = install(&s, "rec", &policy("rec", HELLO, SWAP_IDLE));
    let log = s.0.join("etmemd.log");
    let d = Daemon::start_logging_to("tp-steps", &log);
    d.add(&s.conf(
        "p.conf",
        &format!("{}{}", project("p"), engine("p", "rec", &exec, "", w.pid)),
    ))
    .expect(0);
    d.run(&["project", "start", "-n", "p"]).expect(0);
    let heard = |what: &str| std::fs::read_to_string(&log).unwrap().contains(what);
    assert!(wait_for(Duration::from_secs(30), || heard(
        "got scan t_rec"
    )));
    // A task added while the project runs is told before its first scan; one deleted is
    // stopped and forgotten.
    let more = format!(
        "[task]\nproject=p\nengine=rec\nname=t_more\ntype=pid\nvalue={}\nmine=x y\n",
        w.pid
    );
    let more = s.conf("more.conf", &more);
    d.add(&more).expect(0);
    assert!(wait_for(Duration::from_secs(30), || heard(
        "got scan t_more"
    )));
    d.run(&["obj", "del", "-f", &more]).expect(0);
    d.run(&["project", "stop", "-n", "p"]).expect(0);
    // Its standard error is logged by a thread of its own: wait for the last line.
    assert!(wait_for(Duration::from_secs(10), || heard("got bye")));
    let text = std::fs::read_to_string(&log).unwrap();
    let steps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("): ").map(|(_, said)| said))
        .filter(|l| l.starts_with("got ") || l.starts_with("key "))
        .filter(|l| !l.starts_with("got scan"))
        .collect();
    let pid = w.pid.to_string();
    let want = [
        "got hello etmem-policy",
        "got engine rec",
        "key name=thirdparty",
        "key project=p",
        "key eng_name=rec",
        &format!("key exec={exec}"),
        "key engine_private_key=1024",
        "got task t_rec",
        "key project=p",
        "key engine=rec",
        "key name=t_rec",
        "key type=pid",
        &format!("key value={pid}"),
        "key task_private_key=2048",
        "got start t_rec",
        "got task t_more",
        "key project=p",
        "key engine=rec",
        "key name=t_more",
        "key type=pid",
        &format!("key value={pid}"),
        // Escaped on the wire: one field.
        "key mine=x%20y",
        "got start t_more",
        "got stop t_more",
        "got forget t_more",
        "got stop t_rec",
        "got bye",
    ];
    assert_eq!(steps, want, "{text}");
}

#[test]
fn plugins_are_checked_at_obj_add_on_the_file_opened() {
    if !root_or_skip("plug-ins must be owned by root") {
        return;
    }
    let s = Scratch::new("tp-checks");
    let d = Daemon::start("tp-checks");
    let text = policy("a", HELLO, SWAP_IDLE);
    // The [engine] group starts at line 6 and its exec= is on line 10.
    let conf_for = |exec: &str| format!("{}{}", project("p"), engine("p", "e", exec, "", 1));
    let refused = |exec: &str, why: &str| {
        let conf = s.conf("p.conf", &conf_for(exec));
        d.add(&conf).expect(1).err_has(&[
            "etmemd has internal error",
            &format!("{conf}:10: [engine] exec={exec}: {why}"),
        ]);
        assert_eq!(d.show(), "no project exists\n\n", "{exec} added something");
    };
    for mode in [0o770, 0o707, 0o755, 0o600, 0o4700] {
        let p = s.file(&format!("m{mode:o}"), &text, mode);
        refused(
            &p,
            &format!("{p} has mode {mode:04o}; a plug-in must have mode 0500 or 0700"),
        );
    }
    let nobody = install(&s, "nobody", &text);
    std::os::unix::fs::chown(&nobody, Some(65534), Some(65534)).unwrap();
    refused(
        &nobody,
        &format!("{nobody} is owned by uid 65534 gid 65534; a plug-in must be owned by root:root"),
    );
    // A symlink is followed, and the file it leads to is what is checked.
    let wide = s.file("wide", &text, 0o777);
    let link = s.path("link");
    std::os::unix::fs::symlink(&wide, &link).unwrap();
    refused(&link, &format!("{wide} has mode 0777"));
    let to_nobody = s.path("to_nobody");
    std::os::unix::fs::symlink(&nobody, &to_nobody).unwrap();
    refused(&to_nobody, &format!("{nobody} is owned by uid 65534"));
    refused(&s.path("missing"), "no such file");
    let dir = s.0.display().to_string();
    refused(
        &dir,
        &format!("{dir} is a directory; a plug-in is a regular file"),
    );
    // Both forms, and (in a build without dlopen) the .so form.
    let both = s.conf(
        "both.conf",
        &conf_for(&install(&s, "ok", &text))
            .replace("engine_private_key", "libname=/x.so\nengine_private_key"),
    );
    d.add(&both).expect(1).err_has(&[&format!(
        "{both}:11: [engine] libname=/x.so: conflicts with exec="
    )]);
    if !cfg!(feature = "dlopen") {
        let so = install(&s, "lib.so", "\x7fELF");
        let conf = s.conf(
            "so.conf",
            &conf_for("X").replace("exec=X", &format!("libname={so}\nops_name=my_ops")),
        );
        d.add(&conf).expect(1).err_has(&[&format!(
            "{conf}:10: [engine] libname={so}: this etmemd is built without the dlopen feature, \
             so it cannot load .so plug-ins: build it with --features dlopen (a dynamically \
             linked build), or run the policy as a process with exec="
        )]);
    }
    assert_eq!(d.show(), "no project exists\n\n");
    // A good file through a symlink is taken.
    let good = install(&s, "good", &text);
    let good_link = s.path("good_link");
    std::os::unix::fs::symlink(&good, &good_link).unwrap();
    d.add(&s.conf("p.conf", &conf_for(&good_link))).expect(0);
}

#[test]
fn a_file_put_in_the_plugins_place_after_obj_add_never_runs() {
    let Some((w, s)) = small_target("tp-swapped") else {
        return;
    };
    let exec = install(&s, "policy", &policy("checked", HELLO, SWAP_IDLE));
    let (d, conf) = added("tp-swapped", &s, &[("e", &exec, w.pid)]);
    // Another root-owned policy renamed over the path between obj add and start.
    let other = install(&s, "other", &policy("swapped-in", HELLO, SWAP_IDLE));
    std::fs::rename(&other, &exec).unwrap();
    d.run(&["project", "start", "-n", "p"]).expect(0);
    assert_eq!(
        d.run(&["engine", "stats", "-n", "p", "-e", "e"])
            .expect(0)
            .stdout,
        "checked answers stats for -\n"
    );
    d.run(&["project", "stop", "-n", "p"]).expect(0);
    d.run(&["obj", "del", "-f", &conf]).expect(0);
    // The checked file itself written after obj add: start refuses, and nothing runs.
    d.add(&conf).expect(0);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&exec)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"# more\n"))
        .unwrap();
    d.run(&["project", "start", "-n", "p"])
        .expect(1)
        .err_has(&[&format!(
            "{conf}:10: [engine] exec={exec}: {exec} was written since it was checked"
        )]);
    assert!(d.show().ends_with("false   \n"));
}
