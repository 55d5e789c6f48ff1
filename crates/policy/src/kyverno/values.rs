//! Comparing scalars as Kyverno does: wildcards (`*`, `?`) on strings, and
//! numbers, Kubernetes quantities (`512Mi`, `250m`) and Go durations
//! (`1h30m`) compared by magnitude.

use std::cmp::Ordering;

use gitplane_object::Value;

/// Whether `text` matches `pattern`, where `*` is any run of characters and
/// `?` any one character. Linear in practice, O(n·m) at worst (no
/// backtracking explosion).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether a string has wildcard characters.
pub fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// A Kubernetes quantity (`1.5Gi`, `250m`, `1e3`) as a number.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(number * factor)
}

/// A Go duration (`1h30m`, `500ms`, `10s`) in seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A value as a magnitude: a number, a numeric string, or a quantity.
pub fn magnitude(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_quantity(s),
        _ => None,
    }
}

/// Compares two values by magnitude: as durations when both parse as
/// durations (and are not plain numbers), else as numbers or quantities,
/// else as dotted versions (`1.2.10` > `1.2.9`).
pub fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    if let (Value::String(l), Value::String(r)) = (left, right)
        && l.parse::<f64>().is_err()
        && let (Some(l), Some(r)) = (parse_duration(l), parse_duration(r))
    {
        return l.partial_cmp(&r);
    }
    if let (Some(l), Some(r)) = (magnitude(left), magnitude(right)) {
        return l.partial_cmp(&r);
    }
    if let (Value::String(l), Value::String(r)) = (left, right) {
        return compare_versions(l, r);
    }
    None
}

fn compare_versions(left: &str, right: &str) -> Option<Ordering> {
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.trim_start_matches('v')
            .split('.')
            .map(|p| p.parse().ok())
            .collect()
    };
    Some(parse(left)?.cmp(&parse(right)?))
}

/// A scalar as the string Kyverno compares (numbers and bools in their
/// JSON form, null as empty).
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Equality as conditions use it: wildcards in `right` strings, numbers and
/// quantities by magnitude, durations by length, anything else structurally.
pub fn loosely_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (_, Value::String(pattern)) if has_wildcard(pattern) => {
            scalar_text(left).is_some_and(|text| wildcard_match(pattern, &text))
        }
        (Value::String(l), Value::String(r)) if l == r => true,
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            left == right
        }
        (Value::Bool(_) | Value::Null, _) | (_, Value::Bool(_) | Value::Null) => {
            scalar_text(left) == scalar_text(right)
        }
        _ => {
            compare(left, right) == Some(Ordering::Equal) || scalar_text(left) == scalar_text(right)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::json;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*:latest", "nginx:latest"));
        assert!(wildcard_match("?*", "a"));
        assert!(!wildcard_match("?*", ""));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("nginx", "nginx:1"));
        assert!(wildcard_match("a*b*c", "a-x-b-y-c"));
        // A pathological pattern stays quick: no backtracking blow-up.
        let text = "a".repeat(5000);
        assert!(!wildcard_match(&format!("{}b", "*a".repeat(50)), &text));
    }

    #[test]
    fn magnitudes() {
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("250m"), Some(0.25));
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(
            compare(&json!("512Mi"), &json!("1Gi")),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(&json!("2h"), &json!("90m")),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&json!(3), &json!("2")), Some(Ordering::Greater));
        assert_eq!(
            compare(&json!("1.10.0"), &json!("1.9.2")),
            Some(Ordering::Greater)
        );
        assert!(loosely_equal(&json!("100m"), &json!("0.1")));
        assert!(loosely_equal(&json!(true), &json!("true")));
    }
}
