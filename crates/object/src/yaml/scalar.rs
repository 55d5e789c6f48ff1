//! Resolution of plain YAML scalars to typed values.
//!
//! Kubernetes tooling resolves untagged plain scalars with Go's YAML libraries, and
//! two of them matter:
//! - [`Dialect::Kubernetes`]: `sigs.k8s.io/yaml` (goyaml.v2, YAML 1.1), what kubectl
//!   and the API machinery use: `yes`, `on`, `y`, `off`, … are booleans.
//! - [`Dialect::Kustomize`]: kyaml (goyaml.v3), what `kubectl kustomize` uses: only
//!   `true`/`false` in their three spellings are booleans.
//!
//! Both read integers with Go's `ParseInt(s, 0, 64)` after removing `_`, so `0755`
//! is octal 493 and `0x1F`, `0o17` and `0b101` are accepted. A timestamp stays the
//! text it was written as under goyaml.v2 (which keeps it a string when reading into
//! `interface{}`), and kyaml turns it into an RFC 3339 string the way
//! `encoding/json` prints a `time.Time`.
//!
//! The same rules decide, when writing, whether a string must be quoted so that it
//! reads back as a string ([`resolves_to_non_string`]).

use serde_json::{Number, Value};

/// Which YAML library's scalar rules to follow when loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// YAML 1.1 as `sigs.k8s.io/yaml` reads it (kubectl, Argo CD directory apps).
    #[default]
    Kubernetes,
    /// goyaml.v3 as kyaml reads it (`kubectl kustomize`).
    Kustomize,
}

/// The typed value of an untagged plain scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// `null`, `~`, empty.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (integer, unsigned or float).
    Number(Number),
    /// A timestamp, already formatted as Go formats a `time.Time` in JSON.
    Timestamp(String),
    /// Infinity or NaN, which JSON cannot hold.
    NonFinite(&'static str),
    /// The merge key `<<`.
    Merge,
    /// A string.
    Str,
}

const YAML11_TRUE: &[&str] = &["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"];
const YAML11_FALSE: &[&str] = &["n", "N", "no", "No", "NO", "off", "Off", "OFF"];

/// Resolves a plain (unquoted, untagged) scalar under `dialect`.
pub fn resolve_plain(text: &str, dialect: Dialect) -> Resolved {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Resolved::NonFinite(".nan"),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::NonFinite(".inf");
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::NonFinite("-.inf"),
        "<<" => return Resolved::Merge,
        _ => {}
    }
    if dialect == Dialect::Kubernetes {
        if YAML11_TRUE.contains(&text) {
            return Resolved::Bool(true);
        }
        if YAML11_FALSE.contains(&text) {
            return Resolved::Bool(false);
        }
    }
    resolve_numeric(text).unwrap_or(Resolved::Str)
}

/// Numbers and timestamps: what goyaml tries for scalars starting with a digit,
/// a sign or a dot.
fn resolve_numeric(text: &str) -> Option<Resolved> {
    let first = *text.as_bytes().first()?;
    if first == b'.' {
        return parse_go_float(text).map(float_value);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return None;
    }
    if let Some(ts) = parse_timestamp(text) {
        return Some(Resolved::Timestamp(ts));
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(n) = parse_go_int(&plain) {
        return Some(Resolved::Number(n));
    }
    if is_yaml_style_float(&plain) {
        return parse_go_float(&plain).map(float_value);
    }
    if let Some(bits) = plain.strip_prefix("0b") {
        return i64::from_str_radix(bits, 2)
            .ok()
            .map(|i| Resolved::Number(i.into()))
            .or_else(|| {
                u64::from_str_radix(bits, 2)
                    .ok()
                    .map(|u| Resolved::Number(u.into()))
            });
    }
    if let Some(bits) = plain.strip_prefix("-0b") {
        return i64::from_str_radix(&format!("-{bits}"), 2)
            .ok()
            .map(|i| Resolved::Number(i.into()));
    }
    None
}

fn float_value(f: f64) -> Resolved {
    match Number::from_f64(f) {
        Some(n) => Resolved::Number(n),
        None if f.is_nan() => Resolved::NonFinite(".nan"),
        None if f > 0.0 => Resolved::NonFinite(".inf"),
        None => Resolved::NonFinite("-.inf"),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint`.
fn parse_go_int(s: &str) -> Option<Number> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) =
        if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, d)
        } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, d)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Some(Number::from((magnitude as i128).wrapping_neg() as i64))
        } else {
            None
        }
    } else if magnitude <= i64::MAX as u64 {
        Some(Number::from(magnitude as i64))
    } else {
        Some(Number::from(magnitude))
    }
}

/// goyaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A decimal float as Go's `ParseFloat` reads the forms goyaml passes to it.
fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.starts_with("inf") || unsigned.starts_with("nan") || unsigned.starts_with("0x") {
        return None;
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_digit() || b".eE+-".contains(&c))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// True when the text of `s`, written plain, would read back as something other
/// than a string under YAML 1.1 (the strictest reader), so it must be quoted.
/// This is goyaml.v2's `resolve` check plus its base-60 float check.
pub fn resolves_to_non_string(s: &str) -> bool {
    !matches!(
        resolve_plain(s, Dialect::Kubernetes),
        Resolved::Str | Resolved::Merge
    ) || is_base60_float(s)
}

/// goyaml.v2's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let group = &b[start..i];
        let ok = match group.len() {
            1 => true,
            2 => group[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// goyaml's timestamp forms: `YYYY-M-D`, optionally followed by `T`/`t`/space and
/// `h:m:s[.frac]` with an optional zone (`Z` or `±hh:mm`; none for the space form).
/// Returns the value formatted as Go's `time.Time.MarshalJSON` (RFC 3339 with
/// nanoseconds, trailing zeros trimmed).
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut p = Cursor { b, i: 5 };
    let year: u32 = s[..4].parse().ok()?;
    let month = p.number(1, 2)?;
    p.expect(b'-')?;
    let day = p.number(1, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if p.done() {
        return Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"));
    }
    let sep = p.next()?;
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let hour = p.number(1, 2)?;
    p.expect(b':')?;
    let minute = p.number(1, 2)?;
    p.expect(b':')?;
    let second = p.number(1, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut nanos = String::new();
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        while p.peek().is_some_and(|c| c.is_ascii_digit()) {
            p.i += 1;
        }
        let frac = &s[start..p.i];
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        nanos = frac.trim_end_matches('0').to_string();
    }
    let zone = if sep == b' ' {
        if !p.done() {
            return None;
        }
        "Z".to_string()
    } else {
        match p.next()? {
            b'Z' if p.done() => "Z".to_string(),
            sign @ (b'+' | b'-') => {
                let hh = p.number(2, 2)?;
                p.expect(b':')?;
                let mm = p.number(2, 2)?;
                if !p.done() || hh > 23 || mm > 59 {
                    return None;
                }
                if hh == 0 && mm == 0 {
                    "Z".to_string()
                } else {
                    format!("{}{hh:02}:{mm:02}", sign as char)
                }
            }
            _ => return None,
        }
    };
    let frac = if nanos.is_empty() {
        String::new()
    } else {
        format!(".{nanos}")
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{zone}"
    ))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i - start < max && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Converts a resolved scalar to a JSON value; non-finite floats have none.
pub fn resolved_to_value(resolved: Resolved, text: &str) -> Option<Value> {
    match resolved {
        Resolved::Null => Some(Value::Null),
        Resolved::Bool(b) => Some(Value::Bool(b)),
        Resolved::Number(n) => Some(Value::Number(n)),
        Resolved::Timestamp(t) => Some(Value::String(t)),
        Resolved::Str | Resolved::Merge => Some(Value::String(text.to_string())),
        Resolved::NonFinite(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k8s(s: &str) -> Resolved {
        resolve_plain(s, Dialect::Kubernetes)
    }
    fn kz(s: &str) -> Resolved {
        resolve_plain(s, Dialect::Kustomize)
    }

    #[test]
    fn yaml11_booleans_only_in_kubernetes_dialect() {
        for t in ["yes", "on", "y", "Y", "ON"] {
            assert_eq!(k8s(t), Resolved::Bool(true), "{t}");
            assert_eq!(kz(t), Resolved::Str, "{t}");
        }
        for t in ["no", "off", "n", "OFF"] {
            assert_eq!(k8s(t), Resolved::Bool(false), "{t}");
        }
        assert_eq!(kz("True"), Resolved::Bool(true));
        assert_eq!(kz("tRUE"), Resolved::Str);
    }

    #[test]
    fn go_integers() {
        let n = |s: &str| match kz(s) {
            Resolved::Number(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(n("0755"), "493");
        assert_eq!(n("0o17"), "15");
        assert_eq!(n("0x1F"), "31");
        assert_eq!(n("0b101"), "5");
        assert_eq!(n("1_000"), "1000");
        assert_eq!(n("+5"), "5");
        assert_eq!(n("-0"), "0");
        assert_eq!(n("08"), "8.0");
        assert_eq!(n("9223372036854775807"), "9223372036854775807");
        assert_eq!(n("18446744073709551615"), "18446744073709551615");
        assert_eq!(n("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(n(".5"), "0.5");
        assert_eq!(n("1e3"), "1000.0");
        assert_eq!(kz("0x"), Resolved::Str);
        assert_eq!(kz("0b"), Resolved::Str);
        assert_eq!(kz("0o8"), Resolved::Str);
        assert_eq!(kz("1e"), Resolved::Str);
        assert_eq!(kz("1.5.3"), Resolved::Str);
        assert_eq!(kz("-inf"), Resolved::Str);
    }

    #[test]
    fn timestamps_format_like_go_json() {
        assert_eq!(
            parse_timestamp("2020-1-2").as_deref(),
            Some("2020-01-02T00:00:00Z")
        );
        assert_eq!(
            parse_timestamp("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            parse_timestamp("2001-12-14 21:59:43.10").as_deref(),
            Some("2001-12-14T21:59:43.1Z")
        );
        assert_eq!(parse_timestamp("2021-02-30"), None);
        assert_eq!(parse_timestamp("12:30:45"), None);
        assert_eq!(parse_timestamp("2020-01-01x"), None);
    }

    #[test]
    fn quoting_decisions() {
        for s in [
            "",
            "yes",
            "y",
            "on",
            "null",
            "~",
            "12",
            "1.5",
            "0x1F",
            "12:30:45",
            "1:2",
            "+.5",
            "1_0.5",
            "-.inf",
            "2020-01-01",
        ] {
            assert!(resolves_to_non_string(s), "{s:?} must be quoted");
        }
        for s in ["abc", "<<", "=", "tRUE", "1.5.3", "0x", "1e", "0o8", "x:"] {
            assert!(
                !resolves_to_non_string(s),
                "{s:?} needs no quoting for type"
            );
        }
    }
}
