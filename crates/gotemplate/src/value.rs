//! The values templates see, with the Go types they have in Helm.
//!
//! Go keeps `int`, `int64` and `float64` apart and templates can tell (`eq 1
//! 1.0` is an error, `printf "%T"` names the type), so the model does too.
//! Data from YAML or JSON is `map[string]interface {}`, `[]interface {}`,
//! `float64`, `string`, `bool` and `nil`; functions return `int` or `int64`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A value of a template's data, or one computed while executing.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// What Go calls an invalid value: a missing map key, printed
    /// `<no value>`.
    #[default]
    Missing,
    /// A nil `interface {}`.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` (what `len`, `atoi` and number literals give).
    Int(i64),
    /// `int64` (what Sprig's arithmetic gives).
    Int64(i64),
    /// `float64` (every number read from YAML or JSON).
    Float(f64),
    /// `string`.
    String(Arc<str>),
    /// `[]interface {}`.
    List(Arc<Vec<Value>>),
    /// `map[string]interface {}`.
    Map(Arc<BTreeMap<String, Value>>),
    /// A Go value with methods or fields of its own (Helm's `.Files`,
    /// `.Capabilities`).
    Object(Arc<dyn GoObject>),
}

/// A value with Go methods: `.Name` reads a field or calls a method without
/// arguments, `.Name arg…` calls a method with arguments.
pub trait GoObject: fmt::Debug + Send + Sync {
    /// The Go type, as `%T` prints it.
    fn type_name(&self) -> &str;
    /// The field or method `name` applied to `args`; `None` if the type has
    /// no such field or method.
    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>>;
    /// How `%v` prints the value.
    fn print(&self) -> String;
}

impl Value {
    /// A `string`.
    pub fn string(text: impl Into<Arc<str>>) -> Value {
        Value::String(text.into())
    }

    /// A `[]interface {}`.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    /// A `map[string]interface {}`.
    pub fn map(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(Arc::new(entries))
    }

    /// The Go type's name, as `%T` and error messages print it.
    pub fn type_name(&self) -> &str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Object(o) => o.type_name(),
        }
    }

    /// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(n) | Value::Int64(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(_) => true,
        }
    }

    /// Whether the value is nil or missing.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// The string, if the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if the value is an `int` or `int64`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) | Value::Int64(n) => Some(*n),
            _ => None,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Missing | Value::Nil, Value::Missing | Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) | (Value::Int64(a), Value::Int64(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::string(text)
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::string(text)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}
