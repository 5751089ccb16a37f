//! Replies: optional text, then one terminator byte, `0xff` for success or `0xfe` for
//! failure (spec §1.6). Failure texts start with upstream's fixed messages, so scripts
//! that match them keep working; we add a colon and the detail that says why.

/// Terminator of a successful reply.
pub const OK: u8 = 0xff;
/// Terminator of a failed reply.
pub const FAIL: u8 = 0xfe;

/// Upstream's result codes (`enum opt_result`), which choose the fixed failure text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OPT_INVAL` (1): a malformed or refused request, a bad config file, an unknown
    /// command.
    Inval,
    /// `OPT_PRO_EXISTED` (2): a project of that name is already added.
    ProExisted,
    /// `OPT_PRO_STARTED` (3): the project is already started.
    ProStarted,
    /// `OPT_PRO_STOPPED` (4): the project is already stopped.
    ProStopped,
    /// `OPT_PRO_NOEXIST` (5): no project of that name.
    ProNoexist,
    /// `OPT_ENG_EXISTED` (6): the project already has an engine of that name.
    EngExisted,
    /// `OPT_ENG_NOEXIST` (7): the project has no engine of that name.
    EngNoexist,
    /// `OPT_TASK_EXISTED` (8): the engine already has a task of that name.
    TaskExisted,
    /// `OPT_TASK_NOEXIST` (9): the engine has no task of that name.
    TaskNoexist,
    /// `OPT_INTER_ERR` (10): the daemon could not carry the request out; the detail says
    /// why.
    InterErr,
}

impl Status {
    /// The exact upstream text for this result.
    pub fn text(self) -> &'static str {
        match self {
            Status::Inval => "error: invalid parameters",
            Status::ProExisted => "error: project has been existed",
            Status::ProStarted => "error: project has been started",
            Status::ProStopped => "error: project has been stopped",
            Status::ProNoexist => "error: project is not exist",
            Status::EngExisted => "error: engine has been existed",
            Status::EngNoexist => "error: engine is not exist",
            Status::TaskExisted => "error: task has been existed",
            Status::TaskNoexist => "error: task is not exist",
            Status::InterErr => "error: etmemd has internal error, see reason details in messages",
        }
    }
}

/// What the daemon answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Success, with the text to print (possibly empty).
    Ok(String),
    /// Failure: upstream's code and our explanation.
    Fail(Status, String),
}

impl Reply {
    /// A failure with upstream's code and our explanation (empty: upstream's text alone).
    pub fn fail(status: Status, detail: impl Into<String>) -> Reply {
        Reply::Fail(status, detail.into())
    }

    /// The bytes sent on the socket.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = match self {
            Reply::Ok(text) => text.clone().into_bytes(),
            Reply::Fail(status, detail) if detail.is_empty() => status.text().as_bytes().to_vec(),
            Reply::Fail(status, detail) => format!("{}: {detail}", status.text()).into_bytes(),
        };
        // The terminators can never appear in UTF-8 text, but be certain.
        out.retain(|&b| b != OK && b != FAIL);
        out.push(if matches!(self, Reply::Ok(_)) {
            OK
        } else {
            FAIL
        });
        out
    }
}

/// Split received bytes at the first terminator: `Some((text, success))` once one has
/// arrived. Readers call it on each newly received piece, never on all they have so far,
/// so that reading an answer stays linear in its size.
pub fn split_terminated(buf: &[u8]) -> Option<(&[u8], bool)> {
    let at = buf.iter().position(|&b| b == OK || b == FAIL)?;
    Some((&buf[..at], buf[at] == OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        assert_eq!(Reply::Ok(String::new()).encode(), vec![0xff]);
        assert_eq!(Reply::Ok("a\n".into()).encode(), b"a\n\xff".to_vec());
        assert_eq!(
            Reply::fail(Status::ProNoexist, "").encode(),
            b"error: project is not exist\xfe".to_vec()
        );
        assert_eq!(
            Reply::fail(Status::Inval, "x.conf:3: bad").encode(),
            b"error: invalid parameters: x.conf:3: bad\xfe".to_vec()
        );
    }

    #[test]
    fn split() {
        assert_eq!(split_terminated(b"abc"), None);
        assert_eq!(split_terminated(b"abc\xff"), Some((&b"abc"[..], true)));
        assert_eq!(split_terminated(b"e\xfe"), Some((&b"e"[..], false)));
        assert_eq!(split_terminated(b"\xff"), Some((&b""[..], true)));
    }

    #[test]
    fn every_upstream_text() {
        let all = [
            (Status::Inval, "error: invalid parameters"),
            (Status::ProExisted, "error: project has been existed"),
            (Status::ProStarted, "error: project has been started"),
            (Status::ProStopped, "error: project has been stopped"),
            (Status::ProNoexist, "error: project is not exist"),
            (Status::EngExisted, "error: engine has been existed"),
            (Status::EngNoexist, "error: engine is not exist"),
            (Status::TaskExisted, "error: task has been existed"),
            (Status::TaskNoexist, "error: task is not exist"),
            (
                Status::InterErr,
                "error: etmemd has internal error, see reason details in messages",
            ),
        ];
        for (s, t) in all {
            assert_eq!(s.text(), t);
        }
    }
}
