//! Config files, whole, as the daemon meets them: `config::parse_bytes` on the bytes of a
//! file that passed admission (spec §4), UTF-8 or not.
//!
//! Properties: parsing never panics. An accepted file names every object with a name the
//! wire can carry (so `etmem project start -n`, `engine -e -t` can address it: the request
//! built from it decodes to the same names), places each object at a group line of the
//! file, in file order, and has at least one object. Every warning and error line names the
//! file, holds no control character (a value cannot garble a log line or a reply), and
//! their number is capped (a file of junk cannot make the daemon hold a message per line).
#![no_main]

use etmem::config::{parse_bytes, ConfigFile, Origin, NAME_MAX};
use etmem::error::Kind;
use etmem::rpc::request::{Cmd, Request};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.conf";
/// `config::diag`'s MAX_LISTED errors, plus the "... and N more problems" line.
const MAX_ERROR_LINES: usize = 20 + 1;
/// `config::diag`'s MAX_KEPT warnings, plus the "... and N more warnings" line.
const MAX_WARNINGS: usize = 1000 + 1;

/// `config::NAME_RULE`, written out.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= NAME_MAX
        && !s.starts_with('-')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_message_line(line: &str) {
    assert!(
        line.starts_with(&format!("{FILE}:")) || line.starts_with("... and "),
        "message does not name the file: {line:?}"
    );
    assert!(
        !line.chars().any(char::is_control),
        "control character in a message: {line:?}"
    );
}

fn check_origins<'a>(origins: impl Iterator<Item = &'a Origin>, lines: usize) {
    let mut last = 0;
    for o in origins {
        assert_eq!(o.file, FILE);
        assert!(o.line > last && o.line <= lines, "{o:?} of {lines} lines");
        last = o.line;
    }
}

/// The request `etmem engine CMD -n P -e E -t T` for names from the file decodes to them.
fn addressable(project: &str, engine: Option<&str>, task: Option<&str>) {
    let mut r = Request::new(if engine.is_some() {
        Cmd::Engine
    } else {
        Cmd::ProjectStart
    });
    r.proj_name = Some(project.to_string());
    r.eng_name = engine.map(str::to_string);
    r.eng_cmd = engine.map(|_| "showtaskpages".to_string());
    r.task_name = task.map(str::to_string);
    assert_eq!(Request::decode(r.encode().as_bytes()), Ok(r));
}

fn check_accepted(c: &ConfigFile, lines: usize) {
    assert_eq!(c.path, FILE);
    assert!(
        c.projects.len() + c.engines.len() + c.tasks.len() > 0,
        "accepted a file with nothing to add"
    );
    check_origins(c.projects.iter().map(|p| &p.origin), lines);
    check_origins(c.engines.iter().map(|e| &e.origin), lines);
    check_origins(c.tasks.iter().map(|t| &t.origin), lines);
    for p in &c.projects {
        assert!(is_name(&p.name), "{:?}", p.name);
        addressable(&p.name, None, None);
    }
    for e in &c.engines {
        assert!(is_name(&e.project) && is_name(e.name()), "{e:?}");
        addressable(&e.project, Some(e.name()), None);
    }
    for t in &c.tasks {
        assert!(is_name(&t.project) && is_name(&t.engine) && is_name(&t.name));
        addressable(&t.project, Some(&t.engine), Some(&t.name));
        assert!(t.max_threads >= 1);
    }
    assert!(c.warnings.len() <= MAX_WARNINGS);
    for w in &c.warnings {
        assert!(!w.contains('\n'), "{w:?}");
        check_message_line(w);
    }
}

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    match parse_bytes(data, FILE) {
        Ok(c) => check_accepted(&c, lines),
        Err(e) => {
            assert_eq!(e.kind, Kind::Invalid);
            let msg: Vec<&str> = e.msg.split('\n').collect();
            assert!(msg.len() <= MAX_ERROR_LINES, "{} lines", msg.len());
            for line in msg {
                check_message_line(line);
            }
        }
    }
});
