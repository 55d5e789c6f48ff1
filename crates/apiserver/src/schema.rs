//! Checking objects against their type's schema.
//!
//! Built-in types use the upstream OpenAPI schema (JSON Schema with `$defs`):
//! fields it does not declare are unknown — an error with
//! `fieldValidation=Strict`, a warning with `Warn`, and in every case dropped, as
//! the real server's decoding drops them — and values of the wrong type are
//! errors. Custom resources use their CRD's structural schema: unknown fields
//! are pruned (unless `x-kubernetes-preserve-unknown-fields`), `null` is dropped
//! where not `nullable`, `default`s are filled in, and `required`, `enum`,
//! bounds, lengths, item counts and `pattern` are enforced.

use serde_json::{Map, Value};

/// What checking found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Findings {
    /// Paths of unknown fields (already removed from the object).
    pub unknown: Vec<String>,
    /// Field paths and what is wrong with them.
    pub invalid: Vec<(String, String)>,
}

/// Which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// A built-in type: unknown fields and value types.
    BuiltIn,
    /// A custom resource's structural schema: pruning, defaults and constraints.
    Structural,
}

/// Checks (and prunes, and for structural schemas defaults) `object`.
pub fn check(schema: &Value, object: &mut Value, rules: Rules) -> Findings {
    let mut findings = Findings::default();
    let walker = Walker {
        root: schema,
        rules,
    };
    walker.walk(schema, object, &mut String::new(), &mut findings, 0);
    findings
}

struct Walker<'a> {
    root: &'a Value,
    rules: Rules,
}

const MAX_DEPTH: usize = 64;

impl Walker<'_> {
    /// Follows `$ref` into `$defs` (built-in schemas).
    fn resolve<'s>(&'s self, mut node: &'s Value) -> &'s Value {
        for _ in 0..16 {
            match node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
            {
                Some(name) => match self.root.get("$defs").and_then(|d| d.get(name)) {
                    Some(target) => node = target,
                    None => return node,
                },
                None => return node,
            }
        }
        node
    }

    fn walk(
        &self,
        schema: &Value,
        value: &mut Value,
        path: &mut String,
        findings: &mut Findings,
        depth: usize,
    ) {
        let schema = self.resolve(schema);
        // Field ownership is the server's own record, in the store's compact
        // form (see `ssa`); what a client sends there is not kept.
        if depth > MAX_DEPTH
            || path == "metadata.managedFields"
            || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
                && schema.get("properties").is_none()
        {
            return;
        }
        if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            if !(value.is_string() || value.is_i64() || value.is_u64() || value.is_null()) {
                findings
                    .invalid
                    .push((display(path), "must be an integer or a string".into()));
            }
            return;
        }
        let types = types_of(schema);
        if value.is_null() {
            return;
        }
        if !types.is_empty() && !types.iter().any(|t| matches_type(t, value)) {
            findings.invalid.push((
                display(path),
                format!(
                    "Invalid value: {}: must be of type {}",
                    describe(value),
                    types.join(" or ")
                ),
            ));
            return;
        }
        if self.rules == Rules::Structural {
            self.constraints(schema, value, path, findings);
        }
        match value {
            Value::Object(map) => self.walk_object(schema, map, path, findings, depth),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        self.walk(item_schema, item, path, findings, depth + 1);
                        path.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_object(
        &self,
        schema: &Value,
        map: &mut Map<String, Value>,
        path: &mut String,
        findings: &mut Findings,
        depth: usize,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let preserve =
            schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if self.rules == Rules::Structural
            && let Some(properties) = properties
        {
            for (name, prop) in properties {
                let prop = self.resolve(prop);
                if !map.contains_key(name)
                    && let Some(default) = prop.get("default")
                {
                    map.insert(name.clone(), default.clone());
                }
            }
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(required) {
                    findings
                        .invalid
                        .push((join(path, required), "Required value".into()));
                }
            }
        }
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            let child_schema = properties.and_then(|p| p.get(&key)).or(match additional {
                Some(Value::Object(_)) => additional,
                _ => None,
            });
            match child_schema {
                Some(child_schema) => {
                    let drop_null = self.rules == Rules::Structural
                        && map.get(&key).is_some_and(Value::is_null)
                        && self.resolve(child_schema).get("nullable") != Some(&Value::Bool(true));
                    if drop_null {
                        map.remove(&key);
                    } else if let Some(child) = map.get_mut(&key) {
                        self.walk(child_schema, child, path, findings, depth + 1);
                    }
                }
                None if properties.is_none()
                    && additional.is_none()
                    && !self.declares_type(schema) => {}
                None if preserve || additional == Some(&Value::Bool(true)) => {}
                None => {
                    findings.unknown.push(path.clone());
                    map.remove(&key);
                }
            }
            path.truncate(len);
        }
    }

    /// A schema that says nothing about an object's fields accepts any.
    fn declares_type(&self, schema: &Value) -> bool {
        schema.get("properties").is_some() || schema.get("additionalProperties").is_some()
    }

    fn constraints(&self, schema: &Value, value: &Value, path: &str, findings: &mut Findings) {
        let mut fail = |message: String| findings.invalid.push((display(path), message));
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(describe).collect();
            fail(format!(
                "Unsupported value: {}: supported values: {}",
                describe(value),
                list.join(", ")
            ));
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                fail(format!(
                    "Invalid value: {}: should be greater than or equal to {min}",
                    describe(value)
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                fail(format!(
                    "Invalid value: {}: should be less than or equal to {max}",
                    describe(value)
                ));
            }
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                fail(format!(
                    "Invalid value: {}: should be at least {min} chars long",
                    describe(value)
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                fail(format!("Too long: may not be more than {max} bytes"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .build()
                {
                    Ok(re) if !re.is_match(s) => fail(format!(
                        "Invalid value: {}: should match '{pattern}'",
                        describe(value)
                    )),
                    Ok(_) => {}
                    Err(_) => fail(format!(
                        "the schema's pattern {pattern:?} is not a valid regular expression"
                    )),
                }
            }
        }
        if let Some(items) = value.as_array() {
            let len = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && len < min
            {
                fail(format!(
                    "Invalid value: {len}: should have at least {min} items"
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && len > max
            {
                fail(format!("Too many: {len}: must have at most {max} items"));
            }
        }
    }
}

/// The types a schema node allows: `type` as a string or (JSON Schema) a list.
fn types_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    }
}

fn matches_type(t: &str, value: &Value) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "number" => value.is_number(),
        _ => true,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn display(path: &str) -> String {
    if path.is_empty() {
        "<root>".into()
    } else {
        path.to_string()
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment_schema() -> Value {
        serde_json::to_value(schemars::schema_for!(
            k8s_openapi::api::apps::v1::Deployment
        ))
        .unwrap()
    }

    #[test]
    fn unknown_fields_of_built_in_types_are_found_and_dropped() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"replicas": 2, "bogus": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]}}}});
        let f = check(&deployment_schema(), &mut d, Rules::BuiltIn);
        assert_eq!(
            f.unknown,
            ["spec.bogus", "spec.template.spec.containers[0].imagePolicy"]
        );
        assert!(d["spec"].get("bogus").is_none());
        assert!(f.invalid.is_empty(), "{:?}", f.invalid);
    }

    #[test]
    fn wrong_types_are_invalid() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two",
            "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "targetPort": "x"}]}]}}}});
        let f = check(&deployment_schema(), &mut d, Rules::BuiltIn);
        assert_eq!(f.invalid.len(), 1, "{f:?}");
        assert_eq!(f.invalid[0].0, "spec.replicas");
    }

    #[test]
    fn structural_schemas_prune_default_and_constrain() {
        let schema = json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "name": {"type": "string", "pattern": "^[a-z]+$"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "maybe": {"type": "string"}
        }}}});
        let mut w = json!({"apiVersion": "e/v1", "kind": "W", "metadata": {"name": "w"},
            "spec": {"size": 11, "name": "A1", "extra": true, "free": {"any": {"thing": 1}}, "maybe": null}});
        let f = check(&schema, &mut w, Rules::Structural);
        assert_eq!(f.unknown, ["spec.extra"]);
        assert_eq!(w["spec"]["color"], "red");
        assert!(w["spec"].get("maybe").is_none(), "null dropped");
        assert_eq!(w["spec"]["free"], json!({"any": {"thing": 1}}));
        let fields: Vec<_> = f.invalid.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(fields, ["spec.size", "spec.name"]);
        let mut missing = json!({"spec": {}});
        let f = check(&schema, &mut missing, Rules::Structural);
        assert_eq!(
            f.invalid,
            [("spec.size".to_string(), "Required value".to_string())]
        );
    }
}
