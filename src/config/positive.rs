//! Float keys of the psi engine (spec §8.4.2): upstream reads them with GLib's
//! `g_key_file_get_double` (C-locale `strtod`: decimal, exponent, hexadecimal floats) and
//! refuses values `<= 0`, but lets NaN through [BUG] and takes an overflow as infinity.
//! Here a value must be a finite number above 0, so NaN and infinity are refused too.

/// A finite number above 0. Finite, so equality is an equivalence and the config types
/// that hold one can stay `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Positive(f64);

impl Eq for Positive {}

impl Positive {
    /// `v` if it is finite and above 0.
    pub fn new(v: f64) -> Option<Positive> {
        (v.is_finite() && v > 0.0).then_some(Positive(v))
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl std::fmt::Display for Positive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a positive float key may hold (the noun phrase of its error message).
pub const POSITIVE_RULE: &str =
    "a finite number above 0, such as 0.1, 5e-2 or 0x1p-3 (0, negative values, NaN and infinity are refused)";

/// A value as `strtod` reads it in the C locale, whole string, then checked to be
/// finite and above 0. An underflow to 0 (`1e-400`) and an overflow to infinity are
/// refused as 0 and infinity.
pub fn positive(raw: &str) -> Result<Positive, String> {
    parse_c_double(raw)
        .and_then(Positive::new)
        .ok_or_else(|| POSITIVE_RULE.to_string())
}

/// C-locale `strtod` syntax over the whole string: an optional sign, then decimal
/// (`1e-3`, `.5`, `5.`), hexadecimal (`0x10`, `0x1p-3`), `inf`/`infinity` or `nan`.
/// `None` for anything else, including blanks around the number and `1,5`.
fn parse_c_double(raw: &str) -> Option<f64> {
    let (neg, body) = match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex(hex)?
    } else if matches!(lower.as_str(), "inf" | "infinity") {
        f64::INFINITY
    } else if lower == "nan" {
        f64::NAN
    } else {
        // Rust's grammar is strtod's decimal one, but it also takes `inf`/`nan` with a
        // sign inside, which the sign was already stripped for; forbid a second sign.
        let decimal_ok = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
            && body.bytes().next().is_some_and(|b| b != b'+' && b != b'-');
        if !decimal_ok {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// The part of a hexadecimal float after `0x`: hex digits with an optional `.`, then an
/// optional binary exponent `p[+-]digits`.
fn parse_hex(hex: &str) -> Option<f64> {
    let (mantissa, exp) = match hex.split_once('p') {
        Some((m, e)) => (m, Some(e)),
        None => (hex, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let exp: i32 = match exp {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Beyond ±2000 the result is 0 or infinity anyway.
            e.parse::<i64>().ok()?.clamp(-2000, 2000) as i32
        }
    };
    Some(v * 2f64.powi(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_syntax_is_accepted() {
        for (raw, want) in [
            ("0.1", 0.1),
            ("1e-3", 1e-3),
            (".5", 0.5),
            ("5.", 5.0),
            ("+0.2", 0.2),
            ("0x10", 16.0),
            ("0X1p-3", 0.125),
            ("0x.8", 0.5),
            ("10000", 10000.0),
            ("1E2", 100.0),
        ] {
            assert_eq!(positive(raw).map(Positive::get), Ok(want), "{raw}");
        }
    }

    #[test]
    fn zero_negative_nan_infinity_and_junk_are_refused() {
        for bad in [
            "0",
            "-0",
            "0.0",
            "-1",
            "-inf",
            "inf",
            "infinity",
            "+INF",
            "nan",
            "NaN",
            "-nan",
            "1e-400",
            "1e400",
            "0x1p99999",
            "",
            " 1",
            "1 ",
            "1,5",
            "1.5x",
            "x",
            "0x",
            "0xg",
            "0x1p",
            "+-1",
            "--1",
            "1e",
            "e5",
            ".",
            "0x1p+",
            "1_0",
        ] {
            assert_eq!(positive(bad), Err(POSITIVE_RULE.to_string()), "{bad:?}");
        }
        assert_eq!(Positive::new(f64::NAN), None);
        assert_eq!(
            Positive::new(f64::MIN_POSITIVE).map(Positive::get),
            Some(f64::MIN_POSITIVE)
        );
    }
}
