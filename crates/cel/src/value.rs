//! JSON ↔ CEL values, the way Kubernetes maps them: JSON integers are CEL
//! `int` (`uint` only past `i64::MAX`), other numbers `double`, objects are
//! maps with string keys.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::Value;
use kube_cel::cel::objects::{Key, Map, OptionalValue};
use serde_json::Value as Json;

use crate::CelError;

/// A JSON value as a CEL value.
pub fn from_json(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        Json::Object(fields) => {
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json(v)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// A CEL map with string keys, from its entries (values keep their CEL
/// types: a duration stays a duration).
pub fn string_map(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    let map: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k)), v))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

/// A CEL value as JSON. Map keys come out sorted (as Go's `encoding/json`
/// writes maps), an empty optional is `null`, bytes are base64, timestamps
/// RFC 3339 and durations Go-style seconds (`"90s"`). Map entries and list
/// elements that are kro's `omit()` are left out; `omit()` itself is not
/// JSON.
pub fn to_json(value: &Value) -> Result<Json, CelError> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| CelError::NotJson(format!("{f} is not a JSON number")))?,
        Value::String(s) => Json::String(s.to_string()),
        Value::Bytes(b) => Json::String(base64_encode(b)),
        Value::List(items) => Json::Array(
            items
                .iter()
                .filter(|v| !crate::kro::is_omit(v))
                .map(to_json)
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(map) => map_to_json(map)?,
        Value::Timestamp(t) => Json::String(t.to_rfc3339()),
        Value::Duration(d) => Json::String(format!("{}s", d.num_seconds())),
        Value::Opaque(opaque) => match opaque.downcast_ref::<OptionalValue>() {
            Some(optional) => match optional.value() {
                Some(inner) => to_json(inner)?,
                None => Json::Null,
            },
            None if crate::kro::is_omit(value) => {
                return Err(CelError::NotJson(
                    "omit() (it removes the field it is written to, and cannot be part of a value)"
                        .to_string(),
                ));
            }
            None => return Err(CelError::NotJson("an opaque value".to_string())),
        },
        Value::Function(name, _) => {
            return Err(CelError::NotJson(format!("function {name}")));
        }
    })
}

fn map_to_json(map: &Map) -> Result<Json, CelError> {
    let mut entries: Vec<(String, &Value)> = Vec::with_capacity(map.map.len());
    for (key, value) in map.map.iter().filter(|(_, v)| !crate::kro::is_omit(v)) {
        let key = match key {
            Key::String(s) => s.to_string(),
            Key::Int(i) => i.to_string(),
            Key::Uint(u) => u.to_string(),
            Key::Bool(b) => b.to_string(),
        };
        entries.push((key, value));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = serde_json::Map::with_capacity(entries.len());
    for (key, value) in entries {
        out.insert(key, to_json(value)?);
    }
    Ok(Json::Object(out))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips() {
        let input = json!({"b": [1, 2.5, "x", null, true], "a": {"n": -3}});
        let back = to_json(&from_json(&input)).unwrap();
        assert_eq!(
            back,
            json!({"a": {"n": -3}, "b": [1, 2.5, "x", null, true]})
        );
    }

    #[test]
    fn bytes_are_base64() {
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_encode(b"hi!"), "aGkh");
        assert_eq!(base64_encode(b"a"), "YQ==");
    }

    #[test]
    fn nan_is_not_json() {
        assert!(to_json(&Value::Float(f64::NAN)).is_err());
    }
}
