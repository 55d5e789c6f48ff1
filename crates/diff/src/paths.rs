//! Reading, removing and setting values at [`JsonPath`]s, and the paths a
//! JSON pointer or a `managedFields` entry names.

use serde_json::{Map, Value};

use crate::jq::{JsonPath, PathStep};

/// The value at a path.
pub fn get<'v>(value: &'v Value, path: &[PathStep]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, step| match (v, step) {
        (Value::Object(m), PathStep::Key(k)) => m.get(k),
        (Value::Array(a), PathStep::Index(i)) => a.get(*i),
        _ => None,
    })
}

/// Removes the value at a path; false if there was none.
pub fn remove(value: &mut Value, path: &[PathStep]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let parent = parents.iter().try_fold(value, |v, step| match (v, step) {
        (Value::Object(m), PathStep::Key(k)) => m.get_mut(k),
        (Value::Array(a), PathStep::Index(i)) => a.get_mut(*i),
        _ => None,
    });
    match (parent, last) {
        (Some(Value::Object(m)), PathStep::Key(k)) => m.shift_remove(k).is_some(),
        (Some(Value::Array(a)), PathStep::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// Removes several paths, deepest and last array elements first so earlier
/// removals do not shift the later ones.
pub fn remove_all(value: &mut Value, mut paths: Vec<JsonPath>) {
    paths.sort_by(|a, b| b.cmp(a));
    paths.dedup();
    for path in paths {
        remove(value, &path);
    }
}

/// Sets the value at a path, creating objects on the way (arrays must exist).
pub fn set(value: &mut Value, path: &[PathStep], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *value = new;
        return;
    };
    let mut node = value;
    for step in parents {
        node = match (node, step) {
            (Value::Object(m), PathStep::Key(k)) => m
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            (Value::Array(a), PathStep::Index(i)) if *i < a.len() => &mut a[*i],
            _ => return,
        };
    }
    match (node, last) {
        (Value::Object(m), PathStep::Key(k)) => {
            m.insert(k.clone(), new);
        }
        (Value::Array(a), PathStep::Index(i)) if *i < a.len() => a[*i] = new,
        _ => {}
    }
}

impl PartialOrd for PathStep {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathStep {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (PathStep::Key(a), PathStep::Key(b)) => a.cmp(b),
            (PathStep::Index(a), PathStep::Index(b)) => a.cmp(b),
            (PathStep::Key(_), PathStep::Index(_)) => std::cmp::Ordering::Less,
            (PathStep::Index(_), PathStep::Key(_)) => std::cmp::Ordering::Greater,
        }
    }
}

/// The path an RFC 6901 JSON pointer names in `value` (array indices are
/// resolved against it), or `None` if it names nothing there.
pub fn from_pointer(pointer: &str, value: &Value) -> Option<JsonPath> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let mut node = value;
    let mut path = Vec::new();
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        let step = match node {
            Value::Object(m) => {
                node = m.get(&token)?;
                PathStep::Key(token)
            }
            Value::Array(a) => {
                let i: usize = token.parse().ok()?;
                node = a.get(i)?;
                PathStep::Index(i)
            }
            _ => return None,
        };
        path.push(step);
    }
    Some(path)
}

/// The paths in `value` that a `fieldsV1` set owns, as whole subtrees where
/// the set owns an element or map itself (`.`), else leaf by leaf.
pub fn from_fields_v1(fields: &Value, value: &Value) -> Vec<JsonPath> {
    let mut out = Vec::new();
    collect_fields(fields, value, &mut Vec::new(), &mut out);
    out
}

fn collect_fields(fields: &Value, value: &Value, prefix: &mut JsonPath, out: &mut Vec<JsonPath>) {
    let Value::Object(entries) = fields else {
        return;
    };
    if entries.is_empty() || entries.contains_key(".") {
        if !prefix.is_empty() {
            out.push(prefix.clone());
        }
        return;
    }
    for (name, children) in entries {
        let Some((step, child)) = resolve_field(name, value) else {
            continue;
        };
        prefix.push(step);
        collect_fields(children, child, prefix, out);
        prefix.pop();
    }
}

/// One `fieldsV1` key (`f:name`, `k:{...}`, `v:value`, `i:N`) resolved in a value.
fn resolve_field<'v>(name: &str, value: &'v Value) -> Option<(PathStep, &'v Value)> {
    if let Some(field) = name.strip_prefix("f:") {
        let child = value.as_object()?.get(field)?;
        return Some((PathStep::Key(field.to_string()), child));
    }
    let items = value.as_array()?;
    let index = if let Some(key) = name.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        items
            .iter()
            .position(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?
    } else if let Some(v) = name.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        items.iter().position(|item| *item == v)?
    } else {
        name.strip_prefix("i:")?.parse().ok()?
    };
    Some((PathStep::Index(index), items.get(index)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathStep::{Index, Key};
    use serde_json::json;

    #[test]
    fn pointers_and_removal() {
        let mut v = json!({"spec": {"replicas": 3, "list": [1, 2, 3], "a/b": 1}});
        assert_eq!(
            from_pointer("/spec/replicas", &v),
            Some(vec![Key("spec".into()), Key("replicas".into())])
        );
        assert_eq!(from_pointer("/spec/a~1b", &v).map(|p| p.len()), Some(2));
        assert_eq!(from_pointer("/spec/missing", &v), None);
        let paths = vec![
            from_pointer("/spec/list/0", &v).unwrap(),
            from_pointer("/spec/list/2", &v).unwrap(),
        ];
        remove_all(&mut v, paths);
        assert_eq!(v["spec"]["list"], json!([2]));
        set(
            &mut v,
            &[Key("spec".into()), Key("new".into()), Key("x".into())],
            json!(1),
        );
        assert_eq!(v["spec"]["new"]["x"], 1);
    }

    #[test]
    fn field_sets_name_paths() {
        let live = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [
            {"name": "app", "image": "a"}, {"name": "proxy", "image": "p"}]}}}});
        let fields = json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}});
        let paths = from_fields_v1(&fields, &live);
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0], vec![Key("spec".into()), Key("replicas".into())]);
        assert_eq!(paths[1].last(), Some(&Index(1)), "the whole owned element");
    }
}
