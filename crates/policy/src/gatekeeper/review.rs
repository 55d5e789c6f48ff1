//! What a ConstraintTemplate's Rego reads: `input.review` (an admission
//! request, or a plain object as gator and Gatekeeper's audit present it)
//! and `data.inventory` (the objects Gatekeeper syncs, keyed as it keys them).

use gitplane_object::{Map, Value, json, split_api_version};

use crate::request::Request;

/// `input.review` for an admission request, as Gatekeeper's webhook builds
/// it: the AdmissionRequest policies see ([`Request::admission_request`]),
/// with a `uid`, no empty `namespace`, and `namespaceObject`.
pub fn of_request(request: &Request) -> Value {
    let mut review = request.admission_request();
    if let Some(fields) = review.as_object_mut() {
        fields.insert("uid".into(), json!(""));
        if request.namespace().is_none() {
            fields.remove("namespace");
        }
        fields.insert(
            "namespaceObject".into(),
            request.namespace_object.cloned().unwrap_or(Value::Null),
        );
    }
    review
}

/// `input.review` for a plain object, as gator and the audit build it: no
/// operation (`""`), no user, empty resource, no old object.
pub fn of_object(object: &Value) -> Value {
    let (group, version) = split_api_version(object["apiVersion"].as_str().unwrap_or_default());
    let mut review = Map::new();
    review.insert(
        "kind".into(),
        json!({"group": group, "version": version, "kind": object["kind"]}),
    );
    review.insert("name".into(), object["metadata"]["name"].clone());
    if let Some(ns) = object["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
    {
        review.insert("namespace".into(), json!(ns));
    }
    review.insert("object".into(), object.clone());
    review.insert("oldObject".into(), Value::Null);
    review.insert("operation".into(), json!(""));
    review.insert("options".into(), Value::Null);
    review.insert(
        "resource".into(),
        json!({"group": "", "resource": "", "version": ""}),
    );
    review.insert("uid".into(), json!(""));
    review.insert("userInfo".into(), json!({}));
    review.insert("namespaceObject".into(), Value::Null);
    Value::Object(review)
}

/// `input.review` for an AdmissionReview object (a gator test case): its
/// `request`, with the old object standing in for the object of a deletion.
pub fn of_admission_review(review: &Value) -> Result<Value, String> {
    let Some(request) = review["request"].as_object() else {
        return Err("the AdmissionReview has no request".into());
    };
    let mut request = request.clone();
    let object = request.get("object").filter(|o| !o.is_null()).cloned();
    let old = request.get("oldObject").filter(|o| !o.is_null()).cloned();
    match (object, old) {
        (None, None) => {
            return Err("the AdmissionReview's request has neither object nor oldObject".into());
        }
        (None, Some(old)) if request.get("operation") == Some(&json!("DELETE")) => {
            request.insert("object".into(), old);
        }
        _ => {}
    }
    request.entry("namespaceObject").or_insert(Value::Null);
    Ok(Value::Object(request))
}

/// Whether a value is an `admission.k8s.io` AdmissionReview.
pub fn is_admission_review(object: &Value) -> bool {
    object["kind"] == "AdmissionReview"
        && split_api_version(object["apiVersion"].as_str().unwrap_or_default()).0
            == "admission.k8s.io"
}

/// `data.inventory` of these objects: `cluster[groupVersion][kind][name]`
/// for objects without a namespace, `namespace[ns][groupVersion][kind][name]`
/// for the others.
pub fn inventory<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut cluster = Map::new();
    let mut namespaced = Map::new();
    for object in objects {
        let (Some(api_version), Some(kind), Some(name)) = (
            object["apiVersion"].as_str(),
            object["kind"].as_str(),
            object["metadata"]["name"].as_str(),
        ) else {
            continue;
        };
        let root = match object["metadata"]["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            Some(ns) => entry(&mut namespaced, ns),
            None => &mut cluster,
        };
        entry(entry(root, api_version), kind).insert(name.to_string(), object.clone());
    }
    json!({"cluster": cluster, "namespace": namespaced})
}

fn entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let value = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("replaced by an object above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_keys_objects_by_scope_group_version_kind_and_name() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "web", "namespace": "shop"}});
        let inventory = inventory([&ns, &deploy]);
        assert_eq!(inventory["cluster"]["v1"]["Namespace"]["shop"], ns);
        assert_eq!(
            inventory["namespace"]["shop"]["apps/v1"]["Deployment"]["web"],
            deploy
        );
    }

    #[test]
    fn a_plain_object_review_has_no_operation_and_no_user() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        let review = of_object(&pod);
        assert_eq!(review["operation"], "");
        assert_eq!(
            review["kind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert!(review.get("namespace").is_none());
        assert_eq!(review["userInfo"], json!({}));
    }

    #[test]
    fn a_deletion_review_reads_the_old_object() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                            "request": {"operation": "DELETE", "oldObject": pod}});
        assert!(is_admission_review(&review));
        assert_eq!(of_admission_review(&review).unwrap()["object"], pod);
        let empty = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "request": {"operation": "CREATE"}});
        assert!(of_admission_review(&empty).is_err());
    }
}
