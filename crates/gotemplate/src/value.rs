//! The values templates see, with the Go types they have in Helm.
//!
//! Go keeps `int`, `int64` and `float64` apart and templates can tell (`eq 1
//! 1.0` is an error, `printf "%T"` names the type), so the model does too.
//! Data from YAML or JSON is `map[string]interface {}`, `[]interface {}`,
//! `float64`, `string`, `bool` and `nil`; functions return `int` or `int64`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

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
    /// `map[string]interface {}`: shared and mutable, as Go maps are
    /// (`set $d "k" v` changes `$d` wherever it is referenced).
    Map(Dict),
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
    /// The elements, for a Go slice type with methods (`range`, `len`).
    fn elements(&self) -> Option<Vec<Value>> {
        None
    }
    /// The bytes of a Go string that is not valid UTF-8 (see
    /// [`Value::from_bytes`]), for the functions that read bytes
    /// (`b64enc`, the checksums).
    fn raw_bytes(&self) -> Option<&[u8]> {
        None
    }
    /// The entries sorted by key, for a Go map type with methods (Helm's
    /// `.Files`: `range $path, $bytes := .Files.Glob "…"`, `len`).
    fn entries(&self) -> Option<Vec<(String, Value)>> {
        None
    }
    /// What Go's `encoding/json` makes of it, for a type with its own
    /// `MarshalJSON`; `None` for the others (printed as `%v` prints them).
    fn json(&self) -> Option<serde_json::Value> {
        None
    }
    /// The object itself, for functions that take back an object they made
    /// (Sprig's `genSignedCert` its CA); `None` for the others.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

impl Value {
    /// A `string`.
    pub fn string(text: impl Into<Arc<str>>) -> Value {
        Value::String(text.into())
    }

    /// A Go `string` of any bytes (a file's contents): a [`Value::String`]
    /// when they are UTF-8, else a string that keeps its bytes for
    /// `b64enc` and the checksums (and prints them as UTF-8 with
    /// replacement characters).
    pub fn from_bytes(bytes: Vec<u8>) -> Value {
        match String::from_utf8(bytes) {
            Ok(text) => Value::string(text),
            Err(e) => Value::Object(Arc::new(BinaryString(e.into_bytes()))),
        }
    }

    /// A `[]interface {}`.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    /// A `map[string]interface {}`.
    pub fn map(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(Dict::new(entries))
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
            // A Go slice or map type is false when empty (`if .Files.Glob "x/*"`).
            Value::Object(o) => {
                o.elements().is_none_or(|e| !e.is_empty())
                    && o.entries().is_none_or(|e| !e.is_empty())
            }
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

/// How deep values may nest before printing or converting them stops (a
/// map can contain itself through `set`).
pub const MAX_NESTING: usize = 1_000;

impl Value {
    /// A value read from JSON or YAML as Go's `encoding/json` reads it into
    /// an `interface {}`: every number a `float64`.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::string(s.as_str()),
            serde_json::Value::Array(items) => {
                Value::list(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The value as JSON after a trip through Go's `encoding/json` and back
    /// (what sigs.k8s.io/yaml does): integral floats become integers.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        self.to_json_at(0, false)
    }

    /// The value as JSON with its Go number types kept: a float64 stays a
    /// float (`3.0`), as an encoder reading Go values directly sees it
    /// (goyaml.v3's).
    pub fn to_json_keeping_floats(&self) -> Result<serde_json::Value, String> {
        self.to_json_at(0, true)
    }

    fn to_json_at(&self, depth: usize, keep_floats: bool) -> Result<serde_json::Value, String> {
        if depth > MAX_NESTING {
            return Err("value nested too deeply (a map that contains itself?)".into());
        }
        Ok(match self {
            Value::Missing | Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(n) | Value::Int64(n) => serde_json::Value::from(*n),
            Value::Float(f) if keep_floats => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .ok_or_else(|| format!("json: unsupported value: {f}"))?,
            Value::Float(f) => float_to_json(*f)?,
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Object(o) => o
                .json()
                .unwrap_or_else(|| serde_json::Value::String(o.print())),
            Value::List(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| v.to_json_at(depth + 1, keep_floats))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(map) => serde_json::Value::Object(
                map.entries()
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_json_at(depth + 1, keep_floats)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

impl Value {
    /// A copy sharing no map with the original (Sprig's `deepCopy`; Helm
    /// copies values before coalescing). Below [`MAX_NESTING`] levels (a
    /// map that contains itself) the rest is shared, not copied.
    pub fn deep_copy(&self) -> Value {
        self.deep_copy_at(0)
    }

    fn deep_copy_at(&self, depth: usize) -> Value {
        match self {
            Value::Map(d) if depth <= MAX_NESTING => Value::Map(d.deep_copy_at(depth)),
            Value::List(items) if depth <= MAX_NESTING => {
                Value::list(items.iter().map(|v| v.deep_copy_at(depth + 1)).collect())
            }
            other => other.clone(),
        }
    }
}

/// A float as JSON read back: an integer when Go writes it without a point
/// and it fits an int64.
fn float_to_json(f: f64) -> Result<serde_json::Value, String> {
    if !f.is_finite() {
        return Err(format!("json: unsupported value: {f}"));
    }
    if f.fract() == 0.0 && f.abs() < 1e21 && f.abs() < 9.2e18 {
        return Ok(serde_json::Value::from(f as i64));
    }
    Ok(serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number))
}

/// A Go string that is not valid UTF-8 ([`Value::from_bytes`]).
#[derive(Debug)]
struct BinaryString(Vec<u8>);

impl GoObject for BinaryString {
    fn type_name(&self) -> &str {
        "string"
    }

    fn member(&self, _: &str, _: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn print(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    fn raw_bytes(&self) -> Option<&[u8]> {
        Some(&self.0)
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
            (Value::Map(a), Value::Map(b)) => a.same(b) || a.entries() == b.entries(),
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

/// A Go map: a reference to entries that functions such as `set` change in
/// place. Readers take a copy of the entries ([`Dict::entries`]) rather than
/// hold the lock, so a map that contains itself cannot deadlock.
///
/// The entries are hashed (templates look keys up far more often than they
/// list them); everything that lists them sorts them, as Go does.
#[derive(Clone, Default)]
pub struct Dict(Arc<RwLock<Entries>>);

/// A map's entries, by key (foldhash is seeded per process, so keys a
/// chart chooses cannot collide on purpose).
type Entries = foldhash::HashMap<String, Value>;

impl Dict {
    /// A map holding `entries`.
    pub fn new(entries: BTreeMap<String, Value>) -> Dict {
        Dict::of(entries.into_iter().collect())
    }

    fn of(entries: Entries) -> Dict {
        Dict(Arc::new(RwLock::new(entries)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }

    /// Follows `keys` through nested maps, from this one, as far as they
    /// lead: how many were followed and the value reached; `None` when the
    /// first key is not here. Nothing in between is copied.
    pub fn follow(&self, keys: &[String]) -> Option<(usize, Value)> {
        let (first, rest) = keys.split_first()?;
        // A map reached again on the way down (one that contains itself)
        // is read-locked again, which `try_read` allows; when the lock is
        // not free at once, the caller goes step by step.
        let entries = self.0.try_read().ok()?;
        let value = entries.get(first.as_str())?;
        if let Value::Map(inner) = value
            && let Some((followed, reached)) = inner.follow(rest)
        {
            return Some((followed + 1, reached));
        }
        Some((1, value.clone()))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    /// Sets `key` (seen by every reference to the map).
    pub fn insert(&self, key: String, value: Value) {
        self.write().insert(key, value);
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.write().remove(key)
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// A copy of the entries, sorted by key (values are shared).
    pub fn entries(&self) -> BTreeMap<String, Value> {
        self.unordered_entries().into_iter().collect()
    }

    /// A copy of the entries in no particular order (values are shared):
    /// for work that visits every key and does not depend on their order.
    pub fn unordered_entries(&self) -> Vec<(String, Value)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.read().keys().cloned().collect();
        keys.sort_unstable();
        keys
    }

    /// A copy sharing no map with this one (see [`Value::deep_copy`]).
    pub fn deep_copy(&self) -> Dict {
        self.deep_copy_at(0)
    }

    fn deep_copy_at(&self, depth: usize) -> Dict {
        // Copied under a read lock when one is free without waiting (a map
        // that contains itself is read-locked again on the way down, which
        // `try_read` allows and `read` may not); else the entries are
        // taken out under the lock and copied after it.
        if let Ok(entries) = self.0.try_read() {
            return Dict::of(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.deep_copy_at(depth + 1)))
                    .collect(),
            );
        }
        let entries = self.unordered_entries();
        Dict::of(
            entries
                .into_iter()
                .map(|(k, v)| (k, v.deep_copy_at(depth + 1)))
                .collect(),
        )
    }

    /// Whether both are the same map.
    pub fn same(&self, other: &Dict) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Dict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "map{:?}", self.keys())
    }
}
