//! Defaulting and validating an instance's `spec` against the schema that
//! SimpleSchema produced, as the API server does for the generated CRD
//! (so offline expansion refuses what the cluster would refuse). Policy
//! checks Gatekeeper constraints' parameters with it too.

use serde_json::Value as Json;

/// Fills in defaults, outermost first: an absent field with a `default` gets
/// it, then the defaults inside it apply (so `ingress: {}` defaults fill
/// `ingress.enabled`).
pub fn apply_defaults(value: &mut Json, schema: &Json) {
    match value {
        Json::Object(fields) => {
            if let Some(Json::Object(properties)) = schema.get("properties") {
                for (name, property) in properties {
                    if !fields.contains_key(name)
                        && let Some(default) = property.get("default")
                    {
                        fields.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = fields.get_mut(name) {
                        apply_defaults(child, property);
                    }
                }
            }
            if let Some(values) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for child in fields.values_mut() {
                    apply_defaults(child, values);
                }
            }
        }
        Json::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Every way `value` breaks `schema`, each with its path (`spec.ports[1]`).
pub fn validate(value: &Json, schema: &Json, path: &str, problems: &mut Vec<String>) {
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    if let Some(expected) = schema.get("type").and_then(Json::as_str)
        && !has_type(value, expected)
    {
        problems.push(format!(
            "{path}: must be of type {expected}, found {}",
            describe(value)
        ));
        return;
    }
    if let Some(Json::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Json::to_string).collect();
        problems.push(format!(
            "{path}: must be one of {}, found {value}",
            list.join(", ")
        ));
    }
    validate_rules(value, schema, path, problems);
    match value {
        Json::Number(n) => validate_number(n.as_f64().unwrap_or(0.0), schema, path, problems),
        Json::String(s) => validate_string(s, schema, path, problems),
        Json::Array(items) => {
            validate_array(items, schema, path, problems);
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item, item_schema, &format!("{path}[{i}]"), problems);
                }
            }
        }
        Json::Object(fields) => {
            if let Some(Json::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Json::as_str) {
                    if !fields.contains_key(name) {
                        problems.push(format!("{path}.{name}: required"));
                    }
                }
            }
            let properties = schema.get("properties").and_then(Json::as_object);
            let values = schema.get("additionalProperties").filter(|s| s.is_object());
            for (name, child) in fields {
                let child_path = format!("{path}.{name}");
                match (properties.and_then(|p| p.get(name)), values) {
                    (Some(property), _) => validate(child, property, &child_path, problems),
                    (None, Some(values)) => validate(child, values, &child_path, problems),
                    (None, None) if properties.is_some() && !preserve => {
                        problems.push(format!("{child_path}: unknown field (not in the schema)"))
                    }
                    (None, None) => {}
                }
            }
        }
        _ => {}
    }
}

/// The environment CRD validation rules compile in (the API server's: no
/// kro functions), shared so each rule compiles once per process.
fn rules_env() -> &'static gitplane_cel::Env {
    static ENV: std::sync::OnceLock<gitplane_cel::Env> = std::sync::OnceLock::new();
    ENV.get_or_init(gitplane_cel::Env::default)
}

/// The schema's `x-kubernetes-validations` CEL rules with `self` as the
/// value. Transition rules (those reading `oldSelf`, like `immutable=true`)
/// judge an update, so they do not apply to an instance on its own, as on
/// create.
fn validate_rules(value: &Json, schema: &Json, path: &str, problems: &mut Vec<String>) {
    let Some(Json::Array(rules)) = schema.get("x-kubernetes-validations") else {
        return;
    };
    for rule in rules {
        let Some(source) = rule.get("rule").and_then(Json::as_str) else {
            continue;
        };
        let message = rule
            .get("message")
            .and_then(Json::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("failed rule: {source}"));
        let program = match rules_env().compile(source) {
            Ok(program) => program,
            Err(e) => {
                problems.push(format!("{path}: the rule `{source}` does not compile: {e}"));
                continue;
            }
        };
        if program.variables().iter().any(|v| v == "oldSelf") {
            continue;
        }
        let activation = gitplane_cel::Activation::new().with_json("self", value);
        match program.evaluate_json(&activation) {
            Ok(Json::Bool(true)) => {}
            Ok(Json::Bool(false)) => problems.push(format!("{path}: Invalid value: {message}")),
            Ok(other) => problems.push(format!(
                "{path}: the rule `{source}` returned {other}, not a boolean"
            )),
            Err(e) => problems.push(format!("{path}: the rule `{source}` failed: {e}")),
        }
    }
}

fn validate_number(n: f64, schema: &Json, path: &str, problems: &mut Vec<String>) {
    if let Some(min) = schema.get("minimum").and_then(Json::as_f64)
        && n < min
    {
        problems.push(format!("{path}: must be at least {min}, found {n}"));
    }
    if let Some(max) = schema.get("maximum").and_then(Json::as_f64)
        && n > max
    {
        problems.push(format!("{path}: must be at most {max}, found {n}"));
    }
}

fn validate_string(s: &str, schema: &Json, path: &str, problems: &mut Vec<String>) {
    let length = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Json::as_u64)
        && length < min
    {
        problems.push(format!("{path}: must be at least {min} characters long"));
    }
    if let Some(max) = schema.get("maxLength").and_then(Json::as_u64)
        && length > max
    {
        problems.push(format!("{path}: must be at most {max} characters long"));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Json::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => problems.push(format!(
                "{path}: {s:?} does not match the pattern {pattern:?}"
            )),
            Ok(_) => {}
            Err(_) => problems.push(format!(
                "{path}: the schema's pattern {pattern:?} is invalid"
            )),
        }
    }
}

fn validate_array(items: &[Json], schema: &Json, path: &str, problems: &mut Vec<String>) {
    let len = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Json::as_u64)
        && len < min
    {
        problems.push(format!(
            "{path}: must have at least {min} items, found {len}"
        ));
    }
    if let Some(max) = schema.get("maxItems").and_then(Json::as_u64)
        && len > max
    {
        problems.push(format!(
            "{path}: must have at most {max} items, found {len}"
        ));
    }
    match schema.get("x-kubernetes-list-type").and_then(Json::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    problems.push(format!(
                        "{path}[{i}]: duplicate value {item} (items must be unique)"
                    ));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Json::as_array)
                .map(|k| k.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                let key: Vec<Option<&Json>> = keys.iter().map(|k| item.get(*k)).collect();
                if items[..i]
                    .iter()
                    .any(|other| keys.iter().map(|k| other.get(*k)).collect::<Vec<_>>() == key)
                {
                    problems.push(format!(
                        "{path}[{i}]: duplicate entry for the key {}",
                        keys.join(",")
                    ));
                }
            }
        }
        _ => {}
    }
}

fn has_type(value: &Json, expected: &str) -> bool {
    match expected {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

fn describe(value: &Json) -> String {
    match value {
        Json::Null => "null".to_string(),
        Json::Bool(b) => format!("boolean {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) => format!("string {s:?}"),
        Json::Array(_) => "a list".to_string(),
        Json::Object(_) => "a mapping".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simpleschema::spec_to_openapi;
    use serde_json::json;

    fn schema() -> Json {
        spec_to_openapi(
            &json!({
                "name": "string | required=true pattern=\"^[a-z]+$\" immutable=true",
                "port": "integer | default=80 validation=\"self != 22\"",
                "replicas": "integer | default=2 minimum=1 maximum=5",
                "mode": "string | enum=\"a,b\" default=a",
                "tags": "[]string | uniqueItems=true maxItems=2",
                "ingress": {"enabled": "boolean | default=false", "host": "string | default=example.com"},
                "extra": "object"
            }),
            None,
        )
        .unwrap()
        .openapi
    }

    #[test]
    fn defaults_fill_nested_objects() {
        let mut spec = json!({"name": "shop"});
        apply_defaults(&mut spec, &schema());
        assert_eq!(
            spec,
            json!({"name": "shop", "port": 80, "replicas": 2, "mode": "a", "ingress": {"enabled": false, "host": "example.com"}})
        );
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let spec = json!({"name": "Shop", "port": 22, "replicas": 9, "mode": "c", "tags": ["x", "x", "y"], "bogus": 1, "ingress": {"enabled": "yes"}, "extra": {"any": [1]}});
        let mut problems = Vec::new();
        validate(&spec, &schema(), "spec", &mut problems);
        let text = problems.join("\n");
        for expected in [
            "spec.name: \"Shop\" does not match the pattern",
            "spec.replicas: must be at most 5",
            "spec.mode: must be one of \"a\", \"b\"",
            "spec.tags: must have at most 2 items",
            "spec.tags[1]: duplicate value",
            "spec.bogus: unknown field",
            "spec.ingress.enabled: must be of type boolean",
            "spec.port: Invalid value: validation failed",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("extra"), "{text}");
        let mut missing = Vec::new();
        validate(&json!({}), &schema(), "spec", &mut missing);
        assert_eq!(missing, vec!["spec.name: required".to_string()]);
    }
}
