//! Sprig's arithmetic (in `int64`, arguments cast as spf13/cast does) and
//! conversions.

use super::{Plain, exactly, string};
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("add", |a| {
        Ok(Value::Int64(
            a.iter().map(to_int64).fold(0i64, i64::wrapping_add),
        ))
    }),
    ("add1", |a| {
        Ok(Value::Int64(
            to_int64(&exactly::<1>("add1", a)?[0]).wrapping_add(1),
        ))
    }),
    ("sub", |a| {
        let [x, y] = exactly::<2>("sub", a)?;
        Ok(Value::Int64(to_int64(x).wrapping_sub(to_int64(y))))
    }),
    ("mul", |a| {
        Ok(Value::Int64(
            a.iter().map(to_int64).fold(1i64, i64::wrapping_mul),
        ))
    }),
    ("div", |a| divide("div", a, i64::checked_div)),
    ("mod", |a| divide("mod", a, i64::checked_rem)),
    ("max", |a| extreme("max", a, i64::max)),
    ("biggest", |a| extreme("biggest", a, i64::max)),
    ("min", |a| extreme("min", a, i64::min)),
    ("int", |a| {
        Ok(Value::Int(to_int64(&exactly::<1>("int", a)?[0])))
    }),
    ("int64", |a| {
        Ok(Value::Int64(to_int64(&exactly::<1>("int64", a)?[0])))
    }),
    ("float64", |a| {
        Ok(Value::Float(to_float64(&exactly::<1>("float64", a)?[0])))
    }),
    ("atoi", |a| {
        let s = string(&exactly::<1>("atoi", a)?[0])?;
        Ok(Value::Int(s.parse().unwrap_or(0)))
    }),
    ("toDecimal", |a| {
        let text = super::strval(&exactly::<1>("toDecimal", a)?[0]);
        Ok(Value::Int64(i64::from_str_radix(&text, 8).unwrap_or(0)))
    }),
    ("floor", |a| {
        Ok(Value::Float(
            to_float64(&exactly::<1>("floor", a)?[0]).floor(),
        ))
    }),
    ("ceil", |a| {
        Ok(Value::Float(
            to_float64(&exactly::<1>("ceil", a)?[0]).ceil(),
        ))
    }),
    ("round", round),
];

/// spf13/cast's `ToInt64`: numbers truncated, strings parsed as Go integer
/// literals (a `.0` suffix allowed), booleans 1 or 0, anything else 0.
pub(crate) fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(n) | Value::Int64(n) => *n,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

/// spf13/cast's `ToFloat64`.
pub(crate) fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(n) | Value::Int64(n) => *n as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// `"3.00"` → `"3"` (cast accepts integral decimals).
fn trim_zero_decimal(s: &str) -> &str {
    match s.split_once('.') {
        Some((whole, fraction)) if !whole.is_empty() && fraction.bytes().all(|b| b == b'0') => {
            whole
        }
        _ => s,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: a sign, then decimal, `0x`, `0o`,
/// `0b` or a leading-`0` octal.
fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body.replace('_', "");
    let lower = body.to_ascii_lowercase();
    let magnitude = if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = lower.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        lower.parse().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn divide(name: &str, args: &[Value], op: fn(i64, i64) -> Option<i64>) -> Result<Value, String> {
    let [x, y] = exactly::<2>(name, args)?;
    op(to_int64(x), to_int64(y))
        .map(Value::Int64)
        .ok_or_else(|| "runtime error: integer divide by zero".into())
}

fn extreme(name: &str, args: &[Value], pick: fn(i64, i64) -> i64) -> Result<Value, String> {
    let (first, rest) = super::first_and_rest(name, args)?;
    Ok(Value::Int64(
        rest.iter().map(to_int64).fold(to_int64(first), pick),
    ))
}

/// `round x places [half]`: rounds half up (or at `half`, default .5).
fn round(args: &[Value]) -> Result<Value, String> {
    let (x, places, half) = match args {
        [x, p] => (x, p, 0.5),
        [x, p, h] => (x, p, to_float64(h)),
        _ => {
            return Err(format!(
                "wrong number of args for round: want at least 2 got {}",
                args.len()
            ));
        }
    };
    let places = super::int(places)?;
    let scale = 10f64.powi(places as i32);
    let scaled = to_float64(x) * scale;
    let whole = scaled.trunc();
    let fraction = (scaled - whole).abs();
    let rounded = if fraction >= half {
        whole + scaled.signum()
    } else {
        whole
    };
    Ok(Value::Float(rounded / scale))
}

#[cfg(test)]
mod tests {
    use super::super::tests::render;
    use crate::value::Value;

    fn r(src: &str) -> String {
        render(src, &Value::Nil).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn arithmetic_is_int64_and_casts_its_arguments() {
        assert_eq!(
            r(
                r#"{{ add 1 2 3 }} {{ add 1.9 "2" }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }} {{ add1 1 }}"#
            ),
            "6 3 -2 24 3 1 2"
        );
        assert_eq!(
            r(
                r#"{{ max 1 5 3 }} {{ min 4 2 }} {{ int "42" }} {{ int "0x1F" }} {{ int "3.0" }} {{ int64 2.7 }} {{ float64 "1.5" }} {{ atoi "x" }}"#
            ),
            "5 2 42 31 3 2 1.5 0"
        );
        assert_eq!(
            r(
                r#"{{ toDecimal "0777" }} {{ floor 1.5 }} {{ ceil 1.2 }} {{ round 2.555 2 }} {{ typeOf (int 1) }} {{ typeOf (add 1 1) }}"#
            ),
            "511 1 2 2.56 int int64"
        );
        let err = render("{{ div 1 0 }}", &Value::Nil).unwrap_err();
        assert!(
            err.ends_with("error calling div: runtime error: integer divide by zero"),
            "{err}"
        );
    }
}
