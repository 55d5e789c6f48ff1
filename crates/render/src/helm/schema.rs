//! `values.schema.json` validation, as Helm 4 runs it
//! (`pkg/chart/common/util/jsonschema.go`): the chart's schema against the
//! coalesced values, then each enabled subchart's schema against the
//! values under its name. Every violation is listed, one `- at 'PATH':
//! MESSAGE` line each, worded as Helm's validator words the common ones.
//!
//! No schema is fetched: a `$ref` to another document (`http://…`,
//! `file://…`) is refused with an error naming it, where Helm would
//! download or read it.

use gitplane_gotemplate::{Dict, Value};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value as Json;

use super::chart::Chart;

/// Checks `values` (the chart's coalesced values) against the schemas of
/// `chart` and its subcharts; the error lists every violation, per chart.
pub fn validate(chart: &Chart, values: &Dict) -> Result<(), String> {
    let mut report = String::new();
    validate_chart(chart, values, &mut report)?;
    if report.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{report}"
        ))
    }
}

fn validate_chart(chart: &Chart, values: &Dict, report: &mut String) -> Result<(), String> {
    if let Some(schema) = &chart.schema {
        let instance = Value::Map(values.clone()).to_json()?;
        let violations = violations(schema, &instance)
            .map_err(|e| format!("{}/values.schema.json: {e}", chart.origin))?;
        if !violations.is_empty() {
            report.push_str(&format!("{}:\n", chart.name()));
            for line in violations {
                report.push_str(&line);
                report.push('\n');
            }
        }
    }
    for sub in &chart.dependencies {
        match values.get(sub.name()) {
            None | Some(Value::Nil) => {}
            Some(Value::Map(sub_values)) => validate_chart(sub, &sub_values, report)?,
            Some(other) => report.push_str(&format!(
                "{}:\ninvalid type for values: expected object (map), got {}\n",
                sub.name(),
                other.type_name()
            )),
        }
    }
    Ok(())
}

/// The violations of `instance` against the schema text, as report lines.
fn violations(schema: &[u8], instance: &Json) -> Result<Vec<String>, String> {
    let schema: Json =
        serde_json::from_slice(schema).map_err(|e| format!("not valid JSON: {e}"))?;
    let validator = jsonschema::options()
        .with_retriever(Offline)
        .build(&schema)
        .map_err(|e| format!("not a valid schema: {e}"))?;
    let mut lines = Vec::new();
    for error in validator.iter_errors(instance) {
        describe(&error, 0, &mut lines);
    }
    Ok(lines)
}

/// Refuses every reference to another document: nothing is downloaded or
/// read from outside the chart.
struct Offline;

impl jsonschema::Retrieve for Offline {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Json, Box<dyn std::error::Error + Send + Sync>> {
        Err(
            format!("{uri}: schemas are not fetched (gitplane reads nothing outside the chart)")
                .into(),
        )
    }
}

/// One violation (and, for `anyOf`/`oneOf`, the reasons of each branch,
/// indented), as Helm prints them.
fn describe(error: &jsonschema::ValidationError<'_>, depth: usize, lines: &mut Vec<String>) {
    let at = error.instance_path().as_str();
    lines.push(format!(
        "{}- at '{at}': {}",
        "  ".repeat(depth),
        message(error)
    ));
    if let ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } =
        error.kind()
    {
        for branch in context {
            for cause in branch {
                describe(cause, depth + 1, lines);
            }
        }
    }
}

/// The message for one violation: Helm's validator's words for the common
/// keywords, the schema library's for the rest.
fn message(error: &jsonschema::ValidationError<'_>) -> String {
    let instance = error.instance();
    let got = |limit: &dyn std::fmt::Display, keyword: &str, actual: String| {
        format!(
            "{keyword}: got {}, want {}",
            grouped(&actual),
            grouped(&limit.to_string())
        )
    };
    let length = || match instance.as_ref() {
        Json::String(s) => s.chars().count(),
        Json::Array(a) => a.len(),
        Json::Object(o) => o.len(),
        _ => 0,
    };
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let mut wanted: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![t.as_str()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
            };
            wanted.sort_unstable();
            format!("got {}, want {}", json_type(instance), wanted.join(" or "))
        }
        ValidationErrorKind::Required { property } => {
            format!("missing property {}", quoted(property))
        }
        ValidationErrorKind::Enum { options } => match options.as_ref() {
            Json::Array(options) => format!(
                "value must be one of {}",
                options.iter().map(quoted).collect::<Vec<_>>().join(", ")
            ),
            other => format!("value must be one of {}", quoted(other)),
        },
        ValidationErrorKind::Constant { expected_value } => {
            format!("value must be {}", quoted(expected_value))
        }
        ValidationErrorKind::Pattern { pattern } => {
            format!("{} does not match pattern '{pattern}'", quoted(instance))
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => format!(
            "additional properties {} not allowed",
            unexpected
                .iter()
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ValidationErrorKind::AnyOf { .. } => "'anyOf' failed".into(),
        ValidationErrorKind::OneOfNotValid { .. } => "'oneOf' failed, none matched".into(),
        ValidationErrorKind::Minimum { limit } => got(limit, "minimum", instance.to_string()),
        ValidationErrorKind::Maximum { limit } => got(limit, "maximum", instance.to_string()),
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            got(limit, "exclusiveMinimum", instance.to_string())
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            got(limit, "exclusiveMaximum", instance.to_string())
        }
        ValidationErrorKind::MinLength { limit } => got(limit, "minLength", length().to_string()),
        ValidationErrorKind::MaxLength { limit } => got(limit, "maxLength", length().to_string()),
        ValidationErrorKind::MinItems { limit } => got(limit, "minItems", length().to_string()),
        ValidationErrorKind::MaxItems { limit } => got(limit, "maxItems", length().to_string()),
        ValidationErrorKind::MinProperties { limit } => {
            got(limit, "minProperties", length().to_string())
        }
        ValidationErrorKind::MaxProperties { limit } => {
            got(limit, "maxProperties", length().to_string())
        }
        _ => error.to_string(),
    }
}

/// A number with its thousands grouped, as Helm's validator prints them
/// (`70,000`); anything else as it is.
fn grouped(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if digits == 0
        || !rest[digits..]
            .chars()
            .all(|c| c == '.' || c.is_ascii_digit())
    {
        return number.to_string();
    }
    let (whole, fraction) = rest.split_at(digits);
    let mut out = String::from(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(fraction);
    out
}

/// JSON Schema's name for the value's type (an integral number is a
/// `number`, as Helm's validator reports it).
fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A value as Helm's validator quotes it: strings in single quotes.
fn quoted(value: &Json) -> String {
    match value {
        Json::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(schema: Json, instance: Json) -> Vec<String> {
        violations(schema.to_string().as_bytes(), &instance).unwrap()
    }

    #[test]
    fn violations_are_worded_as_helm_words_them() {
        let schema = json!({
            "type": "object",
            "required": ["req"],
            "properties": {
                "port": {"type": "integer", "minimum": 1},
                "mode": {"enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^x+$", "maxLength": 2},
                "n": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}
            }
        });
        let mut got = lines(
            schema,
            json!({"port": "80", "mode": "c", "name": "yyy", "n": -1}),
        );
        got.sort();
        assert_eq!(
            got,
            [
                "  - at '/n': got number, want string",
                "  - at '/n': minimum: got -1, want 0",
                "- at '': missing property 'req'",
                "- at '/mode': value must be one of 'a', 'b'",
                "- at '/n': 'anyOf' failed",
                "- at '/name': 'yyy' does not match pattern '^x+$'",
                "- at '/name': maxLength: got 3, want 2",
                "- at '/port': got string, want integer",
            ]
        );
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped("70000"), "70,000");
        assert_eq!(grouped("-1234567.25"), "-1,234,567.25");
        assert_eq!(grouped("999"), "999");
        assert_eq!(grouped("1e+21"), "1e+21");
    }

    #[test]
    fn references_to_other_documents_are_refused() {
        let schema = json!({"$ref": "https://example.com/values.schema.json"});
        let error = violations(schema.to_string().as_bytes(), &json!({})).unwrap_err();
        assert!(error.contains("schemas are not fetched"), "{error}");
        let local = json!({"$defs": {"p": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/p"}}});
        assert_eq!(
            lines(local, json!({"a": true})),
            ["- at '/a': got boolean, want integer"]
        );
    }
}
