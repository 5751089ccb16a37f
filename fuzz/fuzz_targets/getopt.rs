//! Command lines: `getopt::parse` (GNU `getopt_long` rules) on any argument vector, with
//! the option table of `etmemd` (values, flags, a long-only option, a stopping `-h`) and
//! options that share a prefix.
//!
//! The input is the arguments, NUL-separated. Properties: never panics; the words are the
//! arguments' own, in order; an option that takes a value has one, found at the end of an
//! argument (`-sV`, `--socket=V`, or the next argument), and a flag has none; nothing
//! follows a stopping option; the parse printed back in long form (`--name`,
//! `--name=VALUE`, words in place) parses to the same items; an error is one of getopt's
//! messages.
#![no_main]

use etmem::applets::getopt::{parse, Item, Opt};
use libfuzzer_sys::fuzz_target;

const OPTS: &[Opt] = &[
    Opt::value("log-level", Some('l')),
    Opt::value("socket", Some('s')),
    Opt::flag("mode-systemctl", Some('m')),
    Opt::flag("help", Some('h')).stops(),
    Opt::value("pid-file", None),
    Opt::flag("pid", Some('p')),
    Opt::flag("verbose", Some('v')),
];

fn long_form(items: &[Item]) -> Option<Vec<String>> {
    items
        .iter()
        .map(|i| match i {
            Item::Opt(long, None) => Some(format!("--{long}")),
            Item::Opt(long, Some(v)) => Some(format!("--{long}={v}")),
            Item::Word(w) if w.len() > 1 && w.starts_with('-') => None,
            Item::Word(w) => Some(w.clone()),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the applets take their arguments as Strings
    };
    let args: Vec<String> = text.split('\0').map(str::to_string).collect();
    let items = match parse(&args, OPTS) {
        Ok(items) => items,
        Err(e) => {
            // As GNU getopt, it quotes the argument as given (even a newline in it): the
            // text is the user's own, shown on the user's own terminal.
            assert!(
                e.starts_with("option ")
                    || e.starts_with("invalid option -- '")
                    || e.starts_with("unrecognized option '--"),
                "{e}"
            );
            return;
        }
    };
    let mut rest = args.iter();
    for (k, item) in items.iter().enumerate() {
        match item {
            Item::Word(w) => assert!(rest.any(|a| a == w), "{w:?} is not a later argument"),
            Item::Opt(long, v) => {
                let o = OPTS.iter().find(|o| o.long == *long).unwrap();
                assert_eq!(o.arg, v.is_some(), "{item:?}");
                if let Some(v) = v {
                    assert!(args.iter().any(|a| a.ends_with(v.as_str())), "{v:?}");
                }
                if o.stop {
                    assert_eq!(k + 1, items.len(), "items after a stopping option");
                }
            }
        }
    }
    if args.first().is_some_and(|a| a == "--") {
        let words: Vec<Item> = args[1..].iter().cloned().map(Item::Word).collect();
        assert_eq!(items, words);
    }
    if let Some(again) = long_form(&items) {
        assert_eq!(parse(&again, OPTS).as_ref(), Ok(&items), "{again:?}");
    }
});
