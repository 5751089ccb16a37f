//! The reply framing (spec §1.6): the client's `split_terminated` on any bytes a daemon
//! (or anything listening on the socket name) can send, and `Reply::encode` on any text.
//!
//! Properties: the split never panics and cuts at the first terminator byte, the text
//! before it holds none; every encoded reply is split back into exactly its text (with
//! the upstream prefix for a failure) and its success flag, whatever bytes follow it.
#![no_main]

use etmem::rpc::reply::{split_terminated, Reply, Status, FAIL, OK};
use libfuzzer_sys::fuzz_target;

const STATUSES: [Status; 10] = [
    Status::Inval,
    Status::ProExisted,
    Status::ProStarted,
    Status::ProStopped,
    Status::ProNoexist,
    Status::EngExisted,
    Status::EngNoexist,
    Status::TaskExisted,
    Status::TaskNoexist,
    Status::InterErr,
];

fuzz_target!(|data: &[u8]| {
    let first = data.iter().position(|&b| b == OK || b == FAIL);
    match split_terminated(data) {
        Some((text, ok)) => {
            let at = first.unwrap();
            assert_eq!(text, &data[..at]);
            assert_eq!(ok, data[at] == OK);
        }
        None => assert_eq!(first, None),
    }

    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    let reply = match STATUSES.get(usize::from(sel) % 11) {
        None => Reply::Ok(text.clone()),
        Some(&s) => Reply::fail(s, text.clone()),
    };
    let mut bytes = reply.encode();
    let len = bytes.len();
    bytes.extend_from_slice(rest); // whatever comes after the terminator is not read
    let (got, ok) = split_terminated(&bytes).unwrap();
    assert_eq!(got.len(), len - 1);
    let want = match &reply {
        Reply::Ok(t) => t.clone(),
        Reply::Fail(s, d) if d.is_empty() => s.text().to_string(),
        Reply::Fail(s, d) => format!("{}: {d}", s.text()),
    };
    assert_eq!(got, want.as_bytes());
    assert_eq!(ok, matches!(reply, Reply::Ok(_)));
});
