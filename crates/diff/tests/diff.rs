#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! Comparing desired and live objects: normalization, ignore rules, masking.

use gitplane_diff::{DiffOptions, IgnoreRule, UnboundedJq, diff, keep_live_values};
use gitplane_object::Object;
use serde_json::{Value, json};

fn object(value: Value) -> Object {
    Object::try_from(value).unwrap()
}

fn options(rules: &[IgnoreRule]) -> DiffOptions<'_> {
    DiffOptions {
        rules,
        jq: &UnboundedJq,
    }
}

fn deployment(image: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}
    })
}

/// What a server stores for a deployment: defaults, server metadata, status.
fn live_deployment(image: &str, replicas: i64) -> Value {
    let mut d = deployment(image, replicas);
    d["metadata"]["uid"] = json!("1234");
    d["metadata"]["resourceVersion"] = json!("42");
    d["metadata"]["generation"] = json!(3);
    d["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
    d["metadata"]["managedFields"] = json!([
        {"manager": "gitplane", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}},
        {"manager": "hpa-controller", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]);
    d["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    d["status"] = json!({"replicas": replicas});
    d
}

#[test]
fn defaults_and_server_fields_are_not_drift() {
    let desired = object(deployment("web:1", 2));
    let live = object(live_deployment("web:1", 2));
    let key = desired.key();
    // Without a dry-run answer, the desired object is laid over the live one.
    let d = diff(&key, Some(&desired), None, Some(&live), &options(&[])).unwrap();
    assert!(!d.modified, "{}", d.text);
    assert!(d.text.is_empty());
    // With one, the prediction is compared.
    let d = diff(
        &key,
        Some(&desired),
        Some(&live),
        Some(&live),
        &options(&[]),
    )
    .unwrap();
    assert!(!d.modified);
}

#[test]
fn a_changed_image_is_a_readable_diff() {
    let desired = object(deployment("web:2", 2));
    let live = object(live_deployment("web:1", 2));
    let d = diff(
        &desired.key(),
        Some(&desired),
        None,
        Some(&live),
        &options(&[]),
    )
    .unwrap();
    assert!(d.modified);
    assert!(
        d.text.contains("--- live/apps.Deployment.shop.web"),
        "{}",
        d.text
    );
    assert!(d.text.contains("-      - image: web:1"), "{}", d.text);
    assert!(d.text.contains("+      - image: web:2"), "{}", d.text);
    assert!(
        !d.text.contains("resourceVersion") && !d.text.contains("status"),
        "{}",
        d.text
    );
}

#[test]
fn missing_and_extra_objects_differ() {
    let desired = object(deployment("web:1", 1));
    let missing = diff(&desired.key(), Some(&desired), None, None, &options(&[])).unwrap();
    assert!(missing.modified && missing.live.is_none());
    let live = object(live_deployment("web:1", 1));
    let extra = diff(&live.key(), None, None, Some(&live), &options(&[])).unwrap();
    assert!(extra.modified && extra.target.is_none());
}

#[test]
fn ignore_rules_by_pointer_jq_and_manager() {
    let desired = object(deployment("web:1", 2));
    let live = object(live_deployment("web:1", 5));
    let key = desired.key();
    assert!(
        diff(&key, Some(&desired), None, Some(&live), &options(&[]))
            .unwrap()
            .modified
    );
    let rule = |f: fn(&mut IgnoreRule)| {
        let mut r = IgnoreRule {
            group: "apps".into(),
            kind: "Deployment".into(),
            ..Default::default()
        };
        f(&mut r);
        vec![r]
    };
    for rules in [
        rule(|r| r.json_pointers = vec!["/spec/replicas".into()]),
        rule(|r| r.jq_path_expressions = vec![".spec.replicas".into()]),
        rule(|r| r.managed_fields_managers = vec!["hpa-controller".into()]),
    ] {
        let d = diff(&key, Some(&desired), None, Some(&live), &options(&rules)).unwrap();
        assert!(!d.modified, "{rules:?}: {}", d.text);
    }
    let other_kind = rule(|r| {
        r.kind = "StatefulSet".into();
        r.json_pointers = vec!["/spec/replicas".into()];
    });
    assert!(
        diff(
            &key,
            Some(&desired),
            None,
            Some(&live),
            &options(&other_kind)
        )
        .unwrap()
        .modified
    );
    let broken = rule(|r| r.jq_path_expressions = vec!["this is not jq".into()]);
    let error = diff(&key, Some(&desired), None, Some(&live), &options(&broken)).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("apps/Deployment:shop/web: cannot parse"),
        "{error}"
    );
}

#[test]
fn respecting_ignored_fields_keeps_the_live_value() {
    let mut desired = deployment("web:2", 2);
    let live = live_deployment("web:1", 5);
    let rules = [IgnoreRule {
        group: "apps".into(),
        kind: "Deployment".into(),
        managed_fields_managers: vec!["hpa-controller".into()],
        ..Default::default()
    }];
    let rules: Vec<&IgnoreRule> = rules.iter().collect();
    keep_live_values(&mut desired, &live, &rules, &UnboundedJq).unwrap();
    assert_eq!(desired["spec"]["replicas"], 5, "the HPA's value stays");
    assert_eq!(
        desired["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:2"
    );
}

fn secret(data: Value, string_data: Option<Value>) -> Object {
    let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"}, "data": data});
    if let Some(sd) = string_data {
        s["stringData"] = sd;
    }
    object(s)
}

#[test]
fn secret_values_never_show() {
    let live = secret(
        json!({"password": "aHVudGVyMg==", "user": "YWRtaW4="}),
        None,
    );
    let desired = secret(json!({"password": "c2VjcmV0", "user": "YWRtaW4="}), None);
    let d = diff(
        &live.key(),
        Some(&desired),
        None,
        Some(&live),
        &options(&[]),
    )
    .unwrap();
    assert!(d.modified);
    let everything = format!("{} {:?} {:?}", d.text, d.target, d.live);
    for value in ["aHVudGVyMg==", "c2VjcmV0", "YWRtaW4="] {
        assert!(!everything.contains(value), "{value} leaked: {everything}");
    }
    let (t, l) = (d.target.unwrap(), d.live.unwrap());
    assert_eq!(
        t["data"]["user"], l["data"]["user"],
        "equal values, equal masks"
    );
    assert_ne!(
        t["data"]["password"], l["data"]["password"],
        "changed values, different masks"
    );

    // stringData is compared as the server stores it.
    let by_string = secret(
        json!({"user": "YWRtaW4="}),
        Some(json!({"password": "hunter2"})),
    );
    let d = diff(
        &live.key(),
        Some(&by_string),
        None,
        Some(&live),
        &options(&[]),
    )
    .unwrap();
    assert!(!d.modified, "{}", d.text);
}
