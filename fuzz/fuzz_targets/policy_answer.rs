//! What a policy process writes (etmem-policy(7)): `thirdparty::protocol`'s readers on
//! any line, as `process.rs` hands them over (UTF-8, no newline).
//!
//! Properties: never panics; a line is read as an item, the end or a refusal only when
//! it has that word; an action's range and node are the ones written, and the action
//! written back as etmemd spells it reads back the same; a refusal keeps its text; a
//! hello is accepted only with the protocol's name and a version etmemd speaks.
#![no_main]

use etmem::engine::thirdparty::protocol::{
    parse_action, parse_hello, parse_status, parse_text, Action, Line, Status, NAME, VERSIONS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let first = line.split(' ').next().unwrap_or("");
    if let Ok(h) = parse_hello(line) {
        assert!(line.starts_with(&format!("hello {NAME} ")), "{line:?}");
        assert!(VERSIONS.contains(&h.version));
    }
    match parse_status(line) {
        Ok(Status::Ok) => assert_eq!(line, "ok"),
        Ok(Status::Error(e)) => {
            assert_eq!(first, "error");
            assert!(!e.is_empty());
        }
        Err(_) => {}
    }
    match parse_action(line) {
        Ok(Line::Item(a)) => {
            let again = match a {
                Action::Swap(r) => {
                    assert_eq!(first, "swap");
                    format!("swap {r}")
                }
                Action::Move(r, n) => {
                    assert_eq!(first, "move");
                    let last = line.rsplit(' ').next().unwrap_or("");
                    assert_eq!(last.parse::<u32>(), Ok(n), "{line:?}");
                    format!("move {r} {n}")
                }
            };
            assert_eq!(parse_action(&again), Ok(Line::Item(a)), "{again}");
        }
        Ok(Line::End) => assert_eq!(line, "end"),
        Ok(Line::Error(_)) => assert_eq!(first, "error"),
        Err(_) => {}
    }
    match parse_text(line) {
        Ok(Line::Item(t)) => assert_eq!(
            line.strip_prefix("text")
                .map(|r| r.strip_prefix(' ').unwrap_or(r)),
            Some(t.as_str())
        ),
        Ok(Line::End) => assert_eq!(line, "end"),
        Ok(Line::Error(_)) => assert_eq!(first, "error"),
        Err(_) => {}
    }
});
