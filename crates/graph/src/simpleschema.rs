//! kro's SimpleSchema (`name: string | required=true default="x"`) as the
//! OpenAPI v3 schema of the generated CRD.
//!
//! Types: `string`, `integer`, `boolean`, `float`, `object` (unvalidated),
//! `[]T`, `map[string]T`, nested mappings, and the names of custom `types`
//! (expanded inline; cycles refused). Markers, after the first `|`,
//! separated by spaces: `required`, `default`, `description`, `enum`,
//! `minimum`, `maximum`, `pattern`, `minLength`, `maxLength`, `minItems`,
//! `maxItems`, `uniqueItems` (a set list, as structural schemas forbid
//! `uniqueItems`), `listType`, `listMapKey`, `immutable` (a CEL transition
//! rule) and `printColumn`. Nested objects default to `{}` so the defaults
//! inside them apply.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

/// A printer column a `printColumn` marker asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintColumn {
    /// The column header.
    pub name: String,
    /// The OpenAPI type of the field.
    pub kind: String,
    /// `.spec.a.b`.
    pub json_path: String,
}

/// The OpenAPI schema of an instance's `spec`, and the printer columns its
/// markers declare.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecSchema {
    /// `{type: object, properties: …}`.
    pub openapi: Json,
    /// From `printColumn` markers.
    pub print_columns: Vec<PrintColumn>,
}

/// Converts `spec` (and the custom `types` it may use) to OpenAPI. Errors
/// name the field path (`spec.ingress.host`, `types.Port.port`).
pub fn spec_to_openapi(spec: &Json, types: Option<&Json>) -> Result<SpecSchema, String> {
    let mut converter = Converter {
        types: BTreeMap::new(),
        resolved: BTreeMap::new(),
        resolving: Vec::new(),
        print_columns: Vec::new(),
    };
    if let Some(types) = types {
        let Json::Object(types) = types else {
            return Err("types: must be a mapping of type names to definitions".to_string());
        };
        for (name, definition) in types {
            if is_builtin(name) {
                return Err(format!(
                    "types.{name}: a custom type cannot be named like a built-in type"
                ));
            }
            converter.types.insert(name.clone(), definition.clone());
        }
    }
    let openapi = match spec {
        Json::Object(fields) => converter.object(fields, "spec", Some(".spec"))?,
        Json::Null => json!({"type": "object"}),
        _ => return Err("spec: must be a mapping of field names to types".to_string()),
    };
    Ok(SpecSchema {
        openapi,
        print_columns: converter.print_columns,
    })
}

struct Converter {
    types: BTreeMap<String, Json>,
    resolved: BTreeMap<String, Json>,
    resolving: Vec<String>,
    print_columns: Vec<PrintColumn>,
}

impl Converter {
    /// A nested mapping of fields as an object schema. `json_path` is set
    /// when the object is reachable from `.spec` by plain field names (so
    /// printer columns can point into it).
    fn object(
        &mut self,
        fields: &Map<String, Json>,
        path: &str,
        json_path: Option<&str>,
    ) -> Result<Json, String> {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, definition) in fields {
            let field_path = format!("{path}.{name}");
            let child_json_path = json_path.map(|p| format!("{p}.{name}"));
            let (schema, is_required) =
                self.field(definition, &field_path, child_json_path.as_deref())?;
            if is_required {
                required.push(Json::String(name.clone()));
            }
            properties.insert(name.clone(), schema);
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Json::Object(properties));
        if !required.is_empty() {
            schema.insert("required".into(), Json::Array(required));
        }
        Ok(Json::Object(schema))
    }

    /// One field: a type string with markers, or a nested mapping.
    fn field(
        &mut self,
        definition: &Json,
        path: &str,
        json_path: Option<&str>,
    ) -> Result<(Json, bool), String> {
        match definition {
            Json::Object(fields) => {
                let mut schema = self.object(fields, path, json_path)?;
                if let Json::Object(s) = &mut schema {
                    s.insert("default".into(), json!({}));
                }
                Ok((schema, false))
            }
            Json::String(text) => self.typed_field(text, path, json_path),
            other => Err(format!(
                "{path}: expected a type (like `string | required=true`) or a mapping, found {other}"
            )),
        }
    }

    fn typed_field(
        &mut self,
        text: &str,
        path: &str,
        json_path: Option<&str>,
    ) -> Result<(Json, bool), String> {
        let (type_text, marker_text) = match text.split_once('|') {
            Some((t, m)) => (t.trim(), m),
            None => (text.trim(), ""),
        };
        let mut schema = self.type_schema(type_text, path)?;
        let markers = parse_markers(marker_text).map_err(|e| format!("{path}: {e}"))?;
        let mut required = false;
        for (key, value) in markers {
            match key.as_str() {
                "required" => required = parse_bool(&value, path, &key)?,
                "printColumn" => {
                    let Some(json_path) = json_path else {
                        return Err(format!(
                            "{path}: printColumn is only supported on fields reached by plain names from spec"
                        ));
                    };
                    self.print_columns.push(PrintColumn {
                        name: value,
                        kind: schema
                            .get("type")
                            .and_then(Json::as_str)
                            .unwrap_or("string")
                            .to_string(),
                        json_path: json_path.to_string(),
                    });
                }
                _ => apply_marker(&mut schema, &key, &value).map_err(|e| format!("{path}: {e}"))?,
            }
        }
        Ok((schema, required))
    }

    /// A type expression's schema.
    fn type_schema(&mut self, type_text: &str, path: &str) -> Result<Json, String> {
        if let Some(item) = type_text.strip_prefix("[]") {
            let items = self.type_schema(item.trim(), path)?;
            return Ok(json!({"type": "array", "items": items}));
        }
        if let Some(rest) = type_text.strip_prefix("map[") {
            let Some((key, value)) = rest.split_once(']') else {
                return Err(format!(
                    "{path}: malformed map type {type_text:?} (expected map[string]T)"
                ));
            };
            if key.trim() != "string" {
                return Err(format!(
                    "{path}: map keys must be strings, found map[{key}]"
                ));
            }
            let values = self.type_schema(value.trim(), path)?;
            return Ok(json!({"type": "object", "additionalProperties": values}));
        }
        Ok(match type_text {
            "string" => json!({"type": "string"}),
            "integer" => json!({"type": "integer"}),
            "boolean" => json!({"type": "boolean"}),
            "float" | "number" => json!({"type": "number"}),
            "object" => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            "" => return Err(format!("{path}: missing type")),
            name => self.custom_type(name, path)?,
        })
    }

    fn custom_type(&mut self, name: &str, path: &str) -> Result<Json, String> {
        if let Some(schema) = self.resolved.get(name) {
            return Ok(schema.clone());
        }
        let Some(definition) = self.types.get(name).cloned() else {
            return Err(format!(
                "{path}: unknown type {name:?} (not a built-in type and not in types)"
            ));
        };
        if let Some(start) = self.resolving.iter().position(|n| n == name) {
            let mut cycle = self.resolving[start..].to_vec();
            cycle.push(name.to_string());
            return Err(format!(
                "types: custom types refer to each other in a cycle: {}",
                cycle.join(" -> ")
            ));
        }
        self.resolving.push(name.to_string());
        // Printer columns inside a custom type would have one path per use;
        // they are only collected from the spec itself.
        let (schema, _) = self.field(&definition, &format!("types.{name}"), None)?;
        self.resolving.pop();
        self.resolved.insert(name.to_string(), schema.clone());
        Ok(schema)
    }
}

fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "string" | "integer" | "boolean" | "float" | "number" | "object"
    )
}

/// `key=value key="quoted value"` pairs; `|` between markers also separates.
fn parse_markers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut markers = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '|') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let key_start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        if i >= chars.len() || chars[i] != '=' {
            return Err(format!("marker {key:?} has no value (write {key}=…)"));
        }
        i += 1;
        let mut value = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => value.push(c),
                }
                i += 1;
            }
            if !closed {
                return Err(format!("marker {key}: unterminated quoted value"));
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                value.push(chars[i]);
                i += 1;
            }
        }
        markers.push((key, value));
    }
    Ok(markers)
}

fn parse_bool(value: &str, path: &str, key: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "{path}: {key} must be true or false, found {value:?}"
        )),
    }
}

/// A marker's value as a value of the field's type.
fn typed_value(schema: &Json, value: &str) -> Result<Json, String> {
    match schema.get("type").and_then(Json::as_str) {
        Some("string") => Ok(Json::String(value.to_string())),
        Some("integer") => value
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| format!("{value:?} is not an integer")),
        Some("number") => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| format!("{value:?} is not a number")),
        Some("boolean") => match value {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            _ => Err(format!("{value:?} is not a boolean")),
        },
        _ => serde_json::from_str(value).map_err(|_| format!("{value:?} is not a JSON value")),
    }
}

fn number(value: &str, key: &str) -> Result<Json, String> {
    if let Ok(i) = value.parse::<i64>() {
        return Ok(Json::from(i));
    }
    value
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Json::Number)
        .ok_or_else(|| format!("{key} must be a number, found {value:?}"))
}

fn count(value: &str, key: &str) -> Result<Json, String> {
    value
        .parse::<u64>()
        .map(Json::from)
        .map_err(|_| format!("{key} must be a non-negative integer, found {value:?}"))
}

fn apply_marker(schema: &mut Json, key: &str, value: &str) -> Result<(), String> {
    let typed = schema.clone();
    let Json::Object(s) = schema else {
        return Ok(());
    };
    match key {
        "default" => {
            s.insert(
                "default".into(),
                typed_value(&typed, value).map_err(|e| format!("default: {e}"))?,
            );
        }
        "description" => {
            s.insert("description".into(), Json::String(value.to_string()));
        }
        "enum" => {
            let values = value
                .split(',')
                .map(|v| typed_value(&typed, v.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("enum: {e}"))?;
            s.insert("enum".into(), Json::Array(values));
        }
        "minimum" | "maximum" => {
            s.insert(key.into(), number(value, key)?);
        }
        "minLength" | "maxLength" | "minItems" | "maxItems" => {
            s.insert(key.into(), count(value, key)?);
        }
        "pattern" => {
            regex::Regex::new(value)
                .map_err(|e| format!("pattern {value:?} is not a valid regular expression: {e}"))?;
            s.insert("pattern".into(), Json::String(value.to_string()));
        }
        "uniqueItems" => {
            if parse_bool(value, "", key)? {
                s.insert("x-kubernetes-list-type".into(), json!("set"));
            }
        }
        "listType" => {
            if !matches!(value, "atomic" | "set" | "map") {
                return Err(format!(
                    "listType must be atomic, set or map, found {value:?}"
                ));
            }
            s.insert(
                "x-kubernetes-list-type".into(),
                Json::String(value.to_string()),
            );
        }
        "listMapKey" => {
            s.insert("x-kubernetes-list-map-keys".into(), json!([value]));
        }
        "immutable" => {
            if parse_bool(value, "", key)? {
                s.insert(
                    "x-kubernetes-validations".into(),
                    json!([{"rule": "self == oldSelf", "message": "field is immutable"}]),
                );
            }
        }
        other => return Err(format!("unknown marker {other:?}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(spec: Json, types: Option<Json>) -> Result<SpecSchema, String> {
        spec_to_openapi(&spec, types.as_ref())
    }

    #[test]
    fn every_marker() {
        let schema = convert(
            json!({
                "name": "string | required=true description=\"The name\" pattern=\"^[a-z]+$\" minLength=1 maxLength=20 immutable=true",
                "replicas": "integer | default=2 minimum=1 maximum=10 printColumn=REPLICAS",
                "mode": "string | enum=\"a,b\" default=a",
                "ratio": "float | default=0.5",
                "tags": "[]string | uniqueItems=true minItems=1 maxItems=3",
                "ports": "[]Port | listType=map listMapKey=name",
                "labels": "map[string]string",
                "values": "object",
                "ingress": {"enabled": "boolean | default=false"}
            }),
            Some(json!({"Port": {"name": "string | required=true", "port": "integer"}})),
        )
        .unwrap();
        let p = &schema.openapi["properties"];
        assert_eq!(schema.openapi["required"], json!(["name"]));
        assert_eq!(p["name"]["pattern"], json!("^[a-z]+$"));
        assert_eq!(
            p["name"]["x-kubernetes-validations"][0]["rule"],
            json!("self == oldSelf")
        );
        assert_eq!(
            p["replicas"],
            json!({"type": "integer", "default": 2, "minimum": 1, "maximum": 10})
        );
        assert_eq!(p["mode"]["enum"], json!(["a", "b"]));
        assert_eq!(p["ratio"]["default"], json!(0.5));
        assert_eq!(p["tags"]["x-kubernetes-list-type"], json!("set"));
        assert_eq!(p["tags"]["items"], json!({"type": "string"}));
        assert_eq!(p["ports"]["items"]["required"], json!(["name"]));
        assert_eq!(p["ports"]["x-kubernetes-list-map-keys"], json!(["name"]));
        assert_eq!(
            p["labels"]["additionalProperties"],
            json!({"type": "string"})
        );
        assert_eq!(
            p["values"]["x-kubernetes-preserve-unknown-fields"],
            json!(true)
        );
        assert_eq!(p["ingress"]["default"], json!({}));
        assert_eq!(
            schema.print_columns,
            vec![PrintColumn {
                name: "REPLICAS".into(),
                kind: "integer".into(),
                json_path: ".spec.replicas".into()
            }]
        );
    }

    #[test]
    fn nested_types_and_cycles() {
        let ok = convert(
            json!({"ceo": "Employee"}),
            Some(json!({"Address": {"city": "string"}, "Company": {"hq": "Address"}, "Employee": {"company": "Company"}})),
        )
        .unwrap();
        assert_eq!(
            ok.openapi["properties"]["ceo"]["properties"]["company"]["properties"]["hq"]["properties"]
                ["city"],
            json!({"type": "string"})
        );
        let cycle = convert(
            json!({"p": "Person"}),
            Some(json!({"Person": {"employer": "Company"}, "Company": {"staff": "[]Person"}})),
        )
        .unwrap_err();
        assert!(cycle.contains("Person -> Company -> Person"), "{cycle}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"a": "strin"}), "spec.a: unknown type \"strin\""),
            (
                json!({"a": "integer | default=x"}),
                "spec.a: default: \"x\" is not an integer",
            ),
            (
                json!({"a": "string | bogus=1"}),
                "spec.a: unknown marker \"bogus\"",
            ),
            (
                json!({"a": "string | pattern=\"(\""}),
                "not a valid regular expression",
            ),
            (json!({"a": "map[int]string"}), "map keys must be strings"),
            (json!({"b": {"c": 3}}), "spec.b.c: expected a type"),
            (json!({"a": "string | required"}), "has no value"),
        ];
        for (spec, expected) in cases {
            let error = convert(spec.clone(), None).unwrap_err();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }

    #[test]
    fn markers_with_quotes_and_pipes() {
        let markers = parse_markers(" pattern=\"a|b c\" | default=\"x\\\"y\" minimum=1").unwrap();
        assert_eq!(
            markers,
            vec![
                ("pattern".to_string(), "a|b c".to_string()),
                ("default".to_string(), "x\"y".to_string()),
                ("minimum".to_string(), "1".to_string())
            ]
        );
    }
}
