use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn deployment(containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"template": {"spec": {"containers": containers}}}})
}

fn containers(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["containers"]
}

fn merge(original: &Value, patch: &Value, flavor: Flavor) -> Value {
    strategic_merge(original, patch, root_for("apps", "Deployment"), flavor)
        .unwrap()
        .unwrap()
}

#[test]
fn containers_merge_by_name_keeping_siblings() {
    let original =
        deployment(json!([{"name": "web", "image": "web:1"}, {"name": "side", "image": "side:1"}]));
    let patch = deployment(
        json!([{"name": "web", "image": "web:2", "env": [{"name": "A", "value": "1"}]}]),
    );
    let k8s = merge(&original, &patch, Flavor::Kubernetes);
    assert_eq!(
        containers(&k8s),
        &json!([{"name": "web", "image": "web:2", "env": [{"name": "A", "value": "1"}]}, {"name": "side", "image": "side:1"}])
    );
}

#[test]
fn new_elements_append_in_kubernetes_and_lead_in_kustomize() {
    let original = deployment(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
    let patch = deployment(json!([{"name": "b", "image": "b2"}, {"name": "c", "image": "c"}]));
    let names = |v: &Value| {
        containers(v)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&merge(&original, &patch, Flavor::Kubernetes)),
        ["a", "b", "c"]
    );
    assert_eq!(
        names(&merge(&original, &patch, Flavor::Kustomize)),
        ["b", "c", "a"]
    );
}

#[test]
fn null_deletes_and_atomic_lists_replace() {
    let original = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "a"}], "dnsPolicy": "x",
        "containers": [{"name": "a", "image": "a", "args": ["1", "2"]}]}}}});
    let patch = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}], "dnsPolicy": null,
        "containers": [{"name": "a", "image": null, "args": ["3"]}]}}}});
    let out = merge(&original, &patch, Flavor::Kubernetes);
    assert_eq!(
        out["spec"]["template"]["spec"],
        json!({"tolerations": [{"key": "b"}], "containers": [{"name": "a", "args": ["3"]}]})
    );
}

#[test]
fn patch_directives_delete_and_replace() {
    let original = deployment(
        json!([{"name": "a", "env": [{"name": "E1", "value": "1"}, {"name": "E2", "value": "2"}]}, {"name": "b"}]),
    );
    let patch = deployment(
        json!([{"name": "b", "$patch": "delete"}, {"name": "zz", "$patch": "delete"},
        {"name": "a", "env": [{"name": "E1", "$patch": "delete"}]}]),
    );
    for flavor in [Flavor::Kubernetes, Flavor::Kustomize] {
        let out = merge(&original, &patch, flavor);
        assert_eq!(
            containers(&out),
            &json!([{"name": "a", "env": [{"name": "E2", "value": "2"}]}]),
            "{flavor:?}"
        );
    }
    let replace = deployment(json!([{"$patch": "replace"}, {"name": "only"}]));
    assert_eq!(
        containers(&merge(&original, &replace, Flavor::Kubernetes)),
        &json!([{"name": "only"}])
    );
    let map_replace = json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}});
    let with_strategy =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    assert_eq!(
        merge(&with_strategy, &map_replace, Flavor::Kustomize)["spec"]["strategy"],
        json!({"type": "Recreate"})
    );
    let delete_all = json!({"$patch": "delete"});
    assert_eq!(
        strategic_merge(&original, &delete_all, Node::Unknown, Flavor::Kubernetes).unwrap(),
        None
    );
}

#[test]
fn retain_keys_and_primitive_list_directives_in_kubernetes_flavor() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]},
        "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["d"]},
        "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = merge(&original, &patch, Flavor::Kubernetes);
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c", "d"]));
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // kustomize copies the directives it does not know, as kyaml does.
    let out = merge(&original, &patch, Flavor::Kustomize);
    assert_eq!(out["metadata"]["finalizers"], json!(["d", "a", "b", "c"]));
    assert_eq!(out["spec"]["strategy"]["$retainKeys"], json!(["type"]));
}

#[test]
fn set_element_order() {
    let original = deployment(json!([{"name": "a"}, {"name": "x"}, {"name": "b"}, {"name": "c"}]));
    let mut patch = deployment(json!([{"name": "b", "image": "b2"}]));
    patch["spec"]["template"]["spec"]["$setElementOrder/containers"] =
        json!([{"name": "c"}, {"name": "b"}, {"name": "a"}]);
    let out = merge(&original, &patch, Flavor::Kubernetes);
    let names: Vec<_> = containers(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // "x" (server-only) stays after "a", the element it followed.
    assert_eq!(names, ["c", "b", "a", "x"]);
}

#[test]
fn custom_resources_replace_lists() {
    let original = json!({"spec": {"items": [{"name": "one"}, {"name": "two"}]}});
    let patch = json!({"spec": {"items": [{"name": "two", "v": 2}]}});
    let out = strategic_merge(&original, &patch, Node::Unknown, Flavor::Kustomize)
        .unwrap()
        .unwrap();
    assert_eq!(out["spec"]["items"], json!([{"name": "two", "v": 2}]));
}

#[test]
fn missing_merge_key_is_an_error_for_the_api_server() {
    let original = deployment(json!([{"name": "a"}]));
    let patch = deployment(json!([{"image": "x"}]));
    let e = strategic_merge(
        &original,
        &patch,
        root_for("apps", "Deployment"),
        Flavor::Kubernetes,
    )
    .unwrap_err();
    assert_eq!(e.path, ".spec.template.spec.containers");
    let out = merge(&original, &patch, Flavor::Kustomize);
    assert_eq!(containers(&out), &json!([{"image": "x"}, {"name": "a"}]));
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|i| json!(i)),
        "[a-c]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map("[a-d]", arb_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

proptest! {
    #[test]
    fn empty_patch_is_identity(original in arb_object()) {
        for flavor in [Flavor::Kubernetes, Flavor::Kustomize] {
            let out = strategic_merge(&original, &json!({}), Node::Unknown, flavor).unwrap().unwrap();
            prop_assert_eq!(&out, &original);
        }
    }

    #[test]
    fn on_unknown_types_it_is_a_json_merge_patch(original in arb_object(), patch in arb_object()) {
        // Without schema knowledge, SMP and RFC 7386 agree.
        let out = strategic_merge(&original, &patch, Node::Unknown, Flavor::Kubernetes).unwrap().unwrap();
        let mut expected = original.clone();
        json_patch::merge(&mut expected, &patch);
        prop_assert_eq!(strip_nulls(&out), strip_nulls(&expected));
    }

    #[test]
    fn applying_twice_is_idempotent(original in arb_object(), patch in arb_object()) {
        let once = strategic_merge(&original, &patch, Node::Unknown, Flavor::Kubernetes).unwrap().unwrap();
        let twice = strategic_merge(&once, &patch, Node::Unknown, Flavor::Kubernetes).unwrap().unwrap();
        prop_assert_eq!(once, twice);
    }
}
