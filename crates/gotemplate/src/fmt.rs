//! Go's `fmt` for template values: `Sprint`, `Sprintln`, `Sprintf` and `%v`,
//! byte for byte (floats as `1e+06`, maps as `map[a:1 b:2]`, nil as `<nil>`,
//! and Go's `%!d(string=x)` forms for a wrong verb).

use crate::value::{MAX_NESTING, Value};

/// How `%v` prints a value.
pub fn print_value(value: &Value) -> String {
    let mut out = String::new();
    write_nested(&mut out, value, &Spec::plain('v'), 0);
    out
}

/// Go's `fmt.Sprint`: operands printed with `%v`, a space between two
/// operands when neither is a string.
pub fn sprint(values: &[Value]) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        let is_string = |v: &Value| matches!(v, Value::String(_));
        if i > 0 && !is_string(value) && !is_string(&values[i - 1]) {
            out.push(' ');
        }
        write_nested(&mut out, value, &Spec::plain('v'), 0);
    }
    out
}

/// Go's `fmt.Sprintln`: operands with spaces between, and a newline.
pub fn sprintln(values: &[Value]) -> String {
    let words: Vec<String> = values.iter().map(print_value).collect();
    format!("{}\n", words.join(" "))
}

/// Go's `%g` with the shortest precision, as `%v` prints a float64.
pub fn format_float_v(f: f64) -> String {
    format_float(f, 'g', None, false)
}

/// Formats a float with verb `e`, `f` or `g` (upper case for `E`, `G`),
/// with a precision (`None`: the shortest that reads back, or 6 for `e`/`f`).
fn format_float(f: f64, verb: char, precision: Option<usize>, sharp: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let upper = verb.is_ascii_uppercase();
    let text = match verb.to_ascii_lowercase() {
        'f' => format!("{:.*}", precision.unwrap_or(6), f),
        'e' => go_exponent(&format!("{:.*e}", precision.unwrap_or(6), f)),
        _ => format_g(f, precision, sharp),
    };
    if upper { text.to_uppercase() } else { text }
}

/// Go's `%g`: exponent form when the exponent is below -4 or at least the
/// precision (6 for the shortest), else positional; trailing zeros dropped.
fn format_g(f: f64, precision: Option<usize>, sharp: bool) -> String {
    let (digits, exp) = match precision {
        None => {
            let shortest = format!("{f:e}");
            split_exponent(&shortest)
        }
        Some(p) => {
            let p = p.max(1);
            let rounded = format!("{:.*e}", p - 1, f);
            let (mut digits, exp) = split_exponent(&rounded);
            if !sharp && digits.contains('.') {
                digits = digits
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string();
            }
            (digits, exp)
        }
    };
    // Go: the shortest form switches at exponent 6; a precision p at p,
    // or at the number of digits when they all sit before the point.
    let eprec = match precision {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            let nd = digits.chars().filter(char::is_ascii_digit).count() as i32;
            if p > nd && nd > exp { nd } else { p }
        }
    };
    if exp < -4 || exp >= eprec {
        return go_exponent(&format!("{digits}e{exp}"));
    }
    positional(&digits, exp)
}

/// Splits Rust's `1.5e3` into (`1.5`, 3).
fn split_exponent(text: &str) -> (String, i32) {
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    (mantissa.to_string(), exp.parse().unwrap_or(0))
}

/// Rust's `1.5e3` as Go writes it: `1.5e+03`.
fn go_exponent(text: &str) -> String {
    let (mantissa, exp) = split_exponent(text);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Digits `d.ddd` times 10^exp, written without an exponent.
fn positional(mantissa: &str, exp: i32) -> String {
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    if negative { format!("-{body}") } else { body }
}

/// A parsed `%` directive.
#[derive(Debug, Clone, Default)]
struct Spec {
    verb: char,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn plain(verb: char) -> Spec {
        Spec {
            verb,
            ..Spec::default()
        }
    }
}

/// Go's `%!verb(type=value)` for a verb that does not fit the value.
fn bad_verb(value: &Value, verb: char) -> String {
    match value {
        Value::Missing | Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", value.type_name(), print_value(value)),
    }
}

/// Formats a value that is not a list or map for one directive (without
/// padding).
fn format_scalar(value: &Value, spec: &Spec) -> String {
    let verb = spec.verb;
    match (value, verb) {
        (_, 'T') => value.type_name().to_string(),
        // `%s` of nil is a bad verb in Go (`%!s(<nil>)`); only `%v` prints it.
        (Value::Missing | Value::Nil, 'v') => "<nil>".into(),
        (Value::Bool(b), 'v' | 't') => b.to_string(),
        (Value::Int(n) | Value::Int64(n), _) => {
            format_int(*n, spec).unwrap_or_else(|| bad_verb(value, verb))
        }
        (Value::Float(f), 'v') => with_sign(format_float_v(*f), spec),
        (Value::Float(f), 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => {
            let verb = if verb == 'F' { 'f' } else { verb };
            with_sign(format_float(*f, verb, spec.precision, spec.sharp), spec)
        }
        (Value::String(s), 'v' | 's') => truncate(s, spec.precision),
        (Value::String(s), 'q') => {
            if spec.sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                go_quote(&truncate(s, spec.precision))
            }
        }
        (Value::String(s), 'x' | 'X') => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' { hex.to_uppercase() } else { hex }
        }
        (Value::Object(o), 'v' | 's') => o.print(),
        _ => bad_verb(value, verb),
    }
}

fn truncate(s: &str, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

fn with_sign(text: String, spec: &Spec) -> String {
    if text.starts_with('-') || text.starts_with('+') {
        return text;
    }
    if spec.plus {
        format!("+{text}")
    } else if spec.space {
        format!(" {text}")
    } else {
        text
    }
}

fn format_int(n: i64, spec: &Spec) -> Option<String> {
    let magnitude = n.unsigned_abs();
    let digits = match spec.verb {
        'v' | 'd' => magnitude.to_string(),
        'x' => format!("{}{magnitude:x}", if spec.sharp { "0x" } else { "" }),
        'X' => format!("{}{magnitude:X}", if spec.sharp { "0X" } else { "" }),
        'o' => format!("{}{magnitude:o}", if spec.sharp { "0" } else { "" }),
        'O' => format!("0o{magnitude:o}"),
        'b' => format!("{magnitude:b}"),
        'c' => return Some(char::from_u32(n as u32).unwrap_or('\u{FFFD}').to_string()),
        'q' => {
            let c = char::from_u32(n as u32).unwrap_or('\u{FFFD}');
            let mut quoted = String::from("'");
            push_escaped(&mut quoted, c, '\'');
            quoted.push('\'');
            return Some(quoted);
        }
        'U' => return Some(format!("U+{:04X}", n)),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => return None,
        _ => return None,
    };
    let digits = match spec.precision {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    let signed = if n < 0 { format!("-{digits}") } else { digits };
    Some(with_sign(signed, spec))
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Appends `c` as it appears inside `quote`s in Go's quoting.
fn push_escaped(out: &mut String, c: char, quote: char) {
    use std::fmt::Write as _;
    let escape = match c {
        '\u{7}' => "\\a",
        '\u{8}' => "\\b",
        '\u{c}' => "\\f",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{b}' => "\\v",
        '\\' => "\\\\",
        c if c == quote => {
            out.push('\\');
            out.push(c);
            return;
        }
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
            return;
        }
        c if c.is_control() && (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
            return;
        }
        c if c.is_control() => {
            let _ = write!(out, "\\U{:08x}", c as u32);
            return;
        }
        c => {
            out.push(c);
            return;
        }
    };
    out.push_str(escape);
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    let mut reordered = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        if let Some(index) = argument_index(&mut chars) {
            next = index;
            reordered = true;
        }
        spec.width = number_or_star(&mut chars, args, &mut next);
        if chars.peek() == Some(&'.') {
            chars.next();
            if let Some(index) = argument_index(&mut chars) {
                next = index;
                reordered = true;
            }
            spec.precision = Some(number_or_star(&mut chars, args, &mut next).unwrap_or(0));
        }
        if let Some(index) = argument_index(&mut chars) {
            next = index;
            reordered = true;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        spec.verb = verb;
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&pad(format_directive(arg, &spec), &spec, arg));
    }
    if !reordered && next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Value::Missing | Value::Nil => "<nil>".to_string(),
                _ => format!("{}={}", a.type_name(), print_value(a)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// `[n]` before a verb: the n-th argument (1-based) comes next.
fn argument_index(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    if chars.peek() != Some(&'[') {
        return None;
    }
    chars.next();
    let mut n = 0usize;
    for c in chars.by_ref() {
        match c.to_digit(10) {
            Some(d) => n = n * 10 + d as usize,
            None => break,
        }
    }
    n.checked_sub(1)
}

fn number_or_star(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Value],
    next: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let n = args.get(*next).and_then(Value::as_int);
        *next += 1;
        return n.map(|n| n.unsigned_abs() as usize);
    }
    let mut n = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn format_directive(arg: &Value, spec: &Spec) -> String {
    match (arg, spec.verb) {
        (Value::List(_) | Value::Map(_), 'v' | 's' | 'd' | 'x' | 'X' | 'q' | 'f' | 'g' | 'e') => {
            let mut out = String::new();
            write_nested(&mut out, arg, spec, 0);
            out
        }
        (Value::List(_) | Value::Map(_), 'T') => arg.type_name().to_string(),
        _ => format_scalar(arg, spec),
    }
}

/// Writes `value` with a verb that applies to every element of lists and
/// maps (`%v`, `%s`, `%d`…). Nesting deeper than [`MAX_NESTING`] (a map
/// containing itself) is cut short with `...`.
fn write_nested(out: &mut String, value: &Value, spec: &Spec, depth: usize) {
    if depth > MAX_NESTING {
        out.push_str("...");
        return;
    }
    match value {
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_nested(out, item, spec, depth + 1);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push_str("map[");
            for (i, (key, item)) in map.entries().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&format_scalar(&Value::string(key.as_str()), spec));
                out.push(':');
                write_nested(out, item, spec, depth + 1);
            }
            out.push(']');
        }
        _ => out.push_str(&format_scalar(value, spec)),
    }
}

/// Pads to the width: spaces (left unless `-`), or zeros after the sign for
/// numbers with `0`.
fn pad(text: String, spec: &Spec, arg: &Value) -> String {
    let Some(width) = spec.width else {
        return text;
    };
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if spec.minus {
        return format!("{text}{}", " ".repeat(fill));
    }
    let numeric = matches!(arg, Value::Int(_) | Value::Int64(_) | Value::Float(_));
    if spec.zero && numeric && !text.starts_with('%') {
        let (sign, digits) = match text.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), &text[1..]),
            _ => (String::new(), text.as_str()),
        };
        return format!("{sign}{}{digits}", "0".repeat(fill));
    }
    if spec.zero && matches!(arg, Value::String(_)) {
        return format!("{}{text}", "0".repeat(fill));
    }
    format!("{}{text}", " ".repeat(fill))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(text: &str) -> Value {
        Value::string(text)
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        for (f, expected) in [
            (1_000_000.0, "1e+06"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5, "1.5"),
            (3.0, "3"),
            (-2.25, "-2.25"),
            (1e21, "1e+21"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(format_float_v(f), expected, "{f}");
        }
    }

    #[test]
    fn sprint_spaces_only_between_non_strings() {
        assert_eq!(sprint(&[s("a"), s("b")]), "ab");
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), s("x"), Value::Int(3)]),
            "1 2x3"
        );
        assert_eq!(sprintln(&[s("a"), Value::Int(1)]), "a 1\n");
        assert_eq!(sprint(&[Value::Nil]), "<nil>");
    }

    #[test]
    fn composite_values() {
        let map: BTreeMap<String, Value> = [
            ("b".to_string(), Value::Int(2)),
            ("a".to_string(), Value::list(vec![s("x"), Value::Nil])),
        ]
        .into_iter()
        .collect();
        assert_eq!(print_value(&Value::map(map)), "map[a:[x <nil>] b:2]");
    }

    #[test]
    fn printf_verbs_flags_and_mistakes() {
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            (
                "%d|%5d|%-5d|%05d|%+d",
                vec![Value::Int(3); 5],
                "3|    3|3    |00003|+3",
            ),
            ("%s %q %v", vec![s("a"), s("b\n"), s("c")], "a \"b\\n\" c"),
            (
                "%x %X %o %b %#x",
                vec![Value::Int(255); 5],
                "ff FF 377 11111111 0xff",
            ),
            (
                "%.2f %e %g %6.1f",
                vec![Value::Float(1.23456); 4],
                "1.23 1.234560e+00 1.23456    1.2",
            ),
            (
                "%t %v",
                vec![Value::Bool(true), Value::Bool(false)],
                "true false",
            ),
            (
                "%T %T %T %T",
                vec![
                    Value::Int(1),
                    Value::Int64(1),
                    Value::Float(1.0),
                    Value::list(vec![]),
                ],
                "int int64 float64 []interface {}",
            ),
            ("%d", vec![s("x")], "%!d(string=x)"),
            ("%s", vec![Value::Int(5)], "%!s(int=5)"),
            ("%d %d", vec![Value::Int(1)], "1 %!d(MISSING)"),
            ("%d", vec![Value::Int(1), s("x")], "1%!(EXTRA string=x)"),
            ("100%%", vec![], "100%"),
            ("%c%c", vec![Value::Int(72), Value::Int(105)], "Hi"),
            ("%*d", vec![Value::Int(4), Value::Int(7)], "   7"),
            ("%[2]s %[1]s", vec![s("a"), s("b")], "b a"),
            ("%.3s", vec![s("abcdef")], "abc"),
            ("%v", vec![Value::Nil], "<nil>"),
            (
                "%s:%d",
                vec![Value::Nil, Value::Nil],
                "%!s(<nil>):%!d(<nil>)",
            ),
            ("%s", vec![Value::list(vec![s("a"), s("b")])], "[a b]"),
            ("%g", vec![Value::Float(1e6)], "1e+06"),
            ("%.3g", vec![Value::Float(1234.5)], "1.23e+03"),
        ];
        for (format, args, expected) in cases {
            assert_eq!(sprintf(format, &args), expected, "{format}");
        }
    }
}
