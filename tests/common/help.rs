//! The options each of the four programs says it has, read from its own help texts, so
//! that the man pages and the bash completion are checked against the code's option
//! tables and cannot fall behind when an option is added.

/// A program as it is installed, with the help texts that list its options.
pub struct Program {
    /// The name it is installed under (and its man page's name).
    pub name: &'static str,
    /// Every option its help texts list, short and long forms (`-p`, `--pid`), each once,
    /// in the order they first appear.
    pub options: Vec<String>,
    /// The help texts it was read from (for messages).
    pub help: String,
}

/// The words after `etmem` that print each program's help: the client has one per
/// object, and `--install` prints its usage (with `--force`) when given nothing.
const HELP_COMMANDS: &[(&str, &[&[&str]])] = &[
    ("etmemd", &[&["etmemd", "--help"]]),
    (
        "etmem",
        &[
            &["help"],
            &["obj", "help"],
            &["project", "help"],
            &["engine", "help"],
            &["--install"],
        ],
    ),
    ("etmem-scan", &[&["scan", "--help"]]),
    ("etmem-swap", &[&["swap", "--help"]]),
];

/// The four programs with the options their help prints.
pub fn programs() -> Vec<Program> {
    HELP_COMMANDS
        .iter()
        .map(|(name, commands)| {
            let mut help = String::new();
            for args in *commands {
                let out = super::run(args);
                help.push_str(&String::from_utf8_lossy(&out.stdout));
                help.push_str(&String::from_utf8_lossy(&out.stderr));
            }
            let options = options(&help);
            assert!(
                options.len() >= 3,
                "{name}: too few options found in its help; has its layout changed?\n{help}"
            );
            Program {
                name,
                options,
                help,
            }
        })
        .collect()
}

/// The options a help text lists: the leading words of every line that starts (after
/// blanks) with `-`, as in `  -p, --pid N   the process` or `-l|--log-level <level>`,
/// and the bracketed or bare options of its `usage:` lines.
pub fn options(help: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |word: &str| {
        if is_option(word) && !found.iter().any(|f| f == word) {
            found.push(word.to_string());
        }
    };
    for line in help.lines().map(str::trim_start) {
        if line.starts_with('-') {
            for word in line.split_whitespace() {
                if !word.starts_with('-') {
                    break;
                }
                word.split([',', '|']).for_each(&mut add);
            }
        } else if line.to_ascii_lowercase().starts_with("usage:") {
            line.split(|c: char| c.is_whitespace() || "[]()|".contains(c))
                .for_each(&mut add);
        }
    }
    found
}

/// `-x` or `--word-with_parts`.
fn is_option(word: &str) -> bool {
    let body = word
        .strip_prefix("--")
        .or_else(|| word.strip_prefix('-'))
        .unwrap_or("");
    body.starts_with(|c: char| c.is_ascii_alphabetic())
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && (word.starts_with("--") || body.len() == 1)
}
