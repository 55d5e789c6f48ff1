//! Values as Helm computes them: user values (`-f` files, then `--set`,
//! `--set-string`) over chart defaults, coalesced into every subchart with
//! its `global` table (`pkg/chart/common/util/coalesce.go`, Helm 4.1).

use std::collections::BTreeMap;

use gitplane_gotemplate::{Dict, Value};

use super::chart::Chart;

/// A fresh map.
pub fn empty() -> Dict {
    Dict::new(BTreeMap::new())
}

/// The chart's defaults under `user` (changed in place), then each
/// subchart's under `user[<name>]` with the parent's globals.
pub fn coalesce(chart: &Chart, user: &Dict, names: &[String]) {
    coalesce_values(chart.values.read_only(), user);
    for (sub, name) in chart.dependencies.iter().zip(names) {
        let section = match user.get(name) {
            Some(Value::Map(d)) => d,
            Some(Value::Nil) | None => {
                let d = empty();
                user.insert(name.clone(), Value::Map(d.clone()));
                d
            }
            // A scalar where a subchart's table belongs: Helm keeps it.
            Some(_) => continue,
        };
        coalesce_globals(&section, user);
        let sub_names: Vec<String> = sub
            .dependencies
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        coalesce(sub, &section, &sub_names);
    }
}

/// `coalesceValues`: defaults fill what the user left out (copies of
/// them: `defaults` are not changed); a user `null` deletes the key.
fn coalesce_values(defaults: &Dict, user: &Dict) {
    for (key, default) in defaults.unordered_entries() {
        match user.get(&key) {
            None => user.insert(key, default.deep_copy()),
            Some(Value::Nil) => {
                user.remove(&key);
            }
            Some(Value::Map(dst)) => {
                if let Value::Map(src) = default {
                    coalesce_tables(&dst, &src);
                }
            }
            Some(_) => {}
        }
    }
}

/// `coalesceTablesFullKey`: `dst` is authoritative; a `null` in `dst`
/// removes the key, missing keys come from `src` (copied: `src` is not
/// changed, nor shared with `dst`), tables merge.
pub fn coalesce_tables(dst: &Dict, src: &Dict) {
    for (key, value) in src.unordered_entries() {
        match dst.get(&key) {
            Some(Value::Nil) => {
                dst.remove(&key);
            }
            None => dst.insert(key, value.deep_copy()),
            Some(Value::Map(d)) => {
                if let Value::Map(s) = value {
                    coalesce_tables(&d, &s);
                }
            }
            Some(_) => {}
        }
    }
}

/// `coalesceGlobals`: the parent's `global` table copied into the
/// subchart's (the parent wins for scalars, tables merge).
fn coalesce_globals(sub: &Dict, parent: &Dict) {
    let parent_globals = match parent.get("global") {
        Some(Value::Map(d)) => d,
        _ => empty(),
    };
    let sub_globals = match sub.get("global") {
        Some(Value::Map(d)) => d,
        _ => empty(),
    };
    for (key, value) in parent_globals.unordered_entries() {
        match (&value, sub_globals.get(&key)) {
            (Value::Map(src), Some(Value::Map(dst))) => {
                let merged = src.deep_copy();
                coalesce_tables(&merged, &dst);
                sub_globals.insert(key, Value::Map(merged));
            }
            _ => sub_globals.insert(key, value.deep_copy()),
        }
    }
    sub.insert("global".into(), Value::Map(sub_globals));
}

/// `MergeMaps` of user values: later values win, tables merge.
pub fn merge_into(dst: &Dict, src: &Dict) {
    for (key, value) in src.unordered_entries() {
        match (dst.get(&key), value) {
            (Some(Value::Map(d)), Value::Map(s)) => merge_into(&d, &s),
            (_, value) => dst.insert(key, value),
        }
    }
}

/// Applies one `--set` (or `--set-string`) argument: `a.b=v,c[0]=w,d={x,y}`.
pub fn apply_set(values: &Dict, text: &str, as_string: bool) -> Result<(), String> {
    for assignment in split_unescaped(text, ',', true) {
        if assignment.is_empty() {
            continue;
        }
        let (path, raw) = assignment
            .split_once('=')
            .ok_or_else(|| format!("key {assignment:?} has no value"))?;
        let value = if raw.starts_with('{') && raw.ends_with('}') {
            let inner = &raw[1..raw.len() - 1];
            Value::list(
                split_unescaped(inner, ',', false)
                    .iter()
                    .map(|v| typed(&unescape(v), as_string))
                    .collect(),
            )
        } else {
            typed(&unescape(raw), as_string)
        };
        set_path(values, &parse_path(path)?, value)?;
    }
    Ok(())
}

/// Applies one `--set-json` argument: `a.b={"x":1},c=[1,2]` (each value
/// JSON, numbers as float64 as Go's `encoding/json` reads them), or a whole
/// JSON object merged at the top (`{"a":{"b":1}}`).
pub fn apply_set_json(values: &Dict, text: &str) -> Result<(), String> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let object: serde_json::Value = serde_json::from_str(trimmed)
            .map_err(|e| format!("failed parsing --set-json data JSON: {e}"))?;
        if let Value::Map(table) = Value::from_json(&object) {
            merge_into(values, &table);
        }
        return Ok(());
    }
    let mut rest = text;
    while !rest.is_empty() {
        let (path, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("key {rest:?} has no value"))?;
        let mut stream = serde_json::Deserializer::from_str(after).into_iter::<serde_json::Value>();
        let json = match stream.next() {
            Some(Ok(json)) => json,
            Some(Err(e)) => return Err(format!("key {path:?}: the value is not JSON: {e}")),
            None => return Err(format!("key {path:?} has no value")),
        };
        set_path(values, &parse_path(path)?, Value::from_json(&json))?;
        let tail = after[stream.byte_offset()..].trim_start();
        rest = match tail.strip_prefix(',') {
            Some(next) => next,
            None if tail.is_empty() => tail,
            None => {
                return Err(format!(
                    "key {path:?}: unexpected {tail:?} after the JSON value"
                ));
            }
        };
    }
    Ok(())
}

/// Applies one `--set-literal` argument: everything after the first `=` is
/// the string value, commas and backslashes included.
pub fn apply_set_literal(values: &Dict, text: &str) -> Result<(), String> {
    let (path, raw) = text
        .split_once('=')
        .ok_or_else(|| format!("key {text:?} has no value"))?;
    set_path(values, &parse_path(path)?, Value::from(raw.to_string()))
}

/// Places `table` at the dotted `path` of `values` (at the top when empty),
/// merged into what is there.
pub fn set_table(values: &Dict, path: &str, table: Dict) {
    let mut current = values.clone();
    for key in path.split('.').filter(|k| !k.is_empty()) {
        current = match current.get(key) {
            Some(Value::Map(d)) => d,
            _ => {
                let d = empty();
                current.insert(key.to_string(), Value::Map(d.clone()));
                d
            }
        };
    }
    merge_into(&current, &table);
}

/// Sets `key` (a `--set` path) to a string as is (`--set-file`).
pub fn set_string_value(values: &Dict, key: &str, text: String) -> Result<(), String> {
    set_path(values, &parse_path(key)?, Value::from(text))
}

/// Splits at `sep` not escaped by `\` (and, at the top, not inside `{}`).
fn split_unescaped(text: &str, sep: char, braces: bool) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push('\\');
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c == sep && depth == 0 => parts.push(std::mem::take(&mut current)),
            c => {
                if braces && c == '{' {
                    depth += 1;
                } else if braces && c == '}' {
                    depth = depth.saturating_sub(1);
                }
                current.push(c);
            }
        }
    }
    parts.push(current);
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `--set` typing (`strvals.typedVal`): booleans, `null`, integers not
/// starting with `0` (and `0`) as int64; everything else a string.
fn typed(text: &str, as_string: bool) -> Value {
    if as_string {
        return text.into();
    }
    match text.to_ascii_lowercase().as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if text == "null" {
        return Value::Nil;
    }
    if text == "0" {
        return Value::Int64(0);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.starts_with('0')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = text.parse()
    {
        return Value::Int64(n);
    }
    text.into()
}

/// One step of a `--set` key: a map key or a list index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for part in split_unescaped(path, '.', false) {
        let part = part.as_str();
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            steps.push(Step::Key(unescape(name)));
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let n = index
                .strip_suffix(']')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| format!("bad index in key {path:?}"))?;
            if n > 65_536 {
                return Err(format!("index {n} in key {path:?} is too large"));
            }
            steps.push(Step::Index(n));
        }
    }
    if steps.is_empty() {
        return Err(format!("key {path:?} is empty"));
    }
    Ok(steps)
}

fn set_path(values: &Dict, steps: &[Step], value: Value) -> Result<(), String> {
    let mut current = Value::Map(values.clone());
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        let next_is_index = matches!(steps.get(i + 1), Some(Step::Index(_)));
        let fresh = || {
            if next_is_index {
                Value::list(Vec::new())
            } else {
                Value::Map(empty())
            }
        };
        match (step, &current) {
            (Step::Key(key), Value::Map(map)) => {
                if last {
                    map.insert(key.clone(), value);
                    return Ok(());
                }
                let child = match map.get(key) {
                    Some(v @ (Value::Map(_) | Value::List(_))) => v,
                    _ => {
                        let v = fresh();
                        map.insert(key.clone(), v.clone());
                        v
                    }
                };
                current = child;
            }
            (Step::Index(n), Value::List(_)) => {
                // Lists are values: rebuild and store back through the parent.
                return set_in_list(values, &steps[..i], *n, &steps[i + 1..], value);
            }
            _ => return Err("a --set key crosses a value that is not a map or a list".into()),
        }
    }
    Ok(())
}

/// Sets `rest` inside element `n` of the list at `parent` (grown with nils).
fn set_in_list(
    root: &Dict,
    parent: &[Step],
    n: usize,
    rest: &[Step],
    value: Value,
) -> Result<(), String> {
    let Some((Step::Key(key), path)) = parent.split_last() else {
        return Err("a --set index must follow a key".into());
    };
    let mut holder = root.clone();
    for step in path {
        let Step::Key(k) = step else {
            return Err("nested list indexes in --set are not supported".into());
        };
        holder = match holder.get(k) {
            Some(Value::Map(d)) => d,
            _ => return Err("a --set key crosses a value that is not a map".into()),
        };
    }
    let mut items = match holder.get(key) {
        Some(Value::List(items)) => items.to_vec(),
        _ => Vec::new(),
    };
    while items.len() <= n {
        items.push(Value::Nil);
    }
    if rest.is_empty() {
        items[n] = value;
    } else {
        let element = match &items[n] {
            Value::Map(d) => d.clone(),
            _ => empty(),
        };
        set_path(&element, rest, value)?;
        items[n] = Value::Map(element);
    }
    holder.insert(key.clone(), Value::list(items));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn set_json_and_set_literal_as_helm_parses_them() {
        let values = empty();
        apply_set_json(&values, r#"a.b={"x":[1,true]},c[1]="s",d=null"#).unwrap();
        apply_set_json(&values, r#" {"a":{"y":2}} "#).unwrap();
        apply_set_literal(&values, r"e.f=x,y\z=1").unwrap();
        assert_eq!(
            Value::Map(values.clone()).to_json().unwrap(),
            serde_json::json!({"a": {"b": {"x": [1, true]}, "y": 2}, "c": [null, "s"], "d": null, "e": {"f": "x,y\\z=1"}})
        );
        // JSON numbers are float64, as Go's encoding/json reads them.
        let Some(Value::Map(a)) = values.get("a") else {
            panic!("a is a map")
        };
        assert!(matches!(a.get("y"), Some(Value::Float(f)) if f == 2.0));
        assert!(
            apply_set_json(&empty(), "a={")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            apply_set_json(&empty(), "a=1 b=2")
                .unwrap_err()
                .contains("unexpected")
        );
        assert!(apply_set_literal(&empty(), "novalue").is_err());
    }

    use super::*;
    use gitplane_gotemplate::fmt::print_value;

    fn set(args: &[&str]) -> String {
        let values = empty();
        for a in args {
            apply_set(&values, a, false).unwrap();
        }
        print_value(&Value::Map(values))
    }

    #[test]
    fn set_flags_as_helm_types_them() {
        assert_eq!(
            set(&["a.b=1,c=true,d=0777,e=null,f=x\\,y"]),
            "map[a:map[b:1] c:true d:0777 e:<nil> f:x,y]"
        );
        assert_eq!(
            set(&["l={a,b}", "m[1].n=2"]),
            "map[l:[a b] m:[<nil> map[n:2]]]"
        );
        let values = empty();
        apply_set(&values, "n=1", false).unwrap();
        assert_eq!(
            values.get("n").map(|v| v.type_name().to_string()),
            Some("int64".into())
        );
        apply_set(&values, "n=1", true).unwrap();
        assert_eq!(
            values.get("n").map(|v| v.type_name().to_string()),
            Some("string".into())
        );
    }

    #[test]
    fn user_values_win_and_null_deletes() {
        let defaults = Dict::new(BTreeMap::from([
            ("a".to_string(), Value::Float(1.0)),
            ("b".to_string(), Value::Float(2.0)),
            (
                "t".to_string(),
                Value::map(BTreeMap::from([
                    ("x".to_string(), Value::Float(1.0)),
                    ("y".to_string(), Value::Float(2.0)),
                ])),
            ),
        ]));
        let user = empty();
        apply_set(&user, "a=9,b=null,t.y=null", false).unwrap();
        coalesce_values(&defaults, &user);
        assert_eq!(print_value(&Value::Map(user)), "map[a:9 t:map[x:1]]");
    }
}
