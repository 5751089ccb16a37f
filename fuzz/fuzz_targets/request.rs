//! The daemon's request parser, `Request::decode`, on any bytes a peer can send (spec §1.4,
//! §1.5), and the client's encoder on any field values.
//!
//! Properties: decode never panics; a decoded request holds only values the wire can carry
//! (non-empty, no space, not `-`), re-encodes to text at most as long as the input (the
//! same text, but for a non-canonical `cmd` such as `+5` or `007`) that decodes to the same
//! value, and is one the server's `looks_complete` would have waited for. Built from
//! arbitrary fields, a request survives encode/decode exactly when all its values are
//! wire words and the text fits in 512 bytes.
#![no_main]

use etmem::rpc::request::{looks_complete, Cmd, Request, MAX_REQUEST};
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

fn wire_word(v: &Option<String>) -> bool {
    v.as_deref()
        .is_none_or(|w| !w.is_empty() && w != "-" && !w.contains(' '))
}

fn fields(r: &Request) -> [&Option<String>; 5] {
    [
        &r.proj_name,
        &r.file_name,
        &r.eng_name,
        &r.eng_cmd,
        &r.task_name,
    ]
}

fuzz_target!(|data: &[u8]| {
    match Request::decode(data) {
        Ok(r) => {
            assert!(data.len() <= MAX_REQUEST);
            assert!(fields(&r).iter().all(|v| wire_word(v)), "{r:?}");
            let text = r.encode();
            assert!(text.len() <= data.len(), "{text:?} from {data:?}");
            let canonical_cmd = std::str::from_utf8(data)
                .unwrap()
                .split(' ')
                .nth(5)
                .unwrap()
                == r.cmd.to_string();
            assert_eq!(canonical_cmd, text.as_bytes() == data);
            assert_eq!(Request::decode(text.as_bytes()).as_ref(), Ok(&r));
            assert!(looks_complete(data));
            if let Some(c) = Cmd::from_code(r.cmd) {
                assert_eq!(c.code(), r.cmd);
            }
        }
        Err(e) => {
            assert!(!e.is_empty());
            // An error names at most a short excerpt of what was sent.
            assert!(e.len() < 600, "{e}");
        }
    }

    // The other direction: a request made of arbitrary values, as a client builds it.
    let mut u = Unstructured::new(data);
    let (Ok(proj_name), Ok(file_name), Ok(cmd), Ok(eng_name), Ok(eng_cmd), Ok(task_name)) = (
        Option::<String>::arbitrary(&mut u),
        Option::<String>::arbitrary(&mut u),
        i32::arbitrary(&mut u),
        Option::<String>::arbitrary(&mut u),
        Option::<String>::arbitrary(&mut u),
        Option::<String>::arbitrary(&mut u),
    ) else {
        return;
    };
    let r = Request {
        proj_name,
        file_name,
        cmd,
        eng_name,
        eng_cmd,
        task_name,
    };
    let text = r.encode();
    let carried = fields(&r).iter().all(|v| wire_word(v)) && text.len() <= MAX_REQUEST;
    let back = Request::decode(text.as_bytes());
    assert_eq!(back.as_ref() == Ok(&r), carried, "{r:?} -> {back:?}");
    if carried {
        assert!(looks_complete(text.as_bytes()));
    }
});
