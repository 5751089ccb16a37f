//! Command-line options with GNU `getopt_long` rules, because the upstream C programs use
//! it and existing scripts depend on its forms: `-s NAME`, `-sNAME`, `--socket NAME`,
//! `--socket=NAME`, unambiguous prefixes (`--sock`), options and words in any order, `--`.

/// One option an applet accepts.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The long name, without dashes; also the option's identity in parse results.
    pub long: &'static str,
    /// The one-letter form, if any.
    pub short: Option<char>,
    /// Whether it takes an argument.
    pub arg: bool,
    /// Whether parsing ends right after this option, as a C loop that `break`s on it
    /// (upstream etmemd stops at the first `-h`): later words are neither parsed nor
    /// reported, so a bad option after it is no error.
    pub stop: bool,
    /// Whether the applet takes it more than once (each gives one more value), where it
    /// refuses a repeat of the others.
    pub many: bool,
}

impl Opt {
    /// An option without an argument (`-m`, `--help`).
    pub const fn flag(long: &'static str, short: Option<char>) -> Opt {
        Opt {
            long,
            short,
            arg: false,
            stop: false,
            many: false,
        }
    }
    /// An option that takes an argument (`-s NAME`, `--socket=NAME`).
    pub const fn value(long: &'static str, short: Option<char>) -> Opt {
        Opt {
            long,
            short,
            arg: true,
            stop: false,
            many: false,
        }
    }
    /// The same option, ending the parse where it appears (see [`Opt::stop`]).
    pub const fn stops(self) -> Opt {
        Opt { stop: true, ..self }
    }
    /// The same option, taken more than once (see [`Opt::many`]).
    pub const fn many(self) -> Opt {
        Opt { many: true, ..self }
    }
}

/// What the command line held, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An option (by its long name) and its argument.
    Opt(&'static str, Option<String>),
    /// A word that is not an option.
    Word(String),
}

/// Parse `args` (without the program name). The error text is what getopt would print.
pub fn parse(args: &[String], opts: &[Opt]) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.extend(args[i..].iter().cloned().map(Item::Word));
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let opt = find_long(opts, name)?;
            let value = if opt.arg {
                match inline {
                    Some(v) => Some(v),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => return Err(format!("option '--{}' requires an argument", opt.long)),
                }
            } else if inline.is_some() {
                return Err(format!("option '--{}' doesn't allow an argument", opt.long));
            } else {
                None
            };
            out.push(Item::Opt(opt.long, value));
            if opt.stop {
                break;
            }
        } else if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                let opt = opts
                    .iter()
                    .find(|o| o.short == Some(c))
                    .ok_or_else(|| format!("invalid option -- '{c}'"))?;
                if opt.arg {
                    let value = if k < chars.len() {
                        chars[k..].iter().collect()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(format!("option requires an argument -- '{c}'"));
                    };
                    out.push(Item::Opt(opt.long, Some(value)));
                    if opt.stop {
                        return Ok(out);
                    }
                    break;
                }
                out.push(Item::Opt(opt.long, None));
                if opt.stop {
                    return Ok(out);
                }
            }
        } else {
            out.push(Item::Word(a.clone()));
        }
    }
    Ok(out)
}

fn find_long<'a>(opts: &'a [Opt], name: &str) -> Result<&'a Opt, String> {
    if let Some(o) = opts.iter().find(|o| o.long == name) {
        return Ok(o);
    }
    let matches: Vec<&Opt> = opts
        .iter()
        .filter(|o| !name.is_empty() && o.long.starts_with(name))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("unrecognized option '--{name}'")),
        _ => Err(format!("option '--{name}' is ambiguous")),
    }
}

/// The last value given for option `long` (a repeated option keeps the last, as getopt).
pub fn last<'a>(items: &'a [Item], long: &str) -> Option<&'a str> {
    items.iter().rev().find_map(|i| match i {
        Item::Opt(n, v) if *n == long => Some(v.as_deref().unwrap_or("")),
        _ => None,
    })
}

/// Every value given for a repeatable option, in order.
pub fn all<'a>(items: &'a [Item], long: &str) -> Vec<&'a str> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Opt(n, v) if *n == long => Some(v.as_deref().unwrap_or("")),
            _ => None,
        })
        .collect()
}

/// True if flag `long` was given.
pub fn has(items: &[Item], long: &str) -> bool {
    items
        .iter()
        .any(|i| matches!(i, Item::Opt(n, _) if *n == long))
}

/// The words that were not options.
pub fn words(items: &[Item]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect()
}

/// Number of options parsed (upstream's surplus-word rule counts them).
pub fn option_count(items: &[Item]) -> usize {
    items.iter().filter(|i| matches!(i, Item::Opt(..))).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] = &[
        Opt::value("socket", Some('s')),
        Opt::value("file", Some('f')),
        Opt::flag("mode-systemctl", Some('m')),
        Opt::flag("help", Some('h')),
        Opt::value("sample", None),
    ];

    fn p(a: &[&str]) -> Result<Vec<Item>, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), OPTS)
    }

    #[test]
    fn gnu_forms() {
        let v = p(&[
            "-s",
            "a",
            "-sb",
            "--socket",
            "c",
            "--socket=d",
            "--sock",
            "e",
            "x",
            "-mh",
            "--",
            "-s",
        ])
        .unwrap();
        assert_eq!(all(&v, "socket"), vec!["a", "b", "c", "d", "e"]);
        assert_eq!(last(&v, "socket"), Some("e"));
        assert!(has(&v, "mode-systemctl") && has(&v, "help"));
        assert_eq!(words(&v), vec!["x", "-s"]);
        assert_eq!(option_count(&v), 7);
    }

    #[test]
    fn errors_read_like_getopt() {
        assert_eq!(p(&["-o"]).unwrap_err(), "invalid option -- 'o'");
        assert_eq!(
            p(&["-s"]).unwrap_err(),
            "option requires an argument -- 's'"
        );
        assert_eq!(
            p(&["--socket"]).unwrap_err(),
            "option '--socket' requires an argument"
        );
        assert_eq!(p(&["--s"]).unwrap_err(), "option '--s' is ambiguous");
        assert_eq!(p(&["--nope"]).unwrap_err(), "unrecognized option '--nope'");
        assert_eq!(
            p(&["--help=x"]).unwrap_err(),
            "option '--help' doesn't allow an argument"
        );
    }

    #[test]
    fn a_stopping_option_ends_the_parse() {
        const STOP: &[Opt] = &[
            Opt::value("socket", Some('s')),
            Opt::flag("mode-systemctl", Some('m')),
            Opt::flag("help", Some('h')).stops(),
        ];
        let q = |a: &[&str]| parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), STOP);
        let help = Item::Opt("help", None);
        // Inside a cluster: what follows the letter is never looked at.
        assert_eq!(q(&["-help"]).unwrap(), vec![help.clone()]);
        assert_eq!(
            q(&["-mh", "-x"]).unwrap(),
            vec![Item::Opt("mode-systemctl", None), help.clone()]
        );
        // Long form, and words before it are kept.
        assert_eq!(
            q(&["w", "--he", "--nope"]).unwrap(),
            vec![Item::Word("w".into()), help.clone()]
        );
        // An error before the stop is still an error.
        assert_eq!(q(&["-xh"]).unwrap_err(), "invalid option -- 'x'");
        // An option's argument is not an option.
        assert_eq!(
            q(&["-s", "-h"]).unwrap(),
            vec![Item::Opt("socket", Some("-h".into()))]
        );
    }

    #[test]
    fn lone_dash_is_a_word() {
        assert_eq!(words(&p(&["-"]).unwrap()), vec!["-"]);
    }
}
