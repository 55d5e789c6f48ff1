//! Field ownership: `metadata.managedFields` and server-side apply.
//!
//! Every write records who set which fields. An ordinary write (create, update,
//! patch) makes its field manager the owner of the fields it changed, taking them
//! from other managers. A server-side apply declares the complete set of fields
//! the applier wants to own: the server merges them into the object, refuses
//! (409) to change a field another manager owns unless `force` is set (which
//! transfers ownership), lets managers that set a field to the same value share
//! it, and removes fields the applier set before but no longer applies, unless
//! someone else owns them.
//!
//! Stored objects keep each entry's `fieldsV1` as compact JSON text: as a tree
//! of maps it took about ten times its text, nearly half of a stored Pod.
//! [`Served`] writes it out as the JSON object clients expect.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value, json};

use crate::fields::{FieldSet, ListType, Shape, display_path, remove_at, value_at};
use gitplane_object::smp::structured::merge;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// API version the fields were set through.
    pub api_version: String,
    /// When, RFC 3339.
    pub time: String,
    /// `status` for writes to the status subresource.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

/// Reads `metadata.managedFields`.
pub fn read_entries(object: &Value) -> Vec<Entry> {
    let Some(entries) = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            Some(Entry {
                manager: e.get("manager")?.as_str()?.to_string(),
                operation: e
                    .get("operation")
                    .and_then(Value::as_str)
                    .unwrap_or("Update")
                    .to_string(),
                api_version: e
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                time: e
                    .get("time")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                fields: fields_v1_of(e),
            })
        })
        .collect()
}

/// An entry's owned fields, from the compact text the store keeps or from
/// the JSON object a client sent.
fn fields_v1_of(entry: &Value) -> FieldSet {
    match entry.get("fieldsV1") {
        Some(Value::String(text)) => {
            FieldSet::from_fields_v1(&serde_json::from_str(text).unwrap_or(Value::Null))
        }
        Some(tree) => FieldSet::from_fields_v1(tree),
        None => FieldSet::default(),
    }
}

/// `fieldsV1` as the store keeps it: compact JSON text.
fn compact_fields_v1(fields: &FieldSet) -> Value {
    Value::String(fields.to_fields_v1().to_string())
}

/// Writes `metadata.managedFields` (removing it when there are no entries).
pub fn write_entries(object: &mut Value, entries: &[Entry]) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut entry = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": compact_fields_v1(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                entry["subresource"] = json!(sub);
            }
            entry
        })
        .collect();
    if list.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// A stored object as clients see it: every `fieldsV1` kept as compact text
/// is written out as the JSON object it holds. Serializes without copying
/// the object.
pub struct Served<'a>(pub &'a Value);

impl Serialize for Served<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Expanded(self.0, Level::Object).serialize(s)
    }
}

/// Where in an object [`Expanded`] is: the path down to `fieldsV1`.
#[derive(Clone, Copy)]
enum Level {
    Object,
    Metadata,
    ManagedFields,
    Entry,
}

impl Level {
    /// The level under `key` of a map at this level, if still on the path.
    fn under(self, key: &str) -> Option<Level> {
        match (self, key) {
            (Level::Object, "metadata") => Some(Level::Metadata),
            (Level::Metadata, "managedFields") => Some(Level::ManagedFields),
            _ => None,
        }
    }
}

struct Expanded<'a>(&'a Value, Level);

impl Serialize for Expanded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Expanded(value, level) = *self;
        match (value, level) {
            (Value::Array(entries), Level::ManagedFields) => {
                let mut seq = s.serialize_seq(Some(entries.len()))?;
                for entry in entries {
                    seq.serialize_element(&Expanded(entry, Level::Entry))?;
                }
                seq.end()
            }
            (Value::Object(map), Level::Entry) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("fieldsV1", Value::String(text)) => {
                            let tree: Value = serde_json::from_str(text)
                                .unwrap_or_else(|_| Value::String(text.clone()));
                            out.serialize_entry(key, &tree)?
                        }
                        _ => out.serialize_entry(key, value)?,
                    }
                }
                out.end()
            }
            (Value::Object(map), _) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                for (key, value) in map {
                    match level.under(key) {
                        Some(next) => out.serialize_entry(key, &Expanded(value, next))?,
                        None => out.serialize_entry(key, value)?,
                    }
                }
                out.end()
            }
            _ => value.serialize(s),
        }
    }
}

/// Which part of an object a write touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything (types without a status subresource).
    Whole,
    /// Everything but `status` (the main resource of a type with a status subresource).
    MainResource,
    /// Only `status`.
    Status,
}

/// The fields of `object` that ownership is tracked for.
pub fn tracked(object: &Value, shape: Shape<'_>, part: Part) -> FieldSet {
    tracked_of(FieldSet::of(object, shape), part)
}

/// The tracked fields of an object's fields.
fn tracked_of(fields: FieldSet, part: Part) -> FieldSet {
    let mut set = fields.without(&[
        &["apiVersion"],
        &["kind"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "uid"],
        &["metadata", "resourceVersion"],
        &["metadata", "generation"],
        &["metadata", "creationTimestamp"],
        &["metadata", "deletionTimestamp"],
        &["metadata", "deletionGracePeriodSeconds"],
        &["metadata", "managedFields"],
        &["metadata", "selfLink"],
    ]);
    match part {
        Part::Whole => {}
        Part::MainResource => {
            set.children.remove("f:status");
        }
        Part::Status => set.children.retain(|k, _| k == "f:status"),
    }
    set
}

fn from_paths(paths: &[Vec<String>]) -> FieldSet {
    let mut set = FieldSet::default();
    for path in paths {
        let mut node = &mut set;
        for (i, element) in path.iter().enumerate() {
            node = node.children.entry(element.clone()).or_default();
            if i + 1 == path.len() && element.starts_with("k:") {
                node.itself = true;
            }
        }
    }
    set
}

/// Fields of `new` that are not in `old` or have another value there.
fn changed_fields(old: Option<&Value>, new: &Value, new_set: &FieldSet) -> FieldSet {
    let paths: Vec<Vec<String>> = new_set
        .leaves()
        .into_iter()
        .filter(|path| {
            let before = old.and_then(|o| value_at(o, path));
            let after = value_at(new, path);
            match (before, after) {
                // A list element or map that existed before is not itself a change.
                (Some(_), Some(_)) if path.last().is_some_and(|e| e.starts_with("k:")) => false,
                (b, a) => b != a,
            }
        })
        .collect();
    from_paths(&paths)
}

/// Keeps every entry to fields that still exist and drops empty entries.
fn prune(entries: &mut Vec<Entry>, present: &FieldSet) {
    for e in entries.iter_mut() {
        e.fields = e.fields.intersection(present);
    }
    entries.retain(|e| !e.fields.is_empty());
}

/// Records an ordinary write (create, update, patch) by `manager`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    shape: Shape<'_>,
    part: Part,
    manager: &str,
    api_version: &str,
    now: &str,
) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let present = FieldSet::of(new, shape);
    let new_set = tracked_of(present.clone(), part);
    let changed = changed_fields(old, new, &new_set);
    let subresource = (part == Part::Status).then(|| "status".to_string());
    for e in entries.iter_mut() {
        if e.manager != manager || e.operation != "Update" || e.subresource != subresource {
            e.fields = e.fields.difference(&changed);
        }
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        }) {
            Some(e) => {
                e.fields = e.fields.union(&changed);
                e.time = now.to_string();
                e.api_version = api_version.to_string();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now.to_string(),
                subresource,
                fields: changed,
            }),
        }
    }
    prune(&mut entries, &present);
    write_entries(new, &entries);
}

/// A server-side apply request.
pub struct Apply<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// API version of the applied configuration.
    pub api_version: &'a str,
    /// Which part is applied.
    pub part: Part,
    /// Take ownership of conflicting fields.
    pub force: bool,
    /// Now, RFC 3339.
    pub now: &'a str,
}

/// Applies `config` to `live` (or creates it). On conflicts, returns them as
/// (manager, field path) pairs.
pub fn apply(
    live: &Value,
    config: &Value,
    shape: Shape<'_>,
    request: &Apply<'_>,
) -> Result<Value, Vec<(String, String)>> {
    let config_set = tracked(config, shape, request.part);
    let mut entries = read_entries(live);
    let subresource = (request.part == Part::Status).then(|| "status".to_string());
    let mine = |e: &Entry| {
        e.manager == request.manager && e.operation == "Apply" && e.subresource == subresource
    };

    let mut conflicts = Vec::new();
    let mut taken = FieldSet::default();
    for e in entries.iter().filter(|e| e.manager != request.manager) {
        for path in e.fields.intersection(&config_set).leaves() {
            if value_at(live, &path) != value_at(config, &path) {
                conflicts.push((e.manager.clone(), display_path(&path)));
                taken = taken.union(&from_paths(std::slice::from_ref(&path)));
            }
        }
    }
    if !conflicts.is_empty() && !request.force {
        return Err(conflicts);
    }
    for e in entries.iter_mut().filter(|e| e.manager != request.manager) {
        e.fields = e.fields.difference(&taken);
    }

    let mut merged = merge(live.clone(), config, shape, &ListType::Atomic);
    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for path in previous.difference(&config_set).leaves() {
        // Kept when still owned: by the new config (an empty map it now fills,
        // say) or by another manager.
        let still_owned = config_set.touches(&path)
            || entries
                .iter()
                .filter(|e| !mine(e))
                .any(|e| e.fields.touches(&path));
        if !still_owned {
            remove_at(&mut merged, &path);
        }
    }
    entries.retain(|e| !mine(e));
    entries.push(Entry {
        manager: request.manager.to_string(),
        operation: "Apply".into(),
        api_version: request.api_version.to_string(),
        time: request.now.to_string(),
        subresource,
        fields: config_set,
    });
    let present = FieldSet::of(&merged, shape);
    prune(&mut entries, &present);
    write_entries(&mut merged, &entries);
    Ok(merged)
}

/// A new object to apply into: type and identity only.
pub fn empty_object(config: &Value) -> Value {
    let mut object = Map::new();
    for field in ["apiVersion", "kind"] {
        if let Some(v) = config.get(field) {
            object.insert(field.into(), v.clone());
        }
    }
    object.insert("metadata".into(), json!({}));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::smp::root_for;

    fn shape() -> Shape<'static> {
        Shape::BuiltIn(root_for("", "ConfigMap"))
    }

    fn request(manager: &str, force: bool) -> Apply<'_> {
        Apply {
            manager,
            api_version: "v1",
            part: Part::Whole,
            force,
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data})
    }

    #[test]
    fn apply_records_ownership_and_removes_dropped_fields() {
        let live = empty_object(&cm(json!({})));
        let one = apply(
            &live,
            &cm(json!({"a": "1", "b": "2"})),
            shape(),
            &request("kubectl", false),
        )
        .unwrap();
        assert_eq!(one["data"], json!({"a": "1", "b": "2"}));
        let served = serde_json::to_value(Served(&one)).unwrap();
        assert_eq!(
            served["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        );
        assert!(
            one["metadata"]["managedFields"][0]["fieldsV1"].is_string(),
            "stored as compact text"
        );
        let two = apply(
            &one,
            &cm(json!({"a": "1"})),
            shape(),
            &request("kubectl", false),
        )
        .unwrap();
        assert_eq!(
            two["data"],
            json!({"a": "1"}),
            "b was dropped from the config"
        );
    }

    #[test]
    fn conflicts_with_other_managers_unless_forced() {
        let live = apply(
            &empty_object(&cm(json!({}))),
            &cm(json!({"a": "1"})),
            shape(),
            &request("kubectl", false),
        )
        .unwrap();
        let mut patched = live.clone();
        patched["data"]["a"] = json!("9");
        record_update(
            Some(&live),
            &mut patched,
            shape(),
            Part::Whole,
            "kubectl-patch",
            "v1",
            "t",
        );
        let conflicts = apply(
            &patched,
            &cm(json!({"a": "1"})),
            shape(),
            &request("kubectl", false),
        )
        .unwrap_err();
        assert_eq!(
            conflicts,
            [("kubectl-patch".to_string(), ".data.a".to_string())]
        );
        let forced = apply(
            &patched,
            &cm(json!({"a": "1"})),
            shape(),
            &request("kubectl", true),
        )
        .unwrap();
        assert_eq!(forced["data"]["a"], "1");
        let managers: Vec<_> = read_entries(&forced)
            .into_iter()
            .map(|e| e.manager)
            .collect();
        assert_eq!(managers, ["kubectl"], "kubectl-patch lost its only field");
    }

    #[test]
    fn equal_values_are_shared_and_survive_one_owner_dropping_them() {
        let base = apply(
            &empty_object(&cm(json!({}))),
            &cm(json!({"a": "1"})),
            shape(),
            &request("one", false),
        )
        .unwrap();
        let shared = apply(
            &base,
            &cm(json!({"a": "1"})),
            shape(),
            &request("two", false),
        )
        .unwrap();
        assert_eq!(read_entries(&shared).len(), 2);
        let dropped = apply(&shared, &cm(json!({})), shape(), &request("one", false)).unwrap();
        assert_eq!(dropped["data"]["a"], "1", "still owned by two");
    }

    #[test]
    fn updates_take_the_fields_they_change() {
        let old = cm(json!({"a": "1"}));
        let mut created = old.clone();
        record_update(
            None,
            &mut created,
            shape(),
            Part::Whole,
            "creator",
            "v1",
            "t",
        );
        let mut updated = created.clone();
        updated["data"]["b"] = json!("2");
        record_update(
            Some(&created),
            &mut updated,
            shape(),
            Part::Whole,
            "editor",
            "v1",
            "t",
        );
        let entries = read_entries(&updated);
        assert_eq!(
            entries[0].fields.to_fields_v1(),
            json!({"f:data": {"f:a": {}}})
        );
        assert_eq!(
            entries[1].fields.to_fields_v1(),
            json!({"f:data": {"f:b": {}}})
        );
    }

    #[test]
    fn map_lists_merge_by_key() {
        let shape = Shape::BuiltIn(root_for("apps", "Deployment"));
        let d = |containers: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": containers}}}});
        let live = apply(
            &empty_object(&d(json!([]))),
            &d(json!([{"name": "a", "image": "a:1"}])),
            shape,
            &request("one", false),
        )
        .unwrap();
        let both = apply(
            &live,
            &d(json!([{"name": "b", "image": "b:1"}])),
            shape,
            &request("two", false),
        )
        .unwrap();
        let names: Vec<_> = both["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, [json!("a"), json!("b")]);
    }

    #[test]
    fn owned_fields_are_read_from_text_and_from_objects() {
        let tree = json!({"f:data": {"f:a": {}}});
        let entry = |fields_v1: Value| {
            json!({"metadata": {"managedFields": [
                {"manager": "m", "operation": "Update", "fieldsV1": fields_v1}
            ]}})
        };
        // As the store keeps it, and as a client or an older store wrote it.
        let from_text = read_entries(&entry(Value::String(tree.to_string())));
        let from_object = read_entries(&entry(tree.clone()));
        assert_eq!(from_text, from_object);
        assert_eq!(from_text[0].fields.to_fields_v1(), tree);
        let served = serde_json::to_value(Served(&entry(Value::String(tree.to_string())))).unwrap();
        assert_eq!(served, entry(tree));
    }

    #[test]
    fn a_missing_protocol_key_is_tcp() {
        // Live ports were defaulted (protocol: TCP); an applied config that
        // leaves protocol out names the same element, not a new one.
        let shape = Shape::BuiltIn(root_for("", "Service"));
        let svc = |ports: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": ports}});
        let mut live = apply(
            &empty_object(&svc(json!([]))),
            &svc(json!([{"port": 80}])),
            shape,
            &request("kubectl", false),
        )
        .unwrap();
        live["spec"]["ports"][0]["protocol"] = json!("TCP");
        let again = apply(
            &live,
            &svc(json!([{"port": 80, "name": "http"}])),
            shape,
            &request("kubectl", false),
        )
        .unwrap();
        assert_eq!(
            again["spec"]["ports"],
            json!([{"port": 80, "protocol": "TCP", "name": "http"}])
        );
    }

    fn arb_data() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        proptest::collection::btree_map("[a-e]", "[a-z0-9]{0,4}", 0..5)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect()))
    }

    proptest::proptest! {
        #[test]
        fn the_result_holds_exactly_the_applied_config(first in arb_data(), second in arb_data()) {
            // One manager alone: whatever it applies last is what the object holds.
            let one = apply(&empty_object(&cm(json!({}))), &cm(first), shape(), &request("m", false)).unwrap();
            let two = apply(&one, &cm(second.clone()), shape(), &request("m", false)).unwrap();
            let data = two.get("data").cloned().unwrap_or(json!({}));
            proptest::prop_assert_eq!(data, second);
        }

        #[test]
        fn reapplying_is_a_no_op(config in arb_data()) {
            let once = apply(&empty_object(&cm(json!({}))), &cm(config.clone()), shape(), &request("m", false)).unwrap();
            let twice = apply(&once, &cm(config), shape(), &request("m", false)).unwrap();
            proptest::prop_assert_eq!(once, twice);
        }

        #[test]
        fn agreeing_managers_share_without_conflict(config in arb_data()) {
            // Applying the same values is co-ownership, never a conflict.
            let a = apply(&empty_object(&cm(json!({}))), &cm(config.clone()), shape(), &request("a", false)).unwrap();
            let b = apply(&a, &cm(config.clone()), shape(), &request("b", false));
            proptest::prop_assert!(b.is_ok(), "{:?}", b.err());
        }

        #[test]
        fn field_sets_round_trip_through_fields_v1(config in arb_data()) {
            let set = FieldSet::of(&cm(config), shape());
            proptest::prop_assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set);
        }
    }
}
