//! Kyverno conditions (`preconditions`, `deny.conditions`): `any`/`all`
//! lists of `{key, operator, value}` after variable substitution.

use std::cmp::Ordering;

use gitplane_object::Value;

use super::values::{compare, loosely_equal, parse_duration};
use super::vars::Vars;

/// Evaluates a conditions block: a legacy list (all must hold) or
/// `{any: [...], all: [...]}`. Returns whether it holds and, when it holds
/// because of conditions with messages, those messages.
pub fn holds(conditions: &Value, vars: &Vars) -> Result<(bool, Vec<String>), String> {
    let (any, all) = match conditions {
        Value::Array(list) => (None, Some(list.as_slice())),
        Value::Object(map) => (
            map.get("any").and_then(Value::as_array).map(Vec::as_slice),
            map.get("all").and_then(Value::as_array).map(Vec::as_slice),
        ),
        Value::Null => return Ok((true, Vec::new())),
        other => return Err(format!("conditions must be a list or any/all, not {other}")),
    };
    let mut messages = Vec::new();
    if let Some(all) = all {
        for condition in all {
            if !one(condition, vars)? {
                return Ok((false, Vec::new()));
            }
            push_message(condition, vars, &mut messages);
        }
    }
    if let Some(any) = any.filter(|a| !a.is_empty()) {
        let mut some = false;
        for condition in any {
            if one(condition, vars)? {
                some = true;
                push_message(condition, vars, &mut messages);
            }
        }
        if !some {
            return Ok((false, Vec::new()));
        }
    }
    Ok((true, messages))
}

fn push_message(condition: &Value, vars: &Vars, messages: &mut Vec<String>) {
    if let Some(message) = condition["message"].as_str()
        && let Ok(Value::String(text)) = vars.substitute_text(message)
    {
        messages.push(text);
    }
}

fn one(condition: &Value, vars: &Vars) -> Result<bool, String> {
    let operator = condition["operator"]
        .as_str()
        .ok_or_else(|| format!("condition {condition}: operator is required"))?;
    let key = vars.substitute(condition.get("key").unwrap_or(&Value::Null))?;
    let value = vars.substitute(condition.get("value").unwrap_or(&Value::Null))?;
    evaluate(operator, &key, &value)
}

/// Applies a condition operator.
pub fn evaluate(operator: &str, key: &Value, value: &Value) -> Result<bool, String> {
    let ordered = |wanted: &[Ordering]| compare(key, value).is_some_and(|o| wanted.contains(&o));
    let durations = |wanted: &[Ordering]| {
        let seconds = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_duration(s),
            _ => None,
        };
        match (seconds(key), seconds(value)) {
            (Some(k), Some(v)) => k.partial_cmp(&v).is_some_and(|o| wanted.contains(&o)),
            _ => false,
        }
    };
    Ok(match operator {
        "Equals" | "Equal" => loosely_equal(key, value),
        "NotEquals" | "NotEqual" => !loosely_equal(key, value),
        "GreaterThan" => ordered(&[Ordering::Greater]),
        "GreaterThanOrEquals" => ordered(&[Ordering::Greater, Ordering::Equal]),
        "LessThan" => ordered(&[Ordering::Less]),
        "LessThanOrEquals" => ordered(&[Ordering::Less, Ordering::Equal]),
        "DurationGreaterThan" => durations(&[Ordering::Greater]),
        "DurationGreaterThanOrEquals" => durations(&[Ordering::Greater, Ordering::Equal]),
        "DurationLessThan" => durations(&[Ordering::Less]),
        "DurationLessThanOrEquals" => durations(&[Ordering::Less, Ordering::Equal]),
        "AnyIn" => elements(key).iter().any(|k| contains(value, k)),
        "AllIn" | "In" => elements(key).iter().all(|k| contains(value, k)),
        "AnyNotIn" => elements(key).iter().any(|k| !contains(value, k)),
        "AllNotIn" => elements(key).iter().all(|k| !contains(value, k)),
        "NotIn" => !elements(key).iter().all(|k| contains(value, k)),
        other => return Err(format!("unknown condition operator {other:?}")),
    })
}

/// A key as the list of its elements (a scalar is a list of one).
fn elements(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// Whether `set` (a list, or a scalar standing for a list of one)
/// contains `item`, with wildcards in either. A set written as a numeric
/// range (`"5000-6000"`, bounds included; `"!5000-6000"` for outside it)
/// holds the numbers in it, and a set written as a JSON list
/// (`'["a", "b"]'`, as a ConfigMap's data holds one) holds its elements, as
/// in Kyverno's `In` operators.
fn contains(set: &Value, item: &Value) -> bool {
    if let Value::String(text) = set {
        if let Some(inside) = in_range(text, item) {
            return inside;
        }
        if let Ok(list @ Value::Array(_)) = serde_json::from_str::<Value>(text) {
            return contains(&list, item);
        }
    }
    elements(set)
        .iter()
        .any(|candidate| loosely_equal(item, candidate) || loosely_equal(candidate, item))
}

/// `Some(whether item is in it)` when `text` is a range `min-max` or
/// `!min-max` and `item` a number (or a string holding one).
fn in_range(text: &str, item: &Value) -> Option<bool> {
    let (negated, range) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    // The separator is the first '-' after the first character (a minimum
    // may be negative: "-10-10").
    let split = range.char_indices().skip(1).find(|(_, c)| *c == '-')?.0;
    let min: f64 = range[..split].trim().parse().ok()?;
    let max: f64 = range[split + 1..].trim().parse().ok()?;
    let number = match item {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some((min..=max).contains(&number) != negated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::{Map, json};

    #[test]
    fn operators() {
        for (op, key, value, expected) in [
            ("Equals", json!("nginx:latest"), json!("*:latest"), true),
            ("NotEquals", json!("a"), json!("a"), false),
            (
                "AnyIn",
                json!(["NET_ADMIN", "CHOWN"]),
                json!(["NET_ADMIN"]),
                true,
            ),
            (
                "AllIn",
                json!(["NET_ADMIN", "CHOWN"]),
                json!(["NET_ADMIN"]),
                false,
            ),
            ("AnyNotIn", json!([5555]), json!("5000-6000"), false),
            ("AnyNotIn", json!("b"), json!("[\"a\", \"b\"]"), false),
            ("AnyIn", json!(["c"]), json!("[\"a\", \"b\"]"), false),
            ("AnyNotIn", json!([5555, 80]), json!("5000-6000"), true),
            ("AllIn", json!(["5001", 6000]), json!("5000-6000"), true),
            ("AnyIn", json!([80]), json!("!5000-6000"), true),
            ("AnyIn", json!([-5]), json!("-10-10"), true),
            (
                "AnyNotIn",
                json!(["NET_ADMIN", "CHOWN"]),
                json!(["NET_ADMIN"]),
                true,
            ),
            ("AllNotIn", json!(["SYS_ADMIN"]), json!(["NET_ADMIN"]), true),
            ("GreaterThan", json!(5), json!(3), true),
            ("LessThanOrEquals", json!("1Gi"), json!("1024Mi"), true),
            ("DurationGreaterThan", json!("2h"), json!("1h"), true),
            ("In", json!("CREATE"), json!(["CREATE", "UPDATE"]), true),
        ] {
            assert_eq!(
                evaluate(op, &key, &value).unwrap(),
                expected,
                "{key} {op} {value}"
            );
        }
        assert!(evaluate("Resembles", &json!(1), &json!(1)).is_err());
    }

    #[test]
    fn any_and_all() {
        let vars = Vars::new(
            json!({"request": {"operation": "DELETE"}})
                .as_object()
                .unwrap_or(&Map::new()),
        );
        let block = json!({"any": [{"key": "{{request.operation}}", "operator": "Equals", "value": "DELETE", "message": "no deletes"}],
                           "all": [{"key": 1, "operator": "Equals", "value": 1}]});
        assert_eq!(
            holds(&block, &vars).unwrap(),
            (true, vec!["no deletes".to_string()])
        );
        let legacy =
            json!([{"key": "{{request.operation}}", "operator": "Equals", "value": "CREATE"}]);
        assert!(!holds(&legacy, &vars).unwrap().0);
    }
}
