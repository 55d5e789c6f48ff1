//! Loading manifests from bytes: YAML streams or JSON, `List` kinds flattened,
//! empty documents skipped, every object checked to have a type, every error
//! naming the file, line and column (and the object where known).

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::object::{Object, Origin};
use crate::yaml::{Dialect, Limits, parse_documents};

/// How to read manifest bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Which YAML scalar rules apply.
    pub dialect: Dialect,
    /// Size, depth and alias limits.
    pub limits: Limits,
}

/// The syntax a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// A YAML stream of one or more documents.
    Yaml,
    /// A single JSON value.
    Json,
}

impl Syntax {
    /// The syntax a file name implies: `.json` is JSON, anything else YAML.
    pub fn from_file_name(name: &str) -> Syntax {
        if name.to_ascii_lowercase().ends_with(".json") {
            Syntax::Json
        } else {
            Syntax::Yaml
        }
    }
}

/// A manifest that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file or source name.
    pub source_name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (0 when only the line is known).
    pub column: usize,
    /// The object, when the error is about one (`Deployment team-a/web`).
    pub object: Option<String>,
    /// What is wrong. Never contains the file's content.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source_name, self.line)?;
        if self.column > 0 {
            write!(f, ":{}", self.column)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(object) = &self.object {
            write!(f, " (in {object})")?;
        }
        Ok(())
    }
}

/// Parses bytes into JSON documents (YAML stream or one JSON value), with the
/// line each document starts on. Empty documents are kept as `null`.
pub fn parse_values(
    bytes: &[u8],
    source_name: &str,
    syntax: Syntax,
    options: &LoadOptions,
) -> Result<Vec<(Value, usize)>, LoadError> {
    let error = |line, column, message: String| LoadError {
        source_name: source_name.to_string(),
        line,
        column,
        object: None,
        message,
    };
    if bytes.len() > options.limits.max_bytes {
        return Err(error(
            1,
            0,
            format!(
                "file is {} bytes, over the limit of {} bytes",
                bytes.len(),
                options.limits.max_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position_of(&bytes[..e.valid_up_to()]);
        error(line, column, "invalid UTF-8".into())
    })?;
    match syntax {
        Syntax::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let value: Value = serde::Deserialize::deserialize(&mut de)
                .and_then(|v| de.end().map(|()| v))
                .map_err(|e| {
                    error(
                        e.line(),
                        e.column(),
                        format!("invalid JSON: {}", json_error_reason(&e)),
                    )
                })?;
            Ok(vec![(value, 1)])
        }
        Syntax::Yaml => parse_documents(text, options.dialect, &options.limits)
            .map(|docs| docs.into_iter().map(|d| (d.value, d.line)).collect())
            .map_err(|e| error(e.line, e.column, e.message)),
    }
}

/// serde_json's message without its " at line X column Y" suffix (we print our own).
fn json_error_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn position_of(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&prefix[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Loads the Kubernetes objects in a file: documents that are empty are skipped,
/// `List` kinds are replaced by their items, and every object must be a mapping
/// with `apiVersion` and `kind`.
pub fn load_objects(
    bytes: &[u8],
    source_name: &str,
    syntax: Syntax,
    options: &LoadOptions,
) -> Result<Vec<Object>, LoadError> {
    objects_of_documents(
        parse_values(bytes, source_name, syntax, options)?,
        source_name,
    )
}

/// The Kubernetes objects of documents already parsed (each with the line
/// it starts on), as [`load_objects`] makes them from text.
pub fn objects_of_documents(
    documents: Vec<(Value, usize)>,
    source_name: &str,
) -> Result<Vec<Object>, LoadError> {
    let file: Arc<str> = Arc::from(source_name);
    let mut objects = Vec::new();
    for (value, line) in documents {
        collect_objects(value, &file, line, &mut objects)?;
    }
    Ok(objects)
}

fn collect_objects(
    value: Value,
    file: &Arc<str>,
    line: usize,
    out: &mut Vec<Object>,
) -> Result<(), LoadError> {
    let error = |object: Option<String>, message: String| LoadError {
        source_name: file.to_string(),
        line,
        column: 0,
        object,
        message,
    };
    let body = match value {
        Value::Null => return Ok(()),
        Value::Object(body) if body.is_empty() => return Ok(()),
        Value::Object(body) => body,
        Value::Array(_) => {
            return Err(error(
                None,
                "expected a Kubernetes object (a mapping), found a list".into(),
            ));
        }
        _ => {
            return Err(error(
                None,
                "expected a Kubernetes object (a mapping), found a scalar".into(),
            ));
        }
    };
    let object = Object::new(body).with_origin(Origin {
        file: file.clone(),
        line,
    });
    if is_list(&object) {
        let Some(Value::Array(items)) = object.body().get("items").cloned() else {
            return Err(error(
                Some(object.to_string()),
                "a List must have an items list".into(),
            ));
        };
        for item in items {
            if !item.is_object() {
                return Err(error(
                    Some(object.to_string()),
                    "every item of a List must be a mapping".into(),
                ));
            }
            collect_objects(item, file, line, out)?;
        }
        return Ok(());
    }
    for field in ["apiVersion", "kind"] {
        match object.body().get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => {
                return Err(error(
                    Some(object.to_string()),
                    format!("{field} must be a non-empty string"),
                ));
            }
            None => {
                return Err(error(
                    Some(describe_untyped(&object)),
                    format!("object has no {field}"),
                ));
            }
        }
    }
    if let Some(meta) = object.body().get("metadata")
        && !meta.is_object()
    {
        {
            return Err(error(
                Some(object.to_string()),
                "metadata must be a mapping".into(),
            ));
        }
    }
    out.push(object);
    Ok(())
}

/// `kind: List` (or any `…List` kind) with an `items` field.
fn is_list(object: &Object) -> bool {
    object.kind().ends_with("List") && object.body().contains_key("items")
}

fn describe_untyped(object: &Object) -> String {
    match object.name() {
        "" => "an object without a name".to_string(),
        name => format!("object named {name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Object>, LoadError> {
        load_objects(
            text.as_bytes(),
            "app/x.yaml",
            Syntax::Yaml,
            &LoadOptions::default(),
        )
    }

    #[test]
    fn multi_document_with_lists_and_empty_documents() {
        let objs = load(
            "---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: c\n",
        )
        .unwrap();
        let names: Vec<_> = objs.iter().map(|o| o.to_string()).collect();
        assert_eq!(names, ["ConfigMap a", "Secret b", "Service c"]);
        assert_eq!(objs[2].origin().unwrap().line, 14);
    }

    #[test]
    fn errors_name_file_line_and_object() {
        let err = load("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\nkind: Secret\nmetadata:\n  name: s\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "app/x.yaml:6: object has no apiVersion (in object named \"s\")"
        );
        let err = load("a: [1\n").unwrap_err();
        assert!(err.to_string().starts_with("app/x.yaml:"), "{err}");
        let err = load("- a\n- b\n").unwrap_err();
        assert!(err.message.contains("found a list"));
    }

    #[test]
    fn invalid_utf8_reports_position() {
        let err = load_objects(
            b"a: 1\nb: \xff\n",
            "f.yaml",
            Syntax::Yaml,
            &LoadOptions::default(),
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        assert_eq!(err.message, "invalid UTF-8");
    }

    #[test]
    fn json_files() {
        let objs = load_objects(
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}"#,
            "j.json",
            Syntax::Json,
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(objs[0].name(), "j");
        let err = load_objects(
            b"{\n\"a\": }",
            "j.json",
            Syntax::Json,
            &LoadOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(!err.message.contains("\"a\""));
    }

    #[test]
    fn error_messages_never_echo_content() {
        let secret = "s3cr3t-value";
        let err = load(&format!("password: [{secret}\n")).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        let err = load(&format!("{secret}\n")).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
    }
}
