//! The man page lists every backend name of the backend tables, where the keys that
//! choose them are described, so a backend added to the code cannot go undocumented.

use etmem::types::{Family, ScanBackend, SwapBackend};

fn man() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/etmem.8")).unwrap()
}

/// The man page line that documents `key` (its `.BR key " (...)"` line).
fn key_line<'a>(man: &'a str, key: &str) -> &'a str {
    man.lines()
        .find(|l| l.starts_with(&format!(".BR {key} \"")))
        .unwrap_or_else(|| panic!("man/etmem.8 has no `.BR {key} \"(...)\"` line"))
}

fn lists_every_word<F: Family>(man: &str, key: &str) {
    let line = key_line(man, key);
    for w in F::words() {
        assert!(
            line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|t| t == w),
            "man/etmem.8's {key} line lacks {w:?}: {line}"
        );
    }
}

#[test]
fn task_keys_list_every_backend() {
    let m = man();
    lists_every_word::<ScanBackend>(&m, "scan_backend");
    lists_every_word::<SwapBackend>(&m, "swap_backend");
}

#[test]
fn etmem_scan_section_names_every_scan_backend() {
    let m = man();
    let section = m
        .split(".SH ETMEM-SCAN")
        .nth(1)
        .and_then(|s| s.split("\n.SH ").next())
        .expect("man/etmem.8 has an ETMEM-SCAN section");
    for b in ScanBackend::ALL {
        assert!(
            section.contains(&format!(".B {}\n", b.name())),
            "the ETMEM-SCAN section does not describe {}",
            b.name()
        );
    }
}

#[test]
fn the_policy_protocol_and_its_keys_are_documented() {
    use etmem::config::REPLY_TIMEOUT_DEFAULT;
    use etmem::engine::thirdparty::protocol::{COMMAND_FEATURE, NAME, VERSIONS};
    let m = man();
    let thirdparty = m
        .split("\nthirdparty:\n")
        .nth(1)
        .and_then(|s| s.split("\n.TP\n").next())
        .expect("man/etmem.8 lists the thirdparty engine keys");
    for key in [
        "eng_name",
        "exec",
        "reply_timeout",
        "libname",
        "ops_name",
        "dlopen",
    ] {
        assert!(
            thirdparty.contains(key),
            "thirdparty keys lack {key}: {thirdparty}"
        );
    }
    assert!(thirdparty.contains(&format!("default {REPLY_TIMEOUT_DEFAULT})")));
    assert!(m.contains(".BR etmem\\-policy (7)"));
    let policy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/etmem-policy.7"))
            .unwrap();
    let name = NAME.replace('-', "\\-");
    assert!(policy.contains(&format!(".BI \"hello {name} \" \"VERSION ...\"")));
    for v in VERSIONS {
        assert!(policy.contains(&format!("(this one: {v})")), "version {v}");
    }
    assert!(policy.contains(&format!("The feature\n.B {COMMAND_FEATURE}\n")));
    for word in ["engine ", "task ", "scan ", "command "] {
        assert!(policy.contains(&format!(".BI \"{word}")), "request {word}");
    }
    for word in ["start ", "stop ", "forget ", "bye"] {
        assert!(policy.contains(word), "request {word}");
    }
}
