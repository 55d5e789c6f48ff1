//! Decoding the protobuf bodies `kubectl create namespace|configmap|secret
//! generic|serviceaccount|deployment` send (`k8s\0` + a `runtime.Unknown`
//! envelope around the object). Responses are always JSON, which kubectl
//! accepts. Each supported message is described by a table of its fields; a
//! field the table does not know is an error, never silently dropped.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use gitplane_object::time::format_rfc3339;

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Msg(&'static Message),
    StrMap,
    BytesMap,
    QuantityMap,
    Time,
    IntOrString,
    /// Read and dropped: the `status` of a create, which the server resets.
    Ignored,
}

struct Field {
    tag: u64,
    name: &'static str,
    kind: Kind,
    repeated: bool,
    /// Go pointer fields: protobuf sends them only when set, so a zero value is
    /// meaningful. Other fields always travel and a zero value means unset, as
    /// `omitempty` does in JSON.
    pointer: bool,
}

struct Message {
    name: &'static str,
    fields: &'static [Field],
}

const fn f(tag: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        name,
        kind,
        repeated: false,
        pointer: false,
    }
}
const fn ptr(tag: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        name,
        kind,
        repeated: false,
        pointer: true,
    }
}
const fn list(tag: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        name,
        kind,
        repeated: true,
        pointer: false,
    }
}
static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        f(1, "kind", Kind::Str),
        f(3, "name", Kind::Str),
        f(4, "uid", Kind::Str),
        f(5, "apiVersion", Kind::Str),
        ptr(6, "controller", Kind::Bool),
        ptr(7, "blockOwnerDeletion", Kind::Bool),
    ],
};
static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", Kind::Str),
        f(2, "generateName", Kind::Str),
        f(3, "namespace", Kind::Str),
        f(4, "selfLink", Kind::Str),
        f(5, "uid", Kind::Str),
        f(6, "resourceVersion", Kind::Str),
        f(7, "generation", Kind::Int),
        f(8, "creationTimestamp", Kind::Time),
        f(9, "deletionTimestamp", Kind::Time),
        f(10, "deletionGracePeriodSeconds", Kind::Int),
        f(11, "labels", Kind::StrMap),
        f(12, "annotations", Kind::StrMap),
        list(13, "ownerReferences", Kind::Msg(&OWNER_REFERENCE)),
        list(14, "finalizers", Kind::Str),
    ],
};
static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[list(1, "finalizers", Kind::Str)],
};
static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        f(1, "metadata", Kind::Msg(&OBJECT_META)),
        f(2, "spec", Kind::Msg(&NAMESPACE_SPEC)),
        f(3, "status", Kind::Ignored),
    ],
};
static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        f(1, "metadata", Kind::Msg(&OBJECT_META)),
        f(2, "data", Kind::StrMap),
        f(3, "binaryData", Kind::BytesMap),
        ptr(4, "immutable", Kind::Bool),
    ],
};
static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        f(1, "metadata", Kind::Msg(&OBJECT_META)),
        f(2, "data", Kind::BytesMap),
        f(3, "type", Kind::Str),
        f(4, "stringData", Kind::StrMap),
        ptr(5, "immutable", Kind::Bool),
    ],
};
static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        f(1, "kind", Kind::Str),
        f(2, "namespace", Kind::Str),
        f(3, "name", Kind::Str),
        f(4, "uid", Kind::Str),
        f(5, "apiVersion", Kind::Str),
    ],
};
static LOCAL_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[f(1, "name", Kind::Str)],
};
static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        f(1, "metadata", Kind::Msg(&OBJECT_META)),
        list(2, "secrets", Kind::Msg(&OBJECT_REFERENCE)),
        list(3, "imagePullSecrets", Kind::Msg(&LOCAL_REFERENCE)),
        ptr(4, "automountServiceAccountToken", Kind::Bool),
    ],
};
static REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[
        f(1, "key", Kind::Str),
        f(2, "operator", Kind::Str),
        list(3, "values", Kind::Str),
    ],
};
static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        f(1, "matchLabels", Kind::StrMap),
        list(2, "matchExpressions", Kind::Msg(&REQUIREMENT)),
    ],
};
static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        f(1, "name", Kind::Str),
        f(2, "hostPort", Kind::Int),
        f(3, "containerPort", Kind::Int),
        f(4, "protocol", Kind::Str),
        f(5, "hostIP", Kind::Str),
    ],
};
static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[f(1, "name", Kind::Str), f(2, "value", Kind::Str)],
};
static RESOURCES: Message = Message {
    name: "ResourceRequirements",
    fields: &[
        f(1, "limits", Kind::QuantityMap),
        f(2, "requests", Kind::QuantityMap),
    ],
};
static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        f(1, "name", Kind::Str),
        f(2, "image", Kind::Str),
        list(3, "command", Kind::Str),
        list(4, "args", Kind::Str),
        f(5, "workingDir", Kind::Str),
        list(6, "ports", Kind::Msg(&CONTAINER_PORT)),
        list(7, "env", Kind::Msg(&ENV_VAR)),
        f(8, "resources", Kind::Msg(&RESOURCES)),
        f(13, "terminationMessagePath", Kind::Str),
        f(14, "imagePullPolicy", Kind::Str),
        f(16, "stdin", Kind::Bool),
        f(17, "stdinOnce", Kind::Bool),
        f(18, "tty", Kind::Bool),
        f(20, "terminationMessagePolicy", Kind::Str),
    ],
};
static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        list(2, "containers", Kind::Msg(&CONTAINER)),
        f(3, "restartPolicy", Kind::Str),
        ptr(4, "terminationGracePeriodSeconds", Kind::Int),
        f(6, "dnsPolicy", Kind::Str),
        f(7, "nodeSelector", Kind::StrMap),
        f(8, "serviceAccountName", Kind::Str),
        f(9, "serviceAccount", Kind::Str),
        f(10, "nodeName", Kind::Str),
        f(11, "hostNetwork", Kind::Bool),
        f(12, "hostPID", Kind::Bool),
        f(13, "hostIPC", Kind::Bool),
        f(16, "hostname", Kind::Str),
        f(17, "subdomain", Kind::Str),
        f(19, "schedulerName", Kind::Str),
        list(20, "initContainers", Kind::Msg(&CONTAINER)),
        f(24, "priorityClassName", Kind::Str),
    ],
};
static POD_TEMPLATE: Message = Message {
    name: "PodTemplateSpec",
    fields: &[
        f(1, "metadata", Kind::Msg(&OBJECT_META)),
        f(2, "spec", Kind::Msg(&POD_SPEC)),
    ],
};
static ROLLING_UPDATE: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[
        ptr(1, "maxUnavailable", Kind::IntOrString),
        ptr(2, "maxSurge", Kind::IntOrString),
    ],
};
static STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[
        f(1, "type", Kind::Str),
        f(2, "rollingUpdate", Kind::Msg(&ROLLING_UPDATE)),
    ],
};
static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        ptr(1, "replicas", Kind::Int),
        f(2, "selector", Kind::Msg(&LABEL_SELECTOR)),
        f(3, "template", Kind::Msg(&POD_TEMPLATE)),
        f(4, "strategy", Kind::Msg(&STRATEGY)),
        f(5, "minReadySeconds", Kind::Int),
        ptr(6, "revisionHistoryLimit", Kind::Int),
        f(7, "paused", Kind::Bool),
        ptr(9, "progressDeadlineSeconds", Kind::Int),
    ],
};
static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        f(1, "metadata", Kind::Msg(&OBJECT_META)),
        f(2, "spec", Kind::Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Kind::Ignored),
    ],
};

/// The objects gitplane accepts as protobuf: (apiVersion, kind, schema).
static SUPPORTED: [(&str, &str, &Message); 5] = [
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "Secret", &SECRET),
    ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
    ("apps/v1", "Deployment", &DEPLOYMENT),
];

fn unsupported(what: &str) -> ApiError {
    ApiError::unsupported_media_type(&format!(
        "application/vnd.kubernetes.protobuf ({what}; send JSON, e.g. with kubectl create -f)"
    ))
}

/// Decodes a Kubernetes protobuf body into the JSON object.
pub fn decode(bytes: &[u8]) -> ApiResult<Value> {
    let body = bytes
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| ApiError::bad_request("protobuf body without the k8s envelope"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for item in Reader::new(body) {
        let (tag, wire) = item?;
        match (tag, wire) {
            (1, Wire::Bytes(meta)) => {
                for item in Reader::new(meta) {
                    match item? {
                        (1, Wire::Bytes(b)) => api_version = utf8(b)?,
                        (2, Wire::Bytes(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let (_, _, schema) = SUPPORTED
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .ok_or_else(|| unsupported(&format!("{api_version} {kind} is not supported")))?;
    let mut object = message(raw, schema, 0)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

fn utf8(b: &[u8]) -> ApiResult<String> {
    String::from_utf8(b.to_vec()).map_err(|_| ApiError::bad_request("protobuf string is not UTF-8"))
}

fn message(bytes: &[u8], schema: &Message, depth: usize) -> ApiResult<Value> {
    if depth > 32 {
        return Err(ApiError::bad_request("protobuf nesting too deep"));
    }
    let mut out = Map::new();
    for item in Reader::new(bytes) {
        let (tag, wire) = item?;
        let field = schema.fields.iter().find(|f| f.tag == tag).ok_or_else(|| {
            unsupported(&format!("field {tag} of {} is not supported", schema.name))
        })?;
        if matches!(field.kind, Kind::Ignored) {
            continue;
        }
        let value = scalar(field.kind, wire, depth)?;
        if !field.pointer && !field.repeated && is_zero(&value) {
            continue;
        }
        match field.kind {
            Kind::StrMap | Kind::BytesMap | Kind::QuantityMap => {
                let entry = out.entry(field.name).or_insert_with(|| json!({}));
                if let (Value::Object(map), Value::Object(pair)) = (entry, value) {
                    map.extend(pair);
                }
            }
            _ if field.repeated => {
                let entry = out.entry(field.name).or_insert_with(|| json!([]));
                if let Value::Array(items) = entry {
                    items.push(value);
                }
            }
            _ => {
                out.insert(field.name.to_string(), value);
            }
        }
    }
    Ok(Value::Object(out))
}

/// The values Go's `omitempty` leaves out of JSON.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn scalar(kind: Kind, wire: Wire<'_>, depth: usize) -> ApiResult<Value> {
    let bad = || ApiError::bad_request("malformed protobuf body");
    Ok(match (kind, wire) {
        (Kind::Str, Wire::Bytes(b)) => json!(utf8(b)?),
        (Kind::Int, Wire::Varint(v)) => json!(v as i64),
        (Kind::Bool, Wire::Varint(v)) => json!(v != 0),
        (Kind::Msg(schema), Wire::Bytes(b)) => message(b, schema, depth + 1)?,
        (Kind::StrMap | Kind::BytesMap | Kind::QuantityMap, Wire::Bytes(b)) => {
            let (mut key, mut value) = (String::new(), Value::Null);
            for item in Reader::new(b) {
                match item? {
                    (1, Wire::Bytes(k)) => key = utf8(k)?,
                    (2, Wire::Bytes(v)) => {
                        value = match kind {
                            Kind::StrMap => json!(utf8(v)?),
                            Kind::BytesMap => json!(BASE64.encode(v)),
                            _ => quantity(v)?,
                        }
                    }
                    _ => return Err(bad()),
                }
            }
            let mut pair = Map::new();
            pair.insert(key, value);
            Value::Object(pair)
        }
        (Kind::Time, Wire::Bytes(b)) => {
            let mut seconds = 0u64;
            for item in Reader::new(b) {
                if let (1, Wire::Varint(s)) = item? {
                    seconds = s;
                }
            }
            json!(format_rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
            ))
        }
        (Kind::IntOrString, Wire::Bytes(b)) => {
            let (mut is_string, mut int, mut text) = (false, 0i64, String::new());
            for item in Reader::new(b) {
                match item? {
                    (1, Wire::Varint(t)) => is_string = t == 1,
                    (2, Wire::Varint(v)) => int = v as i64,
                    (3, Wire::Bytes(s)) => text = utf8(s)?,
                    _ => {}
                }
            }
            if is_string { json!(text) } else { json!(int) }
        }
        _ => return Err(bad()),
    })
}

fn quantity(bytes: &[u8]) -> ApiResult<Value> {
    for item in Reader::new(bytes) {
        if let (1, Wire::Bytes(s)) = item? {
            return Ok(json!(utf8(s)?));
        }
    }
    Ok(json!("0"))
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over (field number, value) of a protobuf message.
struct Reader<'a> {
    bytes: &'a [u8],
    failed: bool,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            failed: false,
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = ApiResult<(u64, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() || self.failed {
            return None;
        }
        let bad = || Some(Err(ApiError::bad_request("malformed protobuf body")));
        let Some(key) = self.varint() else {
            self.failed = true;
            return bad();
        };
        let (tag, wire_type) = (key >> 3, key & 7);
        let wire = match wire_type {
            0 => match self.varint() {
                Some(v) => Wire::Varint(v),
                None => {
                    self.failed = true;
                    return bad();
                }
            },
            2 => {
                let Some(len) = self
                    .varint()
                    .and_then(|l| usize::try_from(l).ok())
                    .filter(|&l| l <= self.bytes.len())
                else {
                    self.failed = true;
                    return bad();
                };
                let (value, rest) = self.bytes.split_at(len);
                self.bytes = rest;
                Wire::Bytes(value)
            }
            1 | 5 => {
                let n = if wire_type == 1 { 8 } else { 4 };
                if self.bytes.len() < n {
                    self.failed = true;
                    return bad();
                }
                self.bytes = &self.bytes[n..];
                Wire::Fixed
            }
            _ => {
                self.failed = true;
                return bad();
            }
        };
        Some(Ok((tag, wire)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(tag: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(tag << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_namespace() {
        let meta = field(1, b"team-a");
        let object = field(1, &meta);
        let type_meta = [field(1, b"v1"), field(2, b"Namespace")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &object)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"metadata": {"name": "team-a"}, "apiVersion": "v1", "kind": "Namespace"})
        );
    }

    #[test]
    fn config_map_data() {
        let entry = [field(1, b"k"), field(2, b"v")].concat();
        let object = [field(1, &field(1, b"c")), field(2, &entry)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &object)].concat();
        assert_eq!(decode(&body).unwrap()["data"], json!({"k": "v"}));
    }

    #[test]
    fn unknown_kinds_and_fields_are_refused() {
        let type_meta = [field(1, b"v1"), field(2, b"Pod")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta)].concat();
        assert_eq!(decode(&body).unwrap_err().code, 415);
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [
            b"k8s\0".to_vec(),
            field(1, &type_meta),
            field(2, &field(9, b"x")),
        ]
        .concat();
        assert_eq!(decode(&body).unwrap_err().code, 415);
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut body = b"k8s\0".to_vec();
            body.extend(bytes);
            let _ = decode(&body);
        }
    }
}
