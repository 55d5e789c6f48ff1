//! The functions kro adds to CEL for resource graphs, with kro's semantics
//! (its `pkg/cel/library`): `random.seededString`, `random.seededInt`,
//! `hash.fnv64a|sha256|md5`, `json.marshal|unmarshal`,
//! `lists.setAtIndex|insertAtIndex|removeAtIndex`, the map members `merge`
//! and `deepMerge`, and `omit()`, the sentinel that removes the field it is
//! written to.
//!
//! They are registered only for [`Library::Kro`](crate::Library::Kro)
//! programs: a ValidatingAdmissionPolicy does not see them, as in a cluster.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::extractors::{Arguments, This};
use kube_cel::cel::objects::{Key, Map, Opaque, Value};
use kube_cel::cel::{Context, ExecutionError, ResolveResult};
use sha2::{Digest, Sha256};

use crate::{from_json, to_json};

/// The value of `omit()`: where a template field evaluates to it, the field
/// (or list element) is left out of the rendered object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Omit;

impl Opaque for Omit {
    fn runtime_type_name(&self) -> &str {
        "kro.omit"
    }
}

/// Whether a value is `omit()`.
pub fn is_omit(value: &Value) -> bool {
    matches!(value, Value::Opaque(o) if o.downcast_ref::<Omit>().is_some())
}

/// Registers kro's functions.
pub(crate) fn register(context: &mut Context<'static>) {
    context.add_function("random.seededString", seeded_string);
    context.add_function("random.seededInt", seeded_int);
    context.add_function("hash.fnv64a", hash_fnv64a);
    context.add_function("hash.sha256", hash_sha256);
    context.add_function("hash.md5", hash_md5);
    context.add_function("json.marshal", json_marshal);
    context.add_function("json.unmarshal", json_unmarshal);
    context.add_function("lists.setAtIndex", list_set_at);
    context.add_function("lists.insertAtIndex", list_insert_at);
    context.add_function("lists.removeAtIndex", list_remove_at);
    context.add_function("merge", map_merge);
    context.add_function("deepMerge", map_deep_merge);
    context.add_function("omit", omit);
    context.add_function("runtime.newCondition", new_condition);
    context.add_function("runtime.condition", find_condition);
}

/// The keys of a condition `runtime.newCondition` builds.
const CONDITION_KEYS: [&str; 4] = ["type", "status", "reason", "message"];

/// `runtime.newCondition({type: …, status: …, reason: …, message: …})`:
/// the condition, checked (`type` and `status` required, `status` one of
/// True, False, Unknown). Bare keys were made strings at compile time
/// ([`condition_keys_as_strings`]).
fn new_condition(fields: Value) -> ResolveResult {
    const F: &str = "runtime.newCondition";
    let Value::Map(map) = fields else {
        return Err(error(F, "runtime.newCondition: the argument must be a map"));
    };
    let get = |key: &str| map.map.get(&Key::String(Arc::new(key.to_string())));
    let mut out: HashMap<Key, Value> = HashMap::new();
    for key in CONDITION_KEYS {
        let value = match get(key) {
            Some(Value::String(s)) => s.to_string(),
            Some(other) => {
                return Err(error(
                    F,
                    format!("runtime.newCondition: {key} must be a string, found {other:?}"),
                ));
            }
            None if key == "type" || key == "status" => {
                return Err(error(
                    F,
                    format!("runtime.newCondition: '{key}' is required"),
                ));
            }
            None => String::new(),
        };
        if key == "status" && !matches!(value.as_str(), "True" | "False" | "Unknown") {
            return Err(error(
                F,
                format!(
                    "runtime.newCondition: status must be True, False or Unknown, found {value:?}"
                ),
            ));
        }
        out.insert(
            Key::String(Arc::new(key.to_string())),
            Value::String(Arc::new(value)),
        );
    }
    Ok(Value::Map(Map { map: Arc::new(out) }))
}

/// `runtime.condition(object, type)`: the condition of that type in the
/// object's `status.conditions`, or an empty one.
fn find_condition(object: Value, wanted: Arc<String>) -> ResolveResult {
    let key = |k: &str| Key::String(Arc::new(k.to_string()));
    let conditions = match &object {
        Value::Map(m) => match m.map.get(&key("status")) {
            Some(Value::Map(status)) => status.map.get(&key("conditions")).cloned(),
            _ => None,
        },
        _ => None,
    };
    if let Some(Value::List(items)) = conditions {
        for item in items.iter() {
            if let Value::Map(c) = item
                && matches!(c.map.get(&key("type")), Some(Value::String(t)) if **t == *wanted)
            {
                let mut out: HashMap<Key, Value> = HashMap::new();
                for k in CONDITION_KEYS {
                    let v = c
                        .map
                        .get(&key(k))
                        .cloned()
                        .unwrap_or(Value::String(Arc::default()));
                    out.insert(key(k), v);
                }
                return Ok(Value::Map(Map { map: Arc::new(out) }));
            }
        }
    }
    let empty: HashMap<Key, Value> = CONDITION_KEYS
        .iter()
        .map(|k| (key(k), Value::String(Arc::default())))
        .collect();
    Ok(Value::Map(Map {
        map: Arc::new(empty),
    }))
}

/// kro's `runtime.newCondition({type: 'A', status: 'True'})` writes its keys
/// bare; CEL would read them as variables. They become strings, and only
/// the four condition keys are allowed (a compile error otherwise, as kro's
/// macro reports it).
pub(crate) fn condition_keys_as_strings(
    expr: &mut kube_cel::cel::common::ast::IdedExpr,
) -> Result<(), String> {
    use kube_cel::cel::common::ast::{EntryExpr, Expr, LiteralValue};
    if let Expr::Call(call) = &mut expr.expr
        && call.func_name == "newCondition"
        && matches!(call.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "runtime")
        && let Some(Expr::Map(map)) = call.args.first_mut().map(|a| &mut a.expr)
    {
        let mut seen = Vec::new();
        for entry in &mut map.entries {
            if let EntryExpr::MapEntry(e) = &mut entry.expr {
                let Expr::Ident(name) = &e.key.expr else {
                    return Err("runtime.newCondition: keys must be bare identifiers (type, status, reason, message)".to_string());
                };
                let name = name.clone();
                if !CONDITION_KEYS.contains(&name.as_str()) {
                    return Err(format!(
                        "runtime.newCondition: unknown key {name:?} (allowed: type, status, reason, message)"
                    ));
                }
                if seen.contains(&name) {
                    return Err(format!("runtime.newCondition: duplicate key {name:?}"));
                }
                e.key.expr = Expr::Literal(LiteralValue::String(name.as_str().into()));
                seen.push(name);
            }
        }
        for required in ["type", "status"] {
            if !seen.iter().any(|k| k == required) {
                return Err(format!("runtime.newCondition: '{required}' is required"));
            }
        }
    }
    let mut result = Ok(());
    crate::ast::for_each_child_mut(expr, &mut |child| {
        if result.is_ok() {
            result = condition_keys_as_strings(child);
        }
    });
    result
}

fn omit() -> ResolveResult {
    Ok(Value::Opaque(Arc::new(Omit)))
}

fn hash_fnv64a(s: Arc<String>) -> ResolveResult {
    Ok(bytes(fnv64a(s.as_bytes())))
}

fn hash_sha256(s: Arc<String>) -> ResolveResult {
    Ok(bytes(Sha256::digest(s.as_bytes()).to_vec()))
}

fn hash_md5(s: Arc<String>) -> ResolveResult {
    Ok(bytes(md5::Md5::digest(s.as_bytes()).to_vec()))
}

fn error(function: &str, message: impl Into<String>) -> ExecutionError {
    ExecutionError::function_error(function, message.into())
}

fn bytes(b: Vec<u8>) -> Value {
    Value::Bytes(Arc::new(b))
}

const ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `random.seededString(length, seed)`: `length` characters of `[0-9a-z]`
/// chosen by the SHA-256 of the seed, four digest bytes (big-endian) per
/// character. kro walks the 32-byte digest in steps of four from the start
/// for each character, so the string repeats every eight characters; the
/// same seed gives the same string kro gives.
fn seeded_string(length: i64, seed: Arc<String>) -> ResolveResult {
    if length <= 0 {
        return Err(error(
            "random.seededString",
            "random.seededString length must be positive",
        ));
    }
    let limits = crate::limits::current_limits();
    if length as u64 > limits.max_string_bytes as u64 {
        return Err(error(
            "random.seededString",
            format!(
                "a string of {length} characters is over the limit of {}",
                limits.max_string_bytes
            ),
        ));
    }
    let digest = Sha256::digest(seed.as_bytes());
    let out: String = (0..length as usize)
        .map(|i| {
            let start = (i * 4) % digest.len();
            let word = u32::from_be_bytes([
                digest[start],
                digest[start + 1],
                digest[start + 2],
                digest[start + 3],
            ]);
            ALPHANUMERIC[(word % ALPHANUMERIC.len() as u32) as usize] as char
        })
        .collect();
    Ok(Value::String(Arc::new(out)))
}

/// `random.seededInt(min, max, seed)`: an integer in `[min, max)` from the
/// first eight bytes (big-endian) of the seed's SHA-256.
fn seeded_int(min: i64, max: i64, seed: Arc<String>) -> ResolveResult {
    if min >= max {
        return Err(error(
            "random.seededInt",
            "random.seededInt min must be less than max",
        ));
    }
    let digest = Sha256::digest(seed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let v = u64::from_be_bytes(first);
    let range = max.wrapping_sub(min) as u64;
    Ok(Value::Int(min.wrapping_add((v % range) as i64)))
}

/// FNV-1a, 64 bits, as Go's `hash/fnv` writes its sum (big-endian bytes).
fn fnv64a(data: &[u8]) -> Vec<u8> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash.to_be_bytes().to_vec()
}

/// `json.marshal(value)`: JSON as Go's `encoding/json` writes it (sorted
/// keys, `<`, `>`, `&` escaped).
fn json_marshal(value: Value) -> ResolveResult {
    let json = to_json(&value).map_err(|e| error("json.marshal", e.to_string()))?;
    let text = serde_json::to_string(&json).map_err(|e| error("json.marshal", e.to_string()))?;
    Ok(Value::String(Arc::new(escape_html(&text))))
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `json.unmarshal(text)`: the JSON value. Numbers become doubles, as Go
/// decodes them into `interface{}`.
fn json_unmarshal(text: Arc<String>) -> ResolveResult {
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        error(
            "json.unmarshal",
            format!("json.unmarshal failed to parse JSON: {e}"),
        )
    })?;
    Ok(numbers_as_doubles(from_json(&json)))
}

fn numbers_as_doubles(value: Value) -> Value {
    match value {
        Value::Int(i) => Value::Float(i as f64),
        Value::UInt(u) => Value::Float(u as f64),
        Value::List(items) => Value::List(Arc::new(
            items.iter().cloned().map(numbers_as_doubles).collect(),
        )),
        Value::Map(map) => Value::Map(Map {
            map: Arc::new(
                map.map
                    .iter()
                    .map(|(k, v)| (k.clone(), numbers_as_doubles(v.clone())))
                    .collect(),
            ),
        }),
        other => other,
    }
}

fn list_and_index<'a>(
    function: &str,
    args: &'a [Value],
    count: usize,
) -> Result<(&'a [Value], i64), ExecutionError> {
    match args {
        [Value::List(list), Value::Int(index), ..] if args.len() == count => {
            Ok((list.as_slice(), *index))
        }
        _ => Err(error(
            function,
            format!(
                "{function}: expects (list, int{})",
                if count == 3 { ", value" } else { "" }
            ),
        )),
    }
}

fn out_of_bounds(function: &str, index: i64, size: usize, closed: bool) -> ExecutionError {
    let end = if closed { ']' } else { ')' };
    error(
        function,
        format!("{function}: index {index} out of bounds [0, {size}{end}"),
    )
}

fn list_set_at(Arguments(args): Arguments) -> ResolveResult {
    const F: &str = "lists.setAtIndex";
    let (list, index) = list_and_index(F, &args, 3)?;
    if index < 0 || index as usize >= list.len() {
        return Err(out_of_bounds(F, index, list.len(), false));
    }
    let mut out = list.to_vec();
    out[index as usize] = args[2].clone();
    Ok(Value::List(Arc::new(out)))
}

fn list_insert_at(Arguments(args): Arguments) -> ResolveResult {
    const F: &str = "lists.insertAtIndex";
    let (list, index) = list_and_index(F, &args, 3)?;
    if index < 0 || index as usize > list.len() {
        return Err(out_of_bounds(F, index, list.len(), true));
    }
    let mut out = list.to_vec();
    out.insert(index as usize, args[2].clone());
    Ok(Value::List(Arc::new(out)))
}

fn list_remove_at(Arguments(args): Arguments) -> ResolveResult {
    const F: &str = "lists.removeAtIndex";
    let (list, index) = list_and_index(F, &args, 2)?;
    if index < 0 || index as usize >= list.len() {
        return Err(out_of_bounds(F, index, list.len(), false));
    }
    let mut out = list.to_vec();
    out.remove(index as usize);
    Ok(Value::List(Arc::new(out)))
}

fn two_maps<'a>(
    function: &str,
    this: &'a Value,
    other: &'a Value,
) -> Result<(&'a Map, &'a Map), ExecutionError> {
    match (this, other) {
        (Value::Map(a), Value::Map(b)) => Ok((a, b)),
        _ => Err(error(
            function,
            format!("no such overload: {function} takes a map and a map"),
        )),
    }
}

/// `a.merge(b)`: the keys of both, `b`'s value where both have one.
fn map_merge(This(this): This<Value>, other: Value) -> ResolveResult {
    let (a, b) = two_maps("merge", &this, &other)?;
    let mut out: HashMap<Key, Value> = (*b.map).clone();
    for (k, v) in a.map.iter() {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Ok(Value::Map(Map { map: Arc::new(out) }))
}

/// `a.deepMerge(b)`: as `merge`, but where both values are maps they are
/// merged in turn.
fn map_deep_merge(This(this): This<Value>, other: Value) -> ResolveResult {
    let (a, b) = two_maps("deepMerge", &this, &other)?;
    Ok(Value::Map(deep_merge(a, b)))
}

fn deep_merge(a: &Map, b: &Map) -> Map {
    if b.map.is_empty() {
        return a.clone();
    }
    if a.map.is_empty() {
        return b.clone();
    }
    let mut out: HashMap<Key, Value> = (*a.map).clone();
    for (k, bv) in b.map.iter() {
        let merged = match (out.get(k), bv) {
            (Some(Value::Map(am)), Value::Map(bm)) => Value::Map(deep_merge(am, bm)),
            _ => bv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Map { map: Arc::new(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv64a_matches_the_published_vectors() {
        // FNV-1a 64 of "" and "a" (from the FNV reference test vectors).
        assert_eq!(fnv64a(b""), 0xcbf29ce484222325u64.to_be_bytes());
        assert_eq!(fnv64a(b"a"), 0xaf63dc4c8601ec8cu64.to_be_bytes());
    }

    #[test]
    fn seeded_string_repeats_every_eight_characters_as_kro_does() {
        let Value::String(s) = seeded_string(20, Arc::new("seed".into())).unwrap() else {
            panic!("not a string")
        };
        assert_eq!(s.len(), 20);
        assert_eq!(&s[..8], &s[8..16]);
        assert!(s.bytes().all(|b| ALPHANUMERIC.contains(&b)));
    }

    #[test]
    fn json_marshal_escapes_html_as_go_does() {
        assert_eq!(
            escape_html(r#"{"a":"<b>&"}"#),
            r#"{"a":"\u003cb\u003e\u0026"}"#
        );
    }
}
