//! Label selectors, in both forms Kubernetes uses: the string form of `kubectl -l`
//! and `?labelSelector=` (`app=web,tier!=db,env in (a,b),!legacy`) and the
//! structured form of `spec.selector` (`matchLabels` / `matchExpressions`).

use std::fmt;

use serde_json::{Map, Value};

/// A selector error, naming the part that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorError {
    /// The selector text (or its JSON form).
    pub selector: String,
    /// What is wrong with it.
    pub reason: String,
}

/// How a requirement compares a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value`, `key==value`, `matchLabels`.
    Equals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The comparison.
    pub operator: Operator,
    /// The values compared against (empty for the existence operators).
    pub values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).and_then(Value::as_str);
        let in_values = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(in_values),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(in_values),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A conjunction of requirements. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The requirements, all of which must hold.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// True when every requirement holds for these labels.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let empty = Map::new();
        let labels = labels.unwrap_or(&empty);
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Parses the string form.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let fail = |reason: String| SelectorError {
            selector: text.to_string(),
            reason,
        };
        let mut requirements = Vec::new();
        for part in split_top_level(text).map_err(fail)? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(fail("empty requirement".into()));
            }
            requirements.push(parse_requirement(part).map_err(fail)?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Parses the structured form: `{matchLabels: {...}, matchExpressions: [...]}`.
    pub fn from_json(value: &Value) -> Result<Self, SelectorError> {
        let fail = |reason: &str| SelectorError {
            selector: value.to_string(),
            reason: reason.to_string(),
        };
        let Some(map) = value.as_object() else {
            return if value.is_null() {
                Ok(Self::everything())
            } else {
                Err(fail("not a mapping"))
            };
        };
        let mut requirements = Vec::new();
        if let Some(labels) = map.get("matchLabels") {
            let labels = labels
                .as_object()
                .ok_or_else(|| fail("matchLabels is not a mapping"))?;
            for (key, v) in labels {
                let v = v
                    .as_str()
                    .ok_or_else(|| fail("matchLabels values must be strings"))?;
                validate_key(key).map_err(|r| fail(&r))?;
                validate_value(v).map_err(|r| fail(&r))?;
                requirements.push(Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: vec![v.to_string()],
                });
            }
        }
        if let Some(exprs) = map.get("matchExpressions") {
            let exprs = exprs
                .as_array()
                .ok_or_else(|| fail("matchExpressions is not a list"))?;
            for expr in exprs {
                requirements.push(expression(expr).map_err(|r| fail(&r))?);
            }
        }
        Ok(LabelSelector { requirements })
    }
}

fn expression(expr: &Value) -> Result<Requirement, String> {
    let key = expr
        .get("key")
        .and_then(Value::as_str)
        .ok_or("matchExpressions entry has no key")?;
    validate_key(key)?;
    let op = expr
        .get("operator")
        .and_then(Value::as_str)
        .ok_or("matchExpressions entry has no operator")?;
    let values: Vec<String> = match expr.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("values must be strings")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("values must be a list".into()),
    };
    let operator = match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => return Err(format!("unknown operator {other:?}")),
    };
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            Err(format!("operator {op} needs at least one value"))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            Err(format!("operator {op} takes no values"))
        }
        _ => Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        }),
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced parenthesis")?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced parenthesis".into());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        validate_key(key)?;
        return Ok(Requirement {
            key: key.into(),
            operator: Operator::DoesNotExist,
            values: vec![],
        });
    }
    for (token, operator) in [
        ("!=", Operator::NotEquals),
        ("==", Operator::Equals),
        ("=", Operator::Equals),
    ] {
        if let Some((key, value)) = part.split_once(token) {
            let (key, value) = (key.trim(), value.trim());
            validate_key(key)?;
            validate_value(value)?;
            return Ok(Requirement {
                key: key.into(),
                operator,
                values: vec![value.into()],
            });
        }
    }
    if let Some(open) = part.find('(') {
        let head = part[..open].trim_end();
        let inner = part[open + 1..]
            .strip_suffix(')')
            .ok_or("expected ')' at the end")?;
        let (key, operator) = if let Some(key) = head.strip_suffix(" notin") {
            (key, Operator::NotIn)
        } else if let Some(key) = head.strip_suffix(" in") {
            (key, Operator::In)
        } else {
            return Err(format!("expected 'in' or 'notin' in {part:?}"));
        };
        let key = key.trim();
        validate_key(key)?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        for v in &values {
            validate_value(v)?;
        }
        return Ok(Requirement {
            key: key.into(),
            operator,
            values,
        });
    }
    validate_key(part)?;
    Ok(Requirement {
        key: part.into(),
        operator: Operator::Exists,
        values: vec![],
    })
}

/// A label key: an optional DNS prefix and `/`, then a name of at most 63
/// characters made of alphanumerics, `-`, `_` and `.`.
fn validate_key(key: &str) -> Result<(), String> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty()
                || prefix.len() > 253
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(format!("invalid label key prefix in {key:?}"));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || name.len() > 63 || !is_label_text(name) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(())
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`, starting and
/// ending with an alphanumeric.
fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !is_label_text(value) {
        return Err(format!("invalid label value {value:?}"));
    }
    Ok(())
}

fn is_label_text(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.operator {
                Operator::Equals => format!("{}={}", r.key, r.values[0]),
                Operator::NotEquals => format!("{}!={}", r.key, r.values[0]),
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn string_forms() {
        let l = labels(json!({"app": "web", "env": "prod", "tier": "front"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&l));
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app!=web"));
        assert!(m("missing!=x"));
        assert!(m("env in (dev, prod)"));
        assert!(!m("env notin (prod)"));
        assert!(m("missing notin (prod)"));
        assert!(m("app"));
        assert!(!m("!app"));
        assert!(m("!missing"));
        assert!(m("app=web, env in (prod), !legacy"));
        assert!(!m("app=web,env=dev"));
    }

    #[test]
    fn invalid_selectors_are_refused() {
        for bad in [
            "app=", "=x", "a in b", "a in (x", "a,,b", "a=b c", "-a=b", "a=-b",
        ] {
            if bad == "app=" {
                assert!(LabelSelector::parse(bad).is_ok(), "empty value is allowed");
                continue;
            }
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn structured_form() {
        let sel = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]},
                                 {"key": "legacy", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert!(sel.matches(Some(&labels(json!({"app": "web", "env": "prod"})))));
        assert!(!sel.matches(Some(&labels(
            json!({"app": "web", "env": "prod", "legacy": "1"})
        ))));
        assert!(!sel.matches(None));
        assert!(
            LabelSelector::from_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
            )
            .is_err()
        );
        assert!(LabelSelector::from_json(&json!({})).unwrap().matches(None));
    }

    proptest! {
        #[test]
        fn display_round_trips(keys in proptest::collection::vec("[a-z][a-z0-9]{0,8}", 1..4), vals in proptest::collection::vec("[a-z0-9]{1,6}", 1..3)) {
            let text = keys.iter().enumerate().map(|(i, k)| match i % 4 {
                0 => format!("{k}={}", vals[0]),
                1 => format!("{k} in ({})", vals.join(",")),
                2 => format!("!{k}"),
                _ => format!("{k} notin ({})", vals.join(",")),
            }).collect::<Vec<_>>().join(",");
            let parsed = LabelSelector::parse(&text).unwrap();
            let again = LabelSelector::parse(&parsed.to_string()).unwrap();
            prop_assert_eq!(parsed, again);
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = LabelSelector::parse(&text);
        }
    }
}
