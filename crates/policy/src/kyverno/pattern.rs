//! Kyverno `validate.pattern`: an overlay the resource must match.
//!
//! Keys may carry anchors: `(k)` conditional (if it does not match, the
//! pattern does not apply here), `<(k)` global (if it does not match, the
//! rule does not apply at all), `=(k)` equality (checked only if present),
//! `^(k)` existence (some element of the list matches), `X(k)` negation
//! (must be absent). Scalars are string patterns: `|` or, `&` and, the
//! operators `> < >= <= !`, ranges `a-b` and `a!-b`, and wildcards.

use std::cmp::Ordering;

use gitplane_object::{Map, Value};

use super::values::{compare, has_wildcard, scalar_text, wildcard_match};

/// Why a resource does not match a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// It does not match, at this path.
    Fail {
        /// Path of the field (`/spec/containers/0/image/`).
        path: String,
        /// What was expected.
        message: String,
    },
    /// A conditional anchor did not match: the pattern does not apply.
    Skip {
        /// Path of the anchor.
        path: String,
    },
    /// A global anchor did not match: the rule does not apply.
    GlobalSkip {
        /// Path of the anchor.
        path: String,
    },
}

impl Mismatch {
    /// The path the mismatch was found at.
    pub fn path(&self) -> &str {
        match self {
            Mismatch::Fail { path, .. }
            | Mismatch::Skip { path }
            | Mismatch::GlobalSkip { path } => path,
        }
    }
}

/// What a pattern key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor<'a> {
    /// A plain key.
    None(&'a str),
    /// `(key)`.
    Conditional(&'a str),
    /// `<(key)`.
    Global(&'a str),
    /// `=(key)`.
    Equality(&'a str),
    /// `^(key)`.
    Existence(&'a str),
    /// `X(key)`.
    Negation(&'a str),
    /// `+(key)` (mutate only).
    Add(&'a str),
}

impl<'a> Anchor<'a> {
    /// Parses a pattern key.
    pub fn parse(key: &'a str) -> Anchor<'a> {
        let inner = |prefix: &str| key.strip_prefix(prefix).and_then(|k| k.strip_suffix(')'));
        if let Some(k) = inner("<(") {
            Anchor::Global(k)
        } else if let Some(k) = inner("=(") {
            Anchor::Equality(k)
        } else if let Some(k) = inner("^(") {
            Anchor::Existence(k)
        } else if let Some(k) = inner("X(") {
            Anchor::Negation(k)
        } else if let Some(k) = inner("+(") {
            Anchor::Add(k)
        } else if let Some(k) = inner("(") {
            Anchor::Conditional(k)
        } else {
            Anchor::None(key)
        }
    }

    /// The key without its anchor.
    pub fn key(&self) -> &'a str {
        match *self {
            Anchor::None(k)
            | Anchor::Conditional(k)
            | Anchor::Global(k)
            | Anchor::Equality(k)
            | Anchor::Existence(k)
            | Anchor::Negation(k)
            | Anchor::Add(k) => k,
        }
    }
}

/// Checks `resource` against `pattern`.
pub fn validate(resource: &Value, pattern: &Value) -> Result<(), Mismatch> {
    element(resource, pattern, "/")
}

fn fail(path: &str, message: String) -> Mismatch {
    Mismatch::Fail {
        path: path.to_string(),
        message,
    }
}

fn element(resource: &Value, pattern: &Value, path: &str) -> Result<(), Mismatch> {
    match pattern {
        Value::Object(pattern) => match resource {
            Value::Object(resource) => map(resource, pattern, path),
            // Absent: only what a missing map satisfies (optional anchors).
            Value::Null => map(&Map::new(), pattern, path),
            _ => Err(fail(
                path,
                format!("expected a map, found {}", type_name(resource)),
            )),
        },
        Value::Array(pattern) => match resource {
            Value::Array(resource) => array(resource, pattern, path),
            _ => Err(fail(
                path,
                format!("expected a list, found {}", type_name(resource)),
            )),
        },
        _ => {
            if value_matches(resource, pattern) {
                Ok(())
            } else {
                Err(fail(
                    path,
                    format!(
                        "value {} does not match {}",
                        short(resource),
                        short(pattern)
                    ),
                ))
            }
        }
    }
}

fn map(
    resource: &Map<String, Value>,
    pattern: &Map<String, Value>,
    path: &str,
) -> Result<(), Mismatch> {
    // Conditions first (global, then conditional), then the checks.
    let mut keys: Vec<(Anchor, &Value)> =
        pattern.iter().map(|(k, v)| (Anchor::parse(k), v)).collect();
    keys.sort_by_key(|(anchor, _)| match anchor {
        Anchor::Global(_) => 0,
        Anchor::Conditional(_) => 1,
        _ => 2,
    });
    for (anchor, sub) in keys {
        let key = anchor.key();
        let here = format!("{path}{key}/");
        let value = resource.get(key);
        match anchor {
            Anchor::Global(_) => match value {
                Some(v) if element(v, sub, &here).is_ok() => {}
                _ => return Err(Mismatch::GlobalSkip { path: here }),
            },
            Anchor::Conditional(_) => match value {
                Some(v) => match element(v, sub, &here) {
                    Ok(()) => {}
                    Err(Mismatch::GlobalSkip { path }) => {
                        return Err(Mismatch::GlobalSkip { path });
                    }
                    Err(_) => return Err(Mismatch::Skip { path: here }),
                },
                None => return Err(Mismatch::Skip { path: here }),
            },
            // A key with a wildcard (`=(container.apparmor…/*)`) stands for
            // every field it matches.
            Anchor::Equality(_) => {
                for (k, v) in fields_named(resource, key) {
                    element(v, sub, &format!("{path}{k}/"))?;
                }
            }
            Anchor::Negation(_) => {
                if let Some((k, _)) = fields_named(resource, key).first() {
                    return Err(fail(&here, format!("field {k} is not allowed")));
                }
            }
            Anchor::Existence(_) => {
                if let Some(v) = value {
                    existence(v, sub, &here)?;
                }
            }
            Anchor::Add(_) => {}
            Anchor::None(_) if has_wildcard(key) => {
                let matching = fields_named(resource, key);
                if matching.is_empty() {
                    return Err(fail(&here, format!("no field matches {key}")));
                }
                for (k, v) in matching {
                    element(v, sub, &format!("{path}{k}/"))?;
                }
            }
            Anchor::None(_) => match value {
                Some(v) => element(v, sub, &here)?,
                None if sub.as_str() == Some("*") => {
                    return Err(fail(&here, "field not found".into()));
                }
                None => element(&Value::Null, sub, &here)?,
            },
        }
    }
    Ok(())
}

/// The fields a pattern key names: the one field, or every field a key with
/// wildcards matches.
fn fields_named<'r>(resource: &'r Map<String, Value>, key: &str) -> Vec<(&'r String, &'r Value)> {
    if has_wildcard(key) {
        resource
            .iter()
            .filter(|(k, _)| wildcard_match(key, k))
            .collect()
    } else {
        resource.get_key_value(key).into_iter().collect()
    }
}

fn existence(resource: &Value, pattern: &Value, path: &str) -> Result<(), Mismatch> {
    let (Value::Array(items), Value::Array(patterns)) = (resource, pattern) else {
        return Err(fail(
            path,
            "an existence anchor needs a list in the pattern and the resource".into(),
        ));
    };
    let Some(wanted) = patterns.first() else {
        return Err(fail(
            path,
            "an existence anchor needs a pattern element".into(),
        ));
    };
    if items
        .iter()
        .enumerate()
        .any(|(i, item)| element(item, wanted, &format!("{path}{i}/")).is_ok())
    {
        Ok(())
    } else {
        Err(fail(path, format!("no element matches {}", short(wanted))))
    }
}

fn array(resource: &[Value], pattern: &[Value], path: &str) -> Result<(), Mismatch> {
    let Some(first) = pattern.first() else {
        return Err(fail(path, "the pattern's list is empty".into()));
    };
    if first.is_object() {
        for wanted in pattern {
            let mut applied = 0;
            let mut skipped = None;
            for (i, item) in resource.iter().enumerate() {
                match element(item, wanted, &format!("{path}{i}/")) {
                    Ok(()) => applied += 1,
                    Err(Mismatch::Skip { path }) => skipped = Some(path),
                    Err(other) => return Err(other),
                }
            }
            if applied == 0
                && let Some(path) = skipped
            {
                return Err(Mismatch::Skip { path });
            }
        }
        return Ok(());
    }
    if pattern.len() == 1 {
        for (i, item) in resource.iter().enumerate() {
            element(item, first, &format!("{path}{i}/"))?;
        }
        return Ok(());
    }
    if pattern.len() > resource.len() {
        return Err(fail(
            path,
            format!("expected at least {} elements", pattern.len()),
        ));
    }
    for (i, wanted) in pattern.iter().enumerate() {
        element(&resource[i], wanted, &format!("{path}{i}/"))?;
    }
    Ok(())
}

/// Whether a scalar (or null) matches a scalar pattern.
pub fn value_matches(value: &Value, pattern: &Value) -> bool {
    match pattern {
        Value::Null => match value {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
        },
        Value::Bool(b) => value.as_bool() == Some(*b),
        Value::Number(_) => compare(value, pattern) == Some(Ordering::Equal),
        Value::String(text) => {
            // A list of scalars matches when each of them does, as in
            // Kyverno (`supplementalGroups: 100-200 | 500-600`).
            if let Value::Array(items) = value
                && text != "*"
                && items
                    .iter()
                    .all(|item| !matches!(item, Value::Array(_) | Value::Object(_)))
            {
                return items.iter().all(|item| value_matches(item, pattern));
            }
            if matches!(value, Value::Array(_) | Value::Object(_)) {
                return text == "*";
            }
            text.split('|').any(|alternative| {
                alternative
                    .split('&')
                    .all(|operand| operand_matches(value, operand.trim()))
            })
        }
        Value::Array(_) | Value::Object(_) => value == pattern,
    }
}

fn operand_matches(value: &Value, operand: &str) -> bool {
    for (prefix, wanted) in [
        (">=", &[Ordering::Greater, Ordering::Equal][..]),
        ("<=", &[Ordering::Less, Ordering::Equal][..]),
        (">", &[Ordering::Greater][..]),
        ("<", &[Ordering::Less][..]),
    ] {
        if let Some(bound) = operand.strip_prefix(prefix) {
            return compare(value, &Value::String(bound.trim().to_string()))
                .is_some_and(|o| wanted.contains(&o));
        }
    }
    if let Some((low, high)) = operand.split_once("!-")
        && let Some(inside) = in_range(value, low, high)
    {
        return !inside;
    }
    if let Some(rest) = operand.strip_prefix('!') {
        return !equals(value, rest);
    }
    if let Some((low, high)) = operand.split_once('-')
        && let Some(inside) = in_range(value, low, high)
    {
        return inside;
    }
    equals(value, operand)
}

fn in_range(value: &Value, low: &str, high: &str) -> Option<bool> {
    let low = Value::String(low.trim().to_string());
    let high = Value::String(high.trim().to_string());
    super::values::magnitude(&low)?;
    super::values::magnitude(&high)?;
    let above = compare(value, &low)?;
    let below = compare(value, &high)?;
    Some(above != Ordering::Less && below != Ordering::Greater)
}

fn equals(value: &Value, operand: &str) -> bool {
    let Some(text) = scalar_text(value) else {
        return false;
    };
    if has_wildcard(operand) {
        return wildcard_match(operand, &text);
    }
    if text == operand {
        return true;
    }
    value.is_number()
        && compare(value, &Value::String(operand.to_string())) == Some(Ordering::Equal)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::json;

    fn pod(image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "a", "image": image, "resources": {"limits": {"memory": "256Mi"}}}]}})
    }

    #[test]
    fn operators_wildcards_and_ranges() {
        for (value, pattern, expected) in [
            (json!("nginx:1.2"), json!("!*:latest"), true),
            (json!("nginx:latest"), json!("!*:latest"), false),
            (json!(3), json!(">=2"), true),
            (json!(3), json!("<2"), false),
            (json!("256Mi"), json!("<=1Gi"), true),
            (json!(5), json!("1-10"), true),
            (json!(5), json!("1!-10"), false),
            (json!("b"), json!("a | b"), true),
            (json!(4), json!(">1 & <3"), false),
            (json!(true), json!(true), true),
            (json!(Value::Null), json!(Value::Null), true),
            (json!(""), json!("?*"), false),
            (json!([100, 550]), json!("100-200 | 500-600"), true),
            (json!([100, 300]), json!("100-200 | 500-600"), false),
            (json!([{"a": 1}]), json!("*"), true),
        ] {
            assert_eq!(
                value_matches(&value, &pattern),
                expected,
                "{value} vs {pattern}"
            );
        }
    }

    #[test]
    fn anchors() {
        let pattern =
            json!({"spec": {"containers": [{"(image)": "*:latest", "imagePullPolicy": "Always"}]}});
        // The condition does not hold: the pattern does not apply.
        assert!(matches!(
            validate(&pod("nginx:1"), &pattern),
            Err(Mismatch::Skip { .. })
        ));
        // It holds, and the check fails.
        assert!(matches!(
            validate(&pod("nginx:latest"), &pattern),
            Err(Mismatch::Fail { .. })
        ));
        let equality = json!({"spec": {"=(hostNetwork)": false}});
        assert!(validate(&pod("x"), &equality).is_ok());
        assert!(validate(&json!({"spec": {"hostNetwork": true}}), &equality).is_err());
        let negation = json!({"spec": {"X(hostPID)": "null"}});
        assert!(validate(&pod("x"), &negation).is_ok());
        assert!(validate(&json!({"spec": {"hostPID": false}}), &negation).is_err());
        let existence = json!({"spec": {"^(containers)": [{"image": "nginx*"}]}});
        assert!(validate(&pod("nginx:1"), &existence).is_ok());
        assert!(validate(&pod("redis"), &existence).is_err());
        let global = json!({"spec": {"containers": [{"<(image)": "nginx*"}], "replicas": 3}});
        assert!(matches!(
            validate(&pod("redis"), &global),
            Err(Mismatch::GlobalSkip { .. })
        ));
        let wildcard_key = json!({"metadata": {"labels": {"app*": "?*"}}});
        assert!(validate(&pod("x"), &wildcard_key).is_ok());
        // An equality anchor with a wildcard checks every field it matches.
        let armor = json!({"=(metadata)": {"=(annotations)": {"=(armor/*)": "runtime/default"}}});
        let annotated = |v: &str| json!({"metadata": {"annotations": {"armor/c1": "runtime/default", "armor/c2": v}}});
        assert!(validate(&annotated("runtime/default"), &armor).is_ok());
        assert!(validate(&annotated("unconfined"), &armor).is_err());
        let limits = json!({"spec": {"containers": [{"resources": {"limits": {"memory": "?*", "cpu": "?*"}}}]}});
        let failure = validate(&pod("x"), &limits).unwrap_err();
        assert_eq!(failure.path(), "/spec/containers/0/resources/limits/cpu/");
    }
}
