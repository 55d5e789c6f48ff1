//! Field specs: "which field of which kinds" a transformer touches, written
//! `spec/template/metadata/labels`. A segment ending in `[]` walks every element
//! of a list; any list met on the way is walked element by element as well; `\/`
//! escapes a slash inside a key (annotation names). With `create`, missing maps on
//! the way (and the leaf) are created.

use gitplane_object::{Gvk, Object, Value};
use serde_json::Map;

use super::file::FieldSpecArgs;

/// A field path for the kinds it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Group to match, empty for any.
    pub group: String,
    /// Version to match, empty for any.
    pub version: String,
    /// Kind to match, empty for any.
    pub kind: String,
    /// The path, split into segments.
    pub path: Vec<Segment>,
    /// The path as written (for messages and de-duplication).
    pub path_text: String,
    /// Create missing fields.
    pub create: bool,
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The field name.
    pub name: String,
    /// Written with `[]`: the field holds a list whose elements are walked.
    pub list: bool,
}

impl FieldSpec {
    /// A spec for any kind.
    pub fn any(path: &str, create: bool) -> Self {
        FieldSpec::new("", "", "", path, create)
    }

    /// A spec for one kind (and optionally group and version).
    pub fn new(group: &str, version: &str, kind: &str, path: &str, create: bool) -> Self {
        FieldSpec {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            path: parse_path(path),
            path_text: path.into(),
            create,
        }
    }

    /// From a kustomization or `configurations` file.
    pub fn from_args(args: &FieldSpecArgs) -> Self {
        FieldSpec::new(
            &args.group,
            &args.version,
            &args.kind,
            &args.path,
            args.create,
        )
    }

    /// True if the spec applies to objects of this type.
    pub fn applies_to(&self, gvk: &Gvk) -> bool {
        (self.group.is_empty() || self.group == gvk.group)
            && (self.version.is_empty() || self.version == gvk.version)
            && (self.kind.is_empty() || self.kind == gvk.kind)
    }

    /// True for the same path on the same type selector.
    pub fn same_target(&self, other: &FieldSpec) -> bool {
        self.group == other.group
            && self.version == other.version
            && self.kind == other.kind
            && self.path_text == other.path_text
    }
}

fn parse_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                current.push('/');
                chars.next();
            }
            '/' => segments.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    segments.push(current);
    segments
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_suffix("[]") {
            Some(name) => Segment {
                name: name.to_string(),
                list: true,
            },
            None => Segment {
                name: s,
                list: false,
            },
        })
        .collect()
}

/// Calls `visit` on every value the path reaches in `node`. With `create`,
/// missing maps are created, and a missing leaf is created with `new_leaf()`.
/// Lists met on the way are walked element by element.
pub fn visit_field(
    node: &mut Value,
    path: &[Segment],
    create: bool,
    new_leaf: &dyn Fn() -> Value,
    visit: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    if let Value::Array(items) = node {
        for item in items {
            visit_field(item, path, create, new_leaf, visit)?;
        }
        return Ok(());
    }
    let Some((segment, rest)) = path.split_first() else {
        return visit(node);
    };
    let Value::Object(map) = node else {
        return Ok(());
    };
    let missing = map.get(&segment.name).is_none_or(Value::is_null);
    if missing {
        if !create || segment.list {
            return Ok(());
        }
        let created = if rest.is_empty() {
            new_leaf()
        } else {
            Value::Object(Map::new())
        };
        map.insert(segment.name.clone(), created);
    }
    let Some(child) = map.get_mut(&segment.name) else {
        return Ok(());
    };
    if segment.list {
        let Value::Array(items) = child else {
            return Ok(());
        };
        for item in items {
            visit_field(item, rest, create, new_leaf, visit)?;
        }
        return Ok(());
    }
    visit_field(child, rest, create, new_leaf, visit)
}

/// [`visit_field`] on an object's body, for a field spec.
pub fn visit_object_field(
    object: &mut Object,
    spec: &FieldSpec,
    create: bool,
    new_leaf: &dyn Fn() -> Value,
    visit: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let mut body = Value::Object(std::mem::take(object.body_mut()));
    let result = visit_field(&mut body, &spec.path, create, new_leaf, visit);
    if let Value::Object(map) = body {
        *object.body_mut() = map;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_all(value: &mut Value, path: &str, create: bool) {
        let spec = FieldSpec::any(path, create);
        visit_field(value, &spec.path, create, &|| json!({}), &mut |v| {
            if let Value::Object(m) = v {
                m.insert("x".into(), json!("1"));
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn walks_lists_and_creates_maps() {
        let mut v = json!({"spec": {"volumeClaimTemplates": [{"metadata": {}}, {}]}});
        set_all(&mut v, "spec/volumeClaimTemplates[]/metadata/labels", true);
        assert_eq!(
            v["spec"]["volumeClaimTemplates"],
            json!([{"metadata": {"labels": {"x": "1"}}}, {"metadata": {"labels": {"x": "1"}}}])
        );
        let mut v = json!({"spec": {}});
        set_all(&mut v, "spec/template/metadata/labels", false);
        assert_eq!(v, json!({"spec": {}}));
    }

    #[test]
    fn escaped_slashes() {
        let spec = FieldSpec::any(
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret",
            false,
        );
        assert_eq!(
            spec.path.last().unwrap().name,
            "nginx.ingress.kubernetes.io/auth-secret"
        );
    }
}
