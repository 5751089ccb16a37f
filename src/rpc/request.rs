//! The request: `proj_name %s file_name %s cmd %d eng_name %s eng_cmd %s task_name %s`,
//! single spaces, `-` for a field not given, at most 512 bytes (spec §1.4, §1.5).

use std::fmt;

/// Upstream's request size limit, on both sides.
pub const MAX_REQUEST: usize = 512;

/// The command codes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// 0, `etmem obj add`: add the objects of the config file `file_name`.
    ObjAdd,
    /// 1, `etmem obj del`: remove the objects of the config file `file_name`.
    ObjDel,
    /// 2, `etmem project start`: start the project `proj_name`.
    ProjectStart,
    /// 3, `etmem project stop`: stop the project `proj_name`.
    ProjectStop,
    /// 4, `etmem project show`: describe the project `proj_name`, or every project.
    ProjectShow,
    /// 5, `etmem engine <eng_cmd>`: run an engine's own command, e.g. cslide's
    /// `showhostpages`.
    Engine,
}

impl Cmd {
    /// The number sent in the `cmd` field, 0 to 5.
    pub fn code(self) -> i32 {
        match self {
            Cmd::ObjAdd => 0,
            Cmd::ObjDel => 1,
            Cmd::ProjectStart => 2,
            Cmd::ProjectStop => 3,
            Cmd::ProjectShow => 4,
            Cmd::Engine => 5,
        }
    }

    /// The command sent as `code`; `None` for a number upstream does not define.
    pub fn from_code(code: i32) -> Option<Cmd> {
        Some(match code {
            0 => Cmd::ObjAdd,
            1 => Cmd::ObjDel,
            2 => Cmd::ProjectStart,
            3 => Cmd::ProjectStop,
            4 => Cmd::ProjectShow,
            5 => Cmd::Engine,
            _ => return None,
        })
    }
}

/// A decoded request. `cmd` is kept raw so an unknown code can get its own reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The project, for start, stop, show (optional: all projects) and engine commands.
    pub proj_name: Option<String>,
    /// The config file, for add and del, as the user typed it (the daemon resolves it).
    pub file_name: Option<String>,
    /// The command number (see [`Cmd::code`]), possibly one no [`Cmd`] has.
    pub cmd: i32,
    /// The engine an engine command goes to: its type or thirdparty `eng_name`.
    pub eng_name: Option<String>,
    /// The engine's own command word, e.g. `showtaskpages`.
    pub eng_cmd: Option<String>,
    /// The task an engine command is about (optional).
    pub task_name: Option<String>,
}

/// What our client appends to an engine command word for `--json` (`showhostpages:json`):
/// an engine answers in JSON instead of upstream's text. Upstream's daemon knows no such
/// command and says so.
pub const JSON_SUFFIX: &str = ":json";

const KEYS: [&str; 6] = [
    "proj_name",
    "file_name",
    "cmd",
    "eng_name",
    "eng_cmd",
    "task_name",
];

impl Request {
    /// A request for `cmd` with every field not given.
    pub fn new(cmd: Cmd) -> Request {
        Request {
            cmd: cmd.code(),
            ..Request::default()
        }
    }

    /// The exact text the upstream C client sends.
    pub fn encode(&self) -> String {
        fn v(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("-")
        }
        format!(
            "proj_name {} file_name {} cmd {} eng_name {} eng_cmd {} task_name {}",
            v(&self.proj_name),
            v(&self.file_name),
            self.cmd,
            v(&self.eng_name),
            v(&self.eng_cmd),
            v(&self.task_name)
        )
    }

    /// Parse request bytes. Unlike upstream (which desynchronised on values starting with
    /// `-` and closed silently on errors), a value is a whole space-free word, only the
    /// word `-` means "not given", and every error says what is wrong.
    pub fn decode(buf: &[u8]) -> Result<Request, String> {
        if buf.len() > MAX_REQUEST {
            return Err(format!(
                "request is {} bytes; at most {MAX_REQUEST} are allowed",
                buf.len()
            ));
        }
        let text =
            std::str::from_utf8(buf).map_err(|_| "request is not valid UTF-8 text".to_string())?;
        let mut words = text.split(' ');
        let mut values: [Option<String>; 6] = Default::default();
        for (i, key) in KEYS.iter().enumerate() {
            match words.next() {
                Some(w) if w == *key => {}
                Some(w) => return Err(format!("expected field '{key}', found {:?}", truncate(w))),
                None => return Err(format!("request ends before field '{key}'")),
            }
            let value = words
                .next()
                .ok_or_else(|| format!("field '{key}' has no value"))?;
            if value.is_empty() {
                return Err(format!("field '{key}' has an empty value"));
            }
            values[i] = (value != "-").then(|| value.to_string());
        }
        if let Some(extra) = words.next() {
            return Err(format!(
                "unexpected text after the last field: {:?}",
                truncate(extra)
            ));
        }
        let [proj_name, file_name, cmd, eng_name, eng_cmd, task_name] = values;
        let cmd = match cmd {
            None => return Err("field 'cmd' is not given".into()),
            Some(c) => c
                .parse::<i32>()
                .map_err(|_| format!("field 'cmd' is not a number: {:?}", truncate(&c)))?,
        };
        Ok(Request {
            proj_name,
            file_name,
            cmd,
            eng_name,
            eng_cmd,
            task_name,
        })
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// True once `buf` holds a whole request: the last key and a value after it. Used by the
/// server to tell a slow or stalled peer from one that has sent everything.
pub fn looks_complete(buf: &[u8]) -> bool {
    const LAST: &[u8] = b" task_name ";
    buf.windows(LAST.len())
        .position(|w| w == LAST)
        .map(|p| buf.len() > p + LAST.len())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmd: Cmd) -> Request {
        Request::new(cmd)
    }

    #[test]
    fn golden_bytes_for_every_command() {
        let mut add = req(Cmd::ObjAdd);
        add.file_name = Some("/etc/etmem/slide_conf.yaml".into());
        assert_eq!(add.encode(), "proj_name - file_name /etc/etmem/slide_conf.yaml cmd 0 eng_name - eng_cmd - task_name -");
        let mut del = req(Cmd::ObjDel);
        del.file_name = Some("a.conf".into());
        assert_eq!(
            del.encode(),
            "proj_name - file_name a.conf cmd 1 eng_name - eng_cmd - task_name -"
        );
        let mut start = req(Cmd::ProjectStart);
        start.proj_name = Some("test".into());
        assert_eq!(
            start.encode(),
            "proj_name test file_name - cmd 2 eng_name - eng_cmd - task_name -"
        );
        let mut stop = req(Cmd::ProjectStop);
        stop.proj_name = Some("test".into());
        assert_eq!(
            stop.encode(),
            "proj_name test file_name - cmd 3 eng_name - eng_cmd - task_name -"
        );
        assert_eq!(
            req(Cmd::ProjectShow).encode(),
            "proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -"
        );
        let mut eng = req(Cmd::Engine);
        eng.proj_name = Some("test".into());
        eng.eng_name = Some("cslide".into());
        eng.eng_cmd = Some("showtaskpages".into());
        eng.task_name = Some("vm1".into());
        assert_eq!(
            eng.encode(),
            "proj_name test file_name - cmd 5 eng_name cslide eng_cmd showtaskpages task_name vm1"
        );
        for r in [add, del, start, stop, req(Cmd::ProjectShow), eng] {
            assert_eq!(Request::decode(r.encode().as_bytes()).unwrap(), r);
        }
    }

    #[test]
    fn cmd_codes_round_trip() {
        for c in 0..6 {
            assert_eq!(Cmd::from_code(c).unwrap().code(), c);
        }
        assert_eq!(Cmd::from_code(6), None);
        assert_eq!(Cmd::from_code(-1), None);
    }

    #[test]
    fn values_starting_with_a_dash_survive() {
        let r = Request::decode(b"proj_name -x file_name - cmd 2 eng_name - eng_cmd - task_name -")
            .unwrap();
        assert_eq!(r.proj_name.as_deref(), Some("-x"));
    }

    #[test]
    fn utf8_names_travel_whole() {
        let mut eng = req(Cmd::Engine);
        eng.proj_name = Some("проект".into());
        eng.eng_name = Some("引擎".into());
        eng.eng_cmd = Some("showtaskpages".into());
        eng.task_name = Some("я".repeat(32));
        let bytes = eng.encode().into_bytes();
        assert!(looks_complete(&bytes));
        assert_eq!(Request::decode(&bytes).unwrap(), eng);
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let bad: &[(&[u8], &str)] = &[
            (b"", "expected field 'proj_name'"),
            (b"proj_name", "field 'proj_name' has no value"),
            (
                b"proj_name  file_name - cmd 0 eng_name - eng_cmd - task_name -",
                "empty value",
            ),
            (
                b"proj_name - file_nam - cmd 0 eng_name - eng_cmd - task_name -",
                "expected field 'file_name'",
            ),
            (
                b"proj_name - file_name - cmd x eng_name - eng_cmd - task_name -",
                "'cmd' is not a number",
            ),
            (
                b"proj_name - file_name - cmd - eng_name - eng_cmd - task_name -",
                "'cmd' is not given",
            ),
            (
                b"proj_name - file_name - cmd 0 eng_name - eng_cmd - task_name - extra",
                "unexpected text",
            ),
            (
                b"proj_name - file_name - cmd 0 eng_name - eng_cmd - task_name",
                "'task_name' has no value",
            ),
            (b"proj_name \xff file_name", "not valid UTF-8"),
        ];
        for (bytes, want) in bad {
            let e = Request::decode(bytes).unwrap_err();
            assert!(
                e.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = vec![b'a'; 513];
        assert!(Request::decode(&long).unwrap_err().contains("at most 512"));
    }

    #[test]
    fn completeness() {
        assert!(!looks_complete(
            b"proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name "
        ));
        assert!(looks_complete(
            b"proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -"
        ));
        assert!(!looks_complete(b"proj_name te"));
    }
}
