//! kro's SimpleSchema (`name: string | required=true default="x"`) as the
//! OpenAPI v3 schema of the generated CRD, parsed and converted as kro's
//! `pkg/simpleschema` does.
//!
//! Types: `string`, `integer`, `boolean`, `float` (OpenAPI `number`),
//! `object` (unvalidated), `[]T`, `map[string]T`, nested mappings, and the
//! names of custom `types` (a mapping of fields, or an alias such as
//! `Port: integer | minimum=1`; cycles refused). Markers follow the first
//! `|` as `key=value`, separated by spaces outside quotes and brackets:
//! `required`, `default`, `description`, `enum`, `minimum`, `maximum`,
//! `pattern`, `minLength`, `maxLength`, `minItems`, `maxItems`,
//! `uniqueItems` (a set list), `listType`, `listMapKey`, `immutable` and
//! `validation` (CEL rules). A nested mapping defaults to `{}` when a field
//! inside it has a default and none is required, so its defaults apply.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

/// The OpenAPI schema of an instance's `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecSchema {
    /// `{type: object, properties: …}`.
    pub openapi: Json,
}

/// Converts `spec` (and the custom `types` it may use) to OpenAPI. Errors
/// name the field path (`spec.ingress.host`, `types.Port.port`).
pub fn spec_to_openapi(spec: &Json, types: Option<&Json>) -> Result<SpecSchema, String> {
    let mut converter = Converter::default();
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
        Json::Object(fields) => converter.object(fields, "spec")?,
        Json::Null => json!({"type": "object"}),
        _ => return Err("spec: must be a mapping of field names to types".to_string()),
    };
    Ok(SpecSchema { openapi })
}

/// A custom type, converted: its schema, and whether a field of this type
/// is required (an alias written `T: string | required=true`).
#[derive(Clone)]
struct CustomType {
    schema: Json,
    required: bool,
}

#[derive(Default)]
struct Converter {
    types: BTreeMap<String, Json>,
    resolved: BTreeMap<String, CustomType>,
    resolving: Vec<String>,
}

impl Converter {
    /// A nested mapping of fields as an object schema: `required` sorted, and
    /// `default: {}` when a field has a default and none is required.
    fn object(&mut self, fields: &Map<String, Json>, path: &str) -> Result<Json, String> {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, definition) in fields {
            let field_path = format!("{path}.{name}");
            let (schema, is_required) = self.field(definition, &field_path)?;
            if is_required {
                required.push(name.clone());
            }
            properties.insert(name.clone(), schema);
        }
        let child_has_default = properties.values().any(|p| p.get("default").is_some());
        required.sort();
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        if !properties.is_empty() {
            schema.insert("properties".into(), Json::Object(properties));
        }
        if required.is_empty() {
            if child_has_default {
                schema.insert("default".into(), json!({}));
            }
        } else {
            schema.insert("required".into(), json!(required));
        }
        Ok(Json::Object(schema))
    }

    /// One field: a type string with markers, or a nested mapping.
    fn field(&mut self, definition: &Json, path: &str) -> Result<(Json, bool), String> {
        match definition {
            Json::Object(fields) => Ok((self.object(fields, path)?, false)),
            Json::String(text) => self.typed_field(text, path),
            other => Err(format!(
                "{path}: expected a type (like `string | required=true`) or a mapping, found {other}"
            )),
        }
    }

    fn typed_field(&mut self, text: &str, path: &str) -> Result<(Json, bool), String> {
        let (type_text, marker_text) = match text.split_once('|') {
            Some((t, m)) => (t.trim(), Some(m)),
            None => (text.trim(), None),
        };
        let (mut schema, mut required) = self.type_schema(type_text, path)?;
        if let Some(marker_text) = marker_text {
            let markers = parse_markers(marker_text).map_err(|e| format!("{path}: {e}"))?;
            for (key, value) in markers {
                if key == "required" {
                    required |= parse_bool(&value).ok_or_else(|| {
                        format!("{path}: required must be true or false, found {value:?}")
                    })?;
                } else {
                    apply_marker(&mut schema, &key, &value).map_err(|e| format!("{path}: {e}"))?;
                }
            }
            check_list_map_keys(&schema).map_err(|e| format!("{path}: {e}"))?;
        }
        Ok((schema, required))
    }

    /// A type expression's schema, and whether a custom type makes it
    /// required.
    fn type_schema(&mut self, type_text: &str, path: &str) -> Result<(Json, bool), String> {
        if let Some(item) = type_text.strip_prefix("[]") {
            if item.trim().is_empty() {
                return Err(format!("{path}: empty slice element type"));
            }
            let (items, _) = self.type_schema(item.trim(), path)?;
            return Ok((json!({"type": "array", "items": items}), false));
        }
        if type_text.starts_with("map[") {
            let Some(value) = type_text.strip_prefix("map[string]") else {
                return Err(format!(
                    "{path}: map key must be string, found {type_text:?}"
                ));
            };
            if value.trim().is_empty() {
                return Err(format!("{path}: map value type is required"));
            }
            let (values, _) = self.type_schema(value.trim(), path)?;
            return Ok((
                json!({"type": "object", "additionalProperties": values}),
                false,
            ));
        }
        let atomic = match type_text {
            "string" => json!({"type": "string"}),
            "integer" => json!({"type": "integer"}),
            "boolean" => json!({"type": "boolean"}),
            "float" => json!({"type": "number"}),
            "object" => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            "" => return Err(format!("{path}: empty type")),
            name => {
                let custom = self.custom_type(name, path)?;
                return Ok((custom.schema, custom.required));
            }
        };
        Ok((atomic, false))
    }

    fn custom_type(&mut self, name: &str, path: &str) -> Result<CustomType, String> {
        if let Some(custom) = self.resolved.get(name) {
            return Ok(custom.clone());
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
        let (schema, required) = self.field(&definition, &format!("types.{name}"))?;
        self.resolving.pop();
        let custom = CustomType { schema, required };
        self.resolved.insert(name.to_string(), custom.clone());
        Ok(custom)
    }
}

fn is_builtin(name: &str) -> bool {
    matches!(name, "string" | "integer" | "boolean" | "float" | "object")
}

/// `key=value` markers as kro reads them: a key ends at `=`; a value ends
/// at whitespace outside double quotes and outside `{…}`/`[…]`; a quoted
/// value loses its quotes and its `\"` and `\\` escapes; text after a value
/// that never reaches `=` is an error, as is an unknown key.
fn parse_markers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut markers = Vec::new();
    let mut key: Option<String> = None;
    let mut buffer = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut brackets: i32 = 0;
    for c in text.chars() {
        match c {
            '=' if key.is_none() && !in_quotes && brackets == 0 => {
                let name = buffer.trim().to_string();
                if name.is_empty() {
                    return Err("empty marker key".to_string());
                }
                if !MARKERS.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown marker {name:?} (kro knows {})",
                        MARKERS.join(", ")
                    ));
                }
                key = Some(name);
                buffer.clear();
            }
            '"' if !escaped => {
                in_quotes = !in_quotes;
                buffer.push(c);
            }
            '\\' if in_quotes && !escaped => {
                escaped = true;
                buffer.push(c);
            }
            '{' | '[' if !in_quotes => {
                brackets += 1;
                buffer.push(c);
            }
            '}' | ']' if !in_quotes => {
                brackets -= 1;
                buffer.push(c);
                if brackets < 0 {
                    return Err("unmatched closing bracket/brace".to_string());
                }
            }
            c if c.is_whitespace() && !in_quotes && brackets == 0 => {
                if let Some(name) = key.take() {
                    markers.push((name, marker_value(&buffer)));
                    buffer.clear();
                }
            }
            c => {
                if escaped && in_quotes {
                    escaped = false;
                }
                buffer.push(c);
            }
        }
    }
    match key {
        Some(name) => markers.push((name, marker_value(&buffer))),
        None => {
            return Err(format!(
                "marker key {:?} without a value (markers are key=value; a value with spaces needs double quotes)",
                buffer
            ));
        }
    }
    if in_quotes {
        return Err("unclosed quote".to_string());
    }
    if brackets > 0 {
        return Err("unclosed bracket/brace".to_string());
    }
    Ok(markers)
}

/// The markers kro knows.
const MARKERS: &[&str] = &[
    "required",
    "default",
    "description",
    "minimum",
    "maximum",
    "validation",
    "enum",
    "immutable",
    "pattern",
    "uniqueItems",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "listType",
    "listMapKey",
];

/// A quoted value without its quotes and escapes; others trimmed.
fn marker_value(raw: &str) -> String {
    let Some(inner) = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| raw.len() >= 2)
    else {
        return raw.trim().to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            if c != '"' && c != '\\' {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// A boolean as Go's `strconv.ParseBool` reads it.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_int(value: &str, what: &str) -> Result<i64, String> {
    value
        .parse::<i64>()
        .map_err(|_| format!("{what} must be an integer, found {value:?}"))
}

/// A number as JSON: an integer where it is one (as Go prints a float64).
fn float_json(value: &str, what: &str) -> Result<Json, String> {
    let f: f64 = value
        .parse()
        .map_err(|_| format!("{what} must be a number, found {value:?}"))?;
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Ok(Json::from(f as i64));
    }
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| format!("{what} must be a finite number, found {value:?}"))
}

/// A `default=` value for a field of this type, as kro writes it into the
/// CRD: strings as they are, numbers and booleans checked, anything else
/// read as JSON (`default={}`, `default=["a"]`).
fn default_value(type_name: &str, value: &str) -> Result<Json, String> {
    match type_name {
        "string" => Ok(Json::String(value.to_string())),
        "integer" => parse_int(value, "default value").map(Json::from),
        "number" => float_json(value, "default value"),
        "boolean" => parse_bool(value)
            .map(Json::Bool)
            .ok_or_else(|| format!("default value must be a valid boolean, got: {value}")),
        _ => serde_json::from_str(value)
            .map_err(|_| format!("default value {value:?} is not valid JSON")),
    }
}

fn enum_values(type_name: &str, value: &str) -> Result<Json, String> {
    let mut values = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("empty enum values are not allowed".to_string());
        }
        values.push(match type_name {
            "string" => Json::String(item.to_string()),
            "integer" => Json::from(parse_int(item, "an enum value")?),
            other => {
                return Err(format!(
                    "enum values only supported for string and integer types, got type: {other}"
                ));
            }
        });
    }
    Ok(Json::Array(values))
}

/// Refuses a marker on a type it does not apply to.
fn only_for(type_name: &str, wanted: &str, key: &str) -> Result<(), String> {
    if type_name == wanted {
        return Ok(());
    }
    Err(format!(
        "{key} marker is only valid for {wanted} types, got type: {type_name}"
    ))
}

fn add_validation(schema: &mut Map<String, Json>, rule: &str, message: &str) {
    let rules = schema
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Json::Array(rules) = rules {
        rules.push(json!({"rule": rule, "message": message}));
    }
}

fn set_list_type(schema: &mut Map<String, Json>, list_type: &str) -> Result<(), String> {
    match schema.get("x-kubernetes-list-type").and_then(Json::as_str) {
        Some(existing) if existing != list_type => Err(format!(
            "listType attempting to overwrite set type of {existing}, this can happen if you set contradictory markers like uniqueItems=true listType=map"
        )),
        _ => {
            schema.insert("x-kubernetes-list-type".into(), json!(list_type));
            Ok(())
        }
    }
}

fn apply_marker(schema: &mut Json, key: &str, value: &str) -> Result<(), String> {
    let type_name = schema
        .get("type")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let Json::Object(s) = schema else {
        return Ok(());
    };
    match key {
        "default" => {
            s.insert("default".into(), default_value(&type_name, value)?);
        }
        "description" => {
            s.insert("description".into(), json!(value));
        }
        "enum" => {
            s.insert("enum".into(), enum_values(&type_name, value)?);
        }
        "minimum" | "maximum" => {
            s.insert(key.into(), float_json(value, key)?);
        }
        "minLength" | "maxLength" => {
            only_for(&type_name, "string", key)?;
            s.insert(key.into(), json!(parse_int(value, key)?));
        }
        "minItems" | "maxItems" => {
            only_for(&type_name, "array", key)?;
            s.insert(key.into(), json!(parse_int(value, key)?));
        }
        "pattern" => {
            if value.is_empty() {
                return Err("pattern marker value cannot be empty".to_string());
            }
            only_for(&type_name, "string", key)?;
            regex::Regex::new(value)
                .map_err(|e| format!("invalid pattern regex {value:?}: {e}"))?;
            s.insert("pattern".into(), json!(value));
        }
        "uniqueItems" => {
            let unique = parse_bool(value)
                .ok_or_else(|| format!("uniqueItems must be true or false, found {value:?}"))?;
            only_for(&type_name, "array", key)?;
            if unique {
                if let Some(existing) = s
                    .get("x-kubernetes-list-type")
                    .and_then(Json::as_str)
                    .filter(|t| *t != "set")
                {
                    return Err(format!(
                        "cannot set uniqueItems when listType is set to {existing}"
                    ));
                }
                set_list_type(s, "set")?;
            }
        }
        "listType" => {
            only_for(&type_name, "array", key)?;
            if !matches!(value, "atomic" | "set" | "map") {
                return Err(format!(
                    "unsupported value for listType {value}, needs to be one of atomic, set, or map"
                ));
            }
            set_list_type(s, value)?;
        }
        "listMapKey" => {
            only_for(&type_name, "array", key)?;
            let keys = s
                .entry("x-kubernetes-list-map-keys")
                .or_insert_with(|| json!([]));
            if let Json::Array(keys) = keys {
                if keys.iter().any(|k| k == value) {
                    return Err(format!("duplicate listMapKey marker, value {value}"));
                }
                keys.push(json!(value));
            }
        }
        "immutable" => {
            let immutable = parse_bool(value)
                .ok_or_else(|| format!("immutable must be true or false, found {value:?}"))?;
            if immutable {
                add_validation(s, "self == oldSelf", "field is immutable");
            }
        }
        "validation" => {
            if value.trim().is_empty() {
                return Err("validation marker needs a CEL rule".to_string());
            }
            add_validation(s, value, "validation failed");
        }
        other => return Err(format!("unknown marker {other:?}")),
    }
    Ok(())
}

/// `listMapKey` needs `listType=map`.
fn check_list_map_keys(schema: &Json) -> Result<(), String> {
    if schema.get("x-kubernetes-list-map-keys").is_none() {
        return Ok(());
    }
    match schema.get("x-kubernetes-list-type").and_then(Json::as_str) {
        Some("map") => Ok(()),
        None => {
            Err("listMapKey set while listType is unset, listType must be set to map".to_string())
        }
        Some(other) => Err(format!(
            "listMapKey set while listType is set to {other}, listType must be set to map"
        )),
    }
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
                "replicas": "integer | default=2 minimum=1 maximum=10",
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
                "spec.a: default value must be an integer, found \"x\"",
            ),
            (
                json!({"a": "string | bogus=1"}),
                "spec.a: unknown marker \"bogus\"",
            ),
            (
                json!({"a": "string | pattern=\"(\""}),
                "invalid pattern regex",
            ),
            (json!({"a": "map[int]string"}), "map key must be string"),
            (json!({"b": {"c": 3}}), "spec.b.c: expected a type"),
            (json!({"a": "string | required"}), "without a value"),
            (
                json!({"a": "string | default=two words"}),
                "marker key \"words\" without a value",
            ),
            (
                json!({"a": "integer | minLength=1"}),
                "only valid for string types",
            ),
            (json!({"a": "string | pattern=\"x"}), "unclosed quote"),
            (
                json!({"a": "[]string | listMapKey=k"}),
                "listMapKey set while listType is unset",
            ),
        ];
        for (spec, expected) in cases {
            let error = convert(spec.clone(), None).unwrap_err();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }

    #[test]
    fn markers_as_kro_reads_them() {
        let markers = parse_markers(
            " pattern=\"a|b c\" default=\"x\\\"y\\n\" minimum=1 validation=\"self.size() > 1\" default={\"a\": [1, 2]}",
        )
        .unwrap();
        assert_eq!(
            markers,
            vec![
                ("pattern".to_string(), "a|b c".to_string()),
                ("default".to_string(), "x\"y\\n".to_string()),
                ("minimum".to_string(), "1".to_string()),
                ("validation".to_string(), "self.size() > 1".to_string()),
                ("default".to_string(), "{\"a\": [1, 2]}".to_string()),
            ]
        );
        assert!(parse_markers("description=a b").is_err());
        assert!(
            parse_markers("printColumn=X")
                .unwrap_err()
                .contains("unknown marker")
        );
    }

    #[test]
    fn validation_and_immutable_markers_are_cel_rules() {
        let schema = convert(
            json!({"replicas": "integer | validation=\"self >= 1\" immutable=true"}),
            None,
        )
        .unwrap();
        assert_eq!(
            schema.openapi["properties"]["replicas"]["x-kubernetes-validations"],
            json!([
                {"rule": "self >= 1", "message": "validation failed"},
                {"rule": "self == oldSelf", "message": "field is immutable"}
            ])
        );
    }

    #[test]
    fn nested_defaults_and_required_as_kro_writes_them() {
        let schema = convert(
            json!({
                "withDefault": {"a": "string | default=x"},
                "withRequired": {"b": "string | required=true default=y", "a": "string | required=true"},
                "plain": {"c": "string"},
                "port": "Port",
            }),
            Some(json!({"Port": "integer | required=true minimum=1"})),
        )
        .unwrap();
        let p = &schema.openapi["properties"];
        assert_eq!(p["withDefault"]["default"], json!({}));
        assert!(p["withRequired"].get("default").is_none());
        assert_eq!(p["withRequired"]["required"], json!(["a", "b"]));
        assert!(p["plain"].get("default").is_none());
        assert_eq!(p["port"], json!({"type": "integer", "minimum": 1}));
        assert_eq!(schema.openapi["required"], json!(["port"]));
    }
}
