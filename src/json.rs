//! The one JSON writer of our `--json` outputs (no dependency needed). [`object`] hands a
//! closure an [`Object`] and returns the compact text (no whitespace, no newline). An
//! [`Object`] has `field(key, value)`, `object(key, closure)` and `array(key, closure)`;
//! an [`Array`] has `item(value)` and `object(closure)`. The writer puts every comma,
//! quote, escape and bracket, so the text is valid JSON. A [`Value`] is a string, integer,
//! `f64` (NaN and infinities become `null`), `bool`, [`Null`], `Option` (`None` is
//! `null`), or an array, slice or `Vec` of values (an array).
//!
//! ```
//! let text = etmem::json::object(|o| {
//!     o.field("pid", 7).field("comm", "a\"b").field("note", None::<&str>);
//!     o.array("ranges", |a| {
//!         a.object(|r| { r.field("start", 0).field("end", 9); });
//!     });
//! });
//! assert_eq!(text, r#"{"pid":7,"comm":"a\"b","note":null,"ranges":[{"start":0,"end":9}]}"#);
//! ```

use std::fmt::Write;

/// A JSON object's text, its members written by `f`.
pub fn object(f: impl FnOnce(&mut Object)) -> String {
    let mut out = String::new();
    write_object(&mut out, f);
    out
}

/// An object being written; members appear in the order they are added.
pub struct Object<'a>(&'a mut String);

/// An array being written; elements appear in the order they are added.
pub struct Array<'a>(&'a mut String);

fn write_object(out: &mut String, f: impl FnOnce(&mut Object)) {
    out.push('{');
    f(&mut Object(out));
    out.push('}');
}

fn write_array(out: &mut String, f: impl FnOnce(&mut Array)) {
    out.push('[');
    f(&mut Array(out));
    out.push(']');
}

/// Writes the comma due before an element and returns `out`. An element is the first of
/// its container exactly when the text ends with the opening bracket: no finished value
/// or `"key":` ends with `{` or `[`.
fn next(out: &mut String) -> &mut String {
    if !out.ends_with(['{', '[']) {
        out.push(',');
    }
    out
}

impl Object<'_> {
    /// Writes `"key":` and then the value `write` writes.
    fn member(&mut self, key: &str, write: impl FnOnce(&mut String)) -> &mut Self {
        escape_into(next(self.0), key);
        self.0.push(':');
        write(self.0);
        self
    }

    /// Adds the member `"key":value`.
    pub fn field(&mut self, key: &str, value: impl Value) -> &mut Self {
        self.member(key, |out| value.write_json(out))
    }

    /// Adds the member `"key":{..}`, its members written by `f`.
    pub fn object(&mut self, key: &str, f: impl FnOnce(&mut Object)) -> &mut Self {
        self.member(key, |out| write_object(out, f))
    }

    /// Adds the member `"key":[..]`, its elements written by `f`.
    pub fn array(&mut self, key: &str, f: impl FnOnce(&mut Array)) -> &mut Self {
        self.member(key, |out| write_array(out, f))
    }
}

impl Array<'_> {
    /// Adds one element.
    pub fn item(&mut self, value: impl Value) -> &mut Self {
        value.write_json(next(self.0));
        self
    }

    /// Adds an object, its members written by `f`.
    pub fn object(&mut self, f: impl FnOnce(&mut Object)) -> &mut Self {
        write_object(next(self.0), f);
        self
    }
}

/// What `field` and `item` take: the types listed in the module doc. Sealed (implemented
/// only here), so no caller can put text that is not JSON into the output.
pub trait Value: sealed::Write {}
impl<T: sealed::Write + ?Sized> Value for T {}

mod sealed {
    /// How a [`super::Value`] writes itself; private so nothing else can write raw text.
    pub trait Write {
        fn write_json(&self, out: &mut String);
    }
}

/// JSON `null`, for a member that has no value of any type.
#[derive(Debug, Clone, Copy)]
pub struct Null;

/// `value!([generics] Type => |self, out| body)` or `value!(Types => ..)`: how those
/// types write themselves.
macro_rules! value {
    ([$($g:tt)*] $t:ty => |$s:ident, $o:ident| $body:expr) => {
        impl<$($g)*> sealed::Write for $t {
            fn write_json(&self, $o: &mut String) {
                let $s = self;
                $body
            }
        }
    };
    ($($t:ty),* => |$s:ident, $o:ident| $body:expr) => {$(value!([] $t => |$s, $o| $body);)*};
}

// Integers in decimal (readers that parse into f64 lose precision above 2^53).
value!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
    => |s, o| { let _ = write!(o, "{s}"); });
// `Display` of a finite f64 is plain decimal (`1`, `0.5`, `-0`, never `1e5`), which JSON
// accepts; JSON has no NaN or infinity, so those are written `null`.
value!(f64 => |s, o| if s.is_finite() { let _ = write!(o, "{s}"); } else { o.push_str("null") });
value!(bool => |s, o| o.push_str(if *s { "true" } else { "false" }));
value!(Null => |_s, o| o.push_str("null"));
value!(str, String => |s, o| escape_into(o, s));
value!([T: Value + ?Sized] &T => |s, o| (**s).write_json(o));
value!([T: Value] Option<T> => |s, o| match s {
    Some(v) => v.write_json(o),
    None => o.push_str("null"),
});
value!([T: Value] [T] => |s, o| write_array(o, |a| s.iter().for_each(|v| { a.item(v); })));
value!([T: Value] Vec<T> => |s, o| s.as_slice().write_json(o));
value!([T: Value, const N: usize] [T; N] => |s, o| s.as_slice().write_json(o));

/// Appends `s` as a JSON string literal: quotes, backslashes and control characters
/// escaped (`\n`, `\r`, `\t` by name, the rest as `\u00XX`), everything else as is.
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value type, escapes in keys and strings, nesting and empty containers.
    fn example() -> String {
        object(|o| {
            o.field("s\"", "q\"\\\n\r\t\u{1}\u{7f}é😀");
            o.field("u", u64::MAX).field("i", i64::MIN);
            o.field("j", i128::MIN).field("n", Null);
            o.field("f", [0.5, 1.0, -0.0, 1e21, 2.5e-7]);
            o.field("x", [f64::NAN, -f64::INFINITY]);
            o.field("b", [true, false]).field("e", [0u8; 0]);
            o.field("v", vec![Some(7u8), None]);
            o.object("o", |_| {}).array("a", |a| {
                a.item(-3i32).item(String::new()).item(&[[1u16]][..]);
                a.object(|n| {
                    n.array("m", |_| {}).field("k", "y");
                });
            });
        })
    }

    #[test]
    fn writes_exact_text() {
        assert_eq!(
            object(|o| {
                o.field("k", "a\"b\\c\n\u{1}é");
            }),
            "{\"k\":\"a\\\"b\\\\c\\n\\u0001é\"}"
        );
        assert_eq!(object(|_| {}), "{}");
        let want = concat!(
            r#"{"s\"":"q\"\\\n\r\t\u0001"#,
            "\u{7f}é😀\",",
            r#""u":18446744073709551615,"i":-9223372036854775808,"#,
            r#""j":-170141183460469231731687303715884105728,"n":null,"#,
            r#""f":[0.5,1,-0,1000000000000000000000,0.00000025],"x":[null,null],"#,
            r#""b":[true,false],"e":[],"v":[7,null],"o":{},"#,
            r#""a":[-3,"",[[1]],{"m":[],"k":"y"}]}"#
        );
        assert_eq!(example(), want);
    }

    #[test]
    fn serde_json_reads_the_example() {
        let v: serde_json::Value = serde_json::from_str(&example()).unwrap();
        assert_eq!(v["s\""], "q\"\\\n\r\t\u{1}\u{7f}é😀");
        assert_eq!(v["u"].as_u64(), Some(u64::MAX));
        assert_eq!(v["f"], serde_json::json!([0.5, 1, -0.0, 1e21, 2.5e-7]));
        assert_eq!(v["a"][3]["k"], "y");
    }
}
