//! `${…}` expressions inside YAML values.
//!
//! A string that is exactly `${e}` is a *standalone* expression: its value
//! replaces the string and keeps its type (a number, a list, an object).
//! Any other string holding `${…}` is a *string template*: each expression
//! must evaluate to a string and the parts are joined. Nested `${` is an
//! error; a literal `${X}` is written `${"${X}"}`.

use std::fmt;
use std::sync::Arc;

use gitplane_cel::{Activation, CelError, Env, Program};
use serde_json::Value as Json;

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A field of an object.
    Key(String),
    /// An element of a list.
    Index(usize),
}

/// A path into a JSON value, printed as `spec.ports[0].port`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Step>);

impl FieldPath {
    /// This path with one more step.
    pub fn child(&self, step: Step) -> FieldPath {
        let mut steps = self.0.clone();
        steps.push(step);
        FieldPath(steps)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => write!(f, "{key}")?,
                Step::Key(key)
                    if key
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
                {
                    write!(f, ".{key}")?
                }
                Step::Key(key) => write!(f, "[{key:?}]")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// The expressions of one string value.
#[derive(Debug, Clone)]
pub enum Field {
    /// The whole string is one expression.
    Standalone(Arc<Program>),
    /// Text and expressions joined into a string.
    Template(Vec<Part>),
}

/// A part of a string template.
#[derive(Debug, Clone)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// An expression that must evaluate to a string.
    Expression(Arc<Program>),
}

impl Field {
    /// The field's expressions.
    pub fn programs(&self) -> Vec<&Arc<Program>> {
        match self {
            Field::Standalone(program) => vec![program],
            Field::Template(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    Part::Expression(program) => Some(program),
                    Part::Text(_) => None,
                })
                .collect(),
        }
    }

    /// The source text, as written in the YAML.
    pub fn source(&self) -> String {
        match self {
            Field::Standalone(program) => format!("${{{}}}", program.source()),
            Field::Template(parts) => parts
                .iter()
                .map(|p| match p {
                    Part::Text(text) => text.clone(),
                    Part::Expression(program) => format!("${{{}}}", program.source()),
                })
                .collect(),
        }
    }

    /// Evaluates the field: its value, or `None` where a standalone
    /// expression returned kro's `omit()` (the field is to be left out).
    pub fn evaluate(&self, activation: &Activation) -> Result<Option<Json>, FieldError> {
        match self {
            Field::Standalone(program) => {
                let cel_error = |e| FieldError::Cel(program.source().to_string(), e);
                let value = program.evaluate(activation).map_err(cel_error)?;
                if gitplane_cel::is_omit(&value) {
                    return Ok(None);
                }
                gitplane_cel::to_json(&value).map(Some).map_err(cel_error)
            }
            Field::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => out.push_str(text),
                        Part::Expression(program) => {
                            match program
                                .evaluate_json(activation)
                                .map_err(|e| FieldError::Cel(program.source().to_string(), e))?
                            {
                                Json::String(s) => out.push_str(&s),
                                other => {
                                    return Err(FieldError::NotAString(
                                        program.source().to_string(),
                                        type_name(&other),
                                    ));
                                }
                            }
                        }
                    }
                }
                Ok(Some(Json::String(out)))
            }
        }
    }
}

/// Why a field could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldError {
    /// The expression (its source) failed.
    Cel(String, CelError),
    /// A part of a string template (its source) is not a string (its type).
    NotAString(String, &'static str),
}

/// The JSON type of a value, as CEL names it.
pub fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(n) if n.is_f64() => "double",
        Json::Number(_) => "int",
        Json::String(_) => "string",
        Json::Array(_) => "list",
        Json::Object(_) => "map",
    }
}

/// A string's `${…}` parts, or `None` when it has none.
pub fn scan(text: &str) -> Result<Option<Vec<RawPart>>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(RawPart::Text(rest[..start].to_string()));
        }
        let body = &rest[start + 2..];
        let end = expression_end(body)?;
        let expression = body[..end].trim();
        if expression.is_empty() {
            return Err("empty expression `${}`".to_string());
        }
        parts.push(RawPart::Expression(expression.to_string()));
        rest = &body[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(RawPart::Text(rest.to_string()));
    }
    Ok(Some(parts))
}

/// A part of a scanned string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPart {
    /// Literal text.
    Text(String),
    /// An expression's source, without `${` and `}`.
    Expression(String),
}

/// The byte offset of the `}` closing an expression that starts at `body`.
fn expression_end(body: &str) -> Result<usize, String> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => i = string_end(bytes, i, quote)?,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                return Err(
                    "nested `${` inside an expression (write a literal as ${\"${X}\"})".to_string(),
                );
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Ok(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    Err("unterminated `${`: no closing `}`".to_string())
}

/// The index of the last byte of the string literal starting at `start`.
fn string_end(bytes: &[u8], start: usize, quote: u8) -> Result<usize, String> {
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let raw = start > 0 && matches!(bytes[start - 1], b'r' | b'R');
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        if bytes[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if !triple {
                return Ok(i);
            }
            if bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote) {
                return Ok(i + 2);
            }
        }
        i += 1;
    }
    Err("unterminated string literal in an expression".to_string())
}

/// A string value's field, compiled, or `None` when it holds no expression.
pub fn compile_string(text: &str, env: &Env) -> Result<Option<Field>, (String, String)> {
    let Some(parts) = scan(text).map_err(|e| (text.to_string(), e))? else {
        return Ok(None);
    };
    let compile = |source: &str| {
        env.compile(source)
            .map_err(|e| (source.to_string(), e.to_string()))
    };
    if let [RawPart::Expression(source)] = parts.as_slice() {
        return Ok(Some(Field::Standalone(compile(source)?)));
    }
    let mut compiled = Vec::with_capacity(parts.len());
    for part in parts {
        compiled.push(match part {
            RawPart::Text(text) => Part::Text(text),
            RawPart::Expression(source) => Part::Expression(compile(&source)?),
        });
    }
    Ok(Some(Field::Template(compiled)))
}

/// Every string with expressions inside a JSON value, with its path.
pub fn compile_value(
    value: &Json,
    path: &FieldPath,
    env: &Env,
    out: &mut Vec<(FieldPath, Field)>,
) -> Result<(), (FieldPath, String, String)> {
    match value {
        Json::String(text) => {
            if let Some(field) = compile_string(text, env).map_err(|(s, e)| (path.clone(), s, e))? {
                out.push((path.clone(), field));
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                compile_value(item, &path.child(Step::Index(i)), env, out)?;
            }
        }
        Json::Object(fields) => {
            for (key, item) in fields {
                if key.contains("${") {
                    return Err((
                        path.child(Step::Key(key.clone())),
                        key.clone(),
                        "expressions are not allowed in field names".to_string(),
                    ));
                }
                compile_value(item, &path.child(Step::Key(key.clone())), env, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The value at `path`, if every step is there.
fn node_at<'a>(target: &'a mut Json, path: &[Step]) -> Option<&'a mut Json> {
    let mut node = target;
    for step in path {
        node = match (step, node) {
            (Step::Key(key), Json::Object(fields)) => fields.get_mut(key)?,
            (Step::Index(i), Json::Array(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Sets the value at `path` (which exists, since it came from the same value).
pub fn set_at(target: &mut Json, path: &[Step], value: Json) {
    if let Some(node) = node_at(target, path) {
        *node = value;
    }
}

/// Removes the field or list element at `path`, if it is there.
pub fn remove_at(target: &mut Json, path: &[Step]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(node) = node_at(target, parents) else {
        return;
    };
    match (last, node) {
        (Step::Key(key), Json::Object(fields)) => {
            fields.shift_remove(key);
        }
        (Step::Index(i), Json::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// Removes the fields at `paths`, list elements from the last to the first
/// so that removing one does not move the others.
pub fn remove_all(target: &mut Json, mut paths: Vec<Vec<Step>>) {
    paths.sort_by(|a, b| b.cmp(a));
    for path in paths {
        remove_at(target, &path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<RawPart> {
        scan(text).unwrap().unwrap()
    }

    #[test]
    fn standalone_and_templates() {
        assert_eq!(parts("${a.b}"), vec![RawPart::Expression("a.b".into())]);
        assert_eq!(
            parts("x-${a}-${b}"),
            vec![
                RawPart::Text("x-".into()),
                RawPart::Expression("a".into()),
                RawPart::Text("-".into()),
                RawPart::Expression("b".into())
            ]
        );
        assert_eq!(scan("plain").unwrap(), None);
    }

    #[test]
    fn braces_and_strings_inside_expressions() {
        assert_eq!(
            parts("${{'a': 1}}"),
            vec![RawPart::Expression("{'a': 1}".into())]
        );
        assert_eq!(
            parts("${'}' + \"}\"}"),
            vec![RawPart::Expression("'}' + \"}\"".into())]
        );
        assert_eq!(
            parts("${\"${X}\"}"),
            vec![RawPart::Expression("\"${X}\"".into())]
        );
        assert_eq!(
            parts("${'''a'}'''}"),
            vec![RawPart::Expression("'''a'}'''".into())]
        );
    }

    #[test]
    fn malformed_expressions() {
        assert!(scan("${a").is_err());
        assert!(scan("${a + ${b}}").is_err());
        assert!(scan("${}").is_err());
        assert!(scan("${'abc}").is_err());
    }

    #[test]
    fn paths_print_like_kubectl() {
        let path = FieldPath(vec![
            Step::Key("spec".into()),
            Step::Key("ports".into()),
            Step::Index(0),
            Step::Key("a.b/c".into()),
        ]);
        assert_eq!(path.to_string(), "spec.ports[0][\"a.b/c\"]");
    }

    proptest::proptest! {
        #[test]
        fn scanning_never_panics(text in ".{0,64}") {
            let _ = scan(&text);
        }

        #[test]
        fn text_without_dollar_brace_is_kept(text in "[^$]{0,40}") {
            proptest::prop_assert_eq!(scan(&text).unwrap(), None);
        }
    }
}
