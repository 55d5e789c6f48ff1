#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports
//! The environment's functions, and the limits that stop hostile expressions.

use gitplane_cel::{Activation, CelError, Env, Limits};
use serde_json::json;

/// Evaluates with the default limits but a deadline no machine reaches, so
/// the cost and size tests test cost and size however slow the build is (a
/// debug build on a loaded 2-core CI machine took over 1 s to reach the
/// size limit); `time_limit_stops_what_the_budget_allows` tests the deadline.
fn eval(source: &str) -> Result<serde_json::Value, CelError> {
    let env = Env::new(Limits {
        deadline: std::time::Duration::from_secs(600),
        ..Limits::default()
    });
    let activation = Activation::new().with_json(
        "schema",
        &json!({"spec": {"name": "shop", "replicas": 3, "labels": {"team": "a"}, "ports": [80, 443]}}),
    );
    env.compile(source)?.evaluate_json(&activation)
}

#[test]
fn standard_and_kubernetes_functions() {
    let cases = [
        ("schema.spec.replicas * 2", json!(6)),
        ("schema.spec.name + '-svc'", json!("shop-svc")),
        ("'Shop'.lowerAscii()", json!("shop")),
        ("schema.spec.ports.map(p, p + 1)", json!([81, 444])),
        ("schema.spec.ports.exists(p, p == 443)", json!(true)),
        ("has(schema.spec.labels.team)", json!(true)),
        ("schema.spec.?missing.orValue('none')", json!("none")),
        ("schema.spec.labels.?team.orValue('none')", json!("a")),
        ("schema.spec.ports.orValue([])", json!([80, 443])),
        (
            "quantity('1Gi').isGreaterThan(quantity('512Mi'))",
            json!(true),
        ),
        (
            "isSemver('1.2.3') && semver('1.2.3').major() == 1",
            json!(true),
        ),
        ("ip('10.0.0.1').family()", json!(4)),
        ("cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))", json!(true)),
        ("'abc123'.find('[0-9]+')", json!("123")),
        ("url('https://example.com:8443/x').getPort()", json!("8443")),
        (
            "'%s has %d replicas'.format([schema.spec.name, schema.spec.replicas])",
            json!("shop has 3 replicas"),
        ),
        ("[3, 1, 2].sort()", json!([1, 2, 3])),
        ("sets.contains([1, 2, 3], [2])", json!(true)),
        ("'a-b-c'.split('-')", json!(["a", "b", "c"])),
        ("'hello'.replace('l', 'L')", json!("heLLo")),
        ("lists.range(3)", json!([0, 1, 2])),
        ("{'b': 1, 'a': 2}", json!({"a": 2, "b": 1})),
    ];
    for (source, expected) in cases {
        assert_eq!(
            eval(source).unwrap_or_else(|e| panic!("{source}: {e}")),
            expected,
            "{source}"
        );
    }
}

#[test]
fn missing_fields_and_type_errors_are_errors() {
    assert!(matches!(eval("schema.spec.nope"), Err(CelError::Evaluation(m)) if m.contains("nope")));
    assert!(matches!(
        eval("schema.spec.name + 1"),
        Err(CelError::Evaluation(_))
    ));
    assert!(matches!(eval("unknown.x"), Err(CelError::Evaluation(m)) if m.contains("unknown")));
    assert!(matches!(eval("1 +"), Err(CelError::Syntax(_))));
}

#[test]
fn variables_and_field_paths() {
    let env = Env::default();
    let program = env
        .compile("schema.spec.a > 1 && deployment.status.?ready.orValue(0) > 0 && [1].all(x, x > schema.spec.b)")
        .unwrap();
    assert_eq!(
        program.variables(),
        vec!["deployment".to_string(), "schema".to_string()]
    );
    let paths = program.field_paths();
    assert!(paths.contains(&vec!["schema".into(), "spec".into(), "a".into()]));
    assert!(paths.contains(&vec!["schema".into(), "spec".into(), "b".into()]));
    assert!(paths.contains(&vec!["deployment".into(), "status".into(), "ready".into()]));
    assert!(!paths.iter().any(|p| p[0] == "x"));
    let namespaced = env
        .compile("lists.range(2).map(i, optional.of(base64.encode(b'x')))")
        .unwrap();
    assert!(namespaced.variables().is_empty());
}

#[test]
fn compiled_once() {
    let env = Env::default();
    let a = env.compile("1 + 1").unwrap();
    let b = env.compile("1 + 1").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(matches!(eval(&deep), Err(CelError::TooLarge(_))));
    let lists = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    assert!(matches!(eval(&lists), Err(CelError::TooLarge(_))));
    let nots = format!("{}true", "!".repeat(10_000));
    assert!(matches!(eval(&nots), Err(CelError::TooLarge(_))));
    let long = "1 + ".repeat(100_000) + "1";
    assert!(matches!(eval(&long), Err(CelError::TooLarge(_))));
    // Within the limits, nesting still works.
    assert_eq!(
        eval(&format!("{}1{}", "(".repeat(20), ")".repeat(20))).unwrap(),
        json!(1)
    );
}

#[test]
fn long_loops_hit_the_cost_limit() {
    let nested =
        "lists.range(1000).all(x, lists.range(1000).all(y, lists.range(1000).all(z, true)))";
    assert!(
        matches!(eval(nested), Err(CelError::CostLimit { .. })),
        "{:?}",
        eval(nested)
    );
    // A loop of ordinary size is fine.
    assert_eq!(
        eval("lists.range(1000).filter(x, x % 2 == 0).size()").unwrap(),
        json!(500)
    );
}

#[test]
fn huge_values_hit_the_size_limit() {
    let doubling = "'aaaaaaaaaa'.replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa')";
    assert!(
        matches!(eval(doubling), Err(CelError::SizeLimit(_))),
        "{:?}",
        eval(doubling)
    );
    assert!(matches!(
        eval("lists.range(1000000000)"),
        Err(CelError::SizeLimit(_))
    ));
    let concat =
        "lists.range(100000).map(x, 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx').join('')";
    assert!(
        matches!(
            eval(concat),
            Err(CelError::SizeLimit(_) | CelError::CostLimit { .. })
        ),
        "{:?}",
        eval(concat)
    );
}

#[test]
fn time_limit_stops_what_the_budget_allows() {
    let env = Env::new(Limits {
        cost_budget: u64::MAX,
        deadline: std::time::Duration::from_millis(50),
        ..Limits::default()
    });
    let program = env
        .compile("lists.range(3000).all(x, lists.range(3000).all(y, x + y >= 0))")
        .unwrap();
    assert!(matches!(
        program.evaluate(&Activation::new()),
        Err(CelError::TimeLimit { .. })
    ));
}

#[test]
fn message_construction_is_refused() {
    assert!(matches!(eval("Foo{a: 1}"), Err(CelError::Unsupported(_))));
    assert!(matches!(eval("[Foo{}]"), Err(CelError::Unsupported(_))));
    assert!(matches!(
        eval("Object{spec: Foo{}}"),
        Err(CelError::Unsupported(_))
    ));
}

#[test]
fn apply_configurations_and_json_patches_are_the_maps_they_describe() {
    assert_eq!(
        eval(
            "Object{metadata: Object.metadata{labels: {'team': schema.spec.labels.team}, \
             ?annotations: schema.spec.?annotations}, \
             spec: Object.spec{replicas: schema.spec.replicas + 1}}"
        )
        .unwrap(),
        json!({"metadata": {"labels": {"team": "a"}}, "spec": {"replicas": 4}})
    );
    assert_eq!(
        eval("[JSONPatch{op: 'add', path: '/spec/x', value: schema.spec.ports[0]}]").unwrap(),
        json!([{"op": "add", "path": "/spec/x", "value": 80}])
    );
}

#[test]
fn metering_functions_cannot_be_called_from_source() {
    assert!(eval("@gp_tick()").is_err());
}

#[test]
fn optional_selects_chain_through_absent_fields() {
    assert_eq!(
        eval("schema.?spec.missing.deeper.orValue('none')").unwrap(),
        json!("none")
    );
    assert_eq!(
        eval("schema.?spec.name.orValue('none')").unwrap(),
        json!("shop")
    );
    assert_eq!(
        eval("schema.?nothing.name.orValue('none')").unwrap(),
        json!("none")
    );
}

#[test]
fn explicit_optional_chain() {
    assert_eq!(
        eval("schema.?spec.?missing.?deeper.orValue('none')").unwrap(),
        json!("none")
    );
    assert_eq!(
        eval("schema.?spec.?ports[?1].orValue(0)").unwrap(),
        json!(443)
    );
}

fn eval_kro(source: &str) -> Result<serde_json::Value, CelError> {
    let env = gitplane_cel::Env::with_library(Limits::default(), gitplane_cel::Library::Kro);
    let activation = Activation::new().with_json("schema", &json!({"metadata": {"uid": "1234"}}));
    env.compile(source)?.evaluate_json(&activation)
}

#[test]
fn kro_functions() {
    // The same seed gives the same value; the alphabet is [0-9a-z].
    let a = eval_kro("random.seededString(12, schema.metadata.uid)").unwrap();
    assert_eq!(a, eval_kro("random.seededString(12, '1234')").unwrap());
    assert!(
        a.as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    );
    let n = eval_kro("random.seededInt(5, 10, 'x')")
        .unwrap()
        .as_i64()
        .unwrap();
    assert!((5..10).contains(&n));
    assert!(eval_kro("random.seededInt(5, 5, 'x')").is_err());
    assert!(eval_kro("random.seededString(0, 'x')").is_err());
    // SHA-256 and MD5 of "abc" (FIPS 180-2 and RFC 1321 test vectors), base64 as JSON bytes.
    assert_eq!(
        eval_kro("base64.encode(hash.sha256('abc'))").unwrap(),
        json!("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=")
    );
    assert_eq!(
        eval_kro("base64.encode(hash.md5('abc'))").unwrap(),
        json!("kAFQmDzST7DWlj99KOF/cg==")
    );
    assert_eq!(
        eval_kro("json.marshal({'b': 1, 'a': ['<x>']})").unwrap(),
        json!(r#"{"a":["\u003cx\u003e"],"b":1}"#)
    );
    assert_eq!(
        eval_kro("json.unmarshal('{\"a\": [1, true]}').a[0]").unwrap(),
        json!(1.0)
    );
    assert_eq!(
        eval_kro("lists.setAtIndex([1, 2, 3], 1, 9)").unwrap(),
        json!([1, 9, 3])
    );
    assert_eq!(
        eval_kro("lists.insertAtIndex([1, 2], 2, 9)").unwrap(),
        json!([1, 2, 9])
    );
    assert_eq!(
        eval_kro("lists.removeAtIndex([1, 2, 3], 0)").unwrap(),
        json!([2, 3])
    );
    assert!(
        eval_kro("lists.removeAtIndex([1], 1)")
            .unwrap_err()
            .to_string()
            .contains("out of bounds")
    );
    assert_eq!(
        eval_kro("{'a': 1, 'b': 2}.merge({'b': 3})").unwrap(),
        json!({"a": 1, "b": 3})
    );
    assert_eq!(
        eval_kro("{'a': {'x': 1, 'y': 1}}.deepMerge({'a': {'y': 2}})").unwrap(),
        json!({"a": {"x": 1, "y": 2}})
    );
    // omit() disappears from maps and lists; on its own it is not a value.
    assert_eq!(eval_kro("{'a': 1, 'b': omit()}").unwrap(), json!({"a": 1}));
    assert_eq!(eval_kro("[1, omit(), 2]").unwrap(), json!([1, 2]));
    assert!(eval_kro("omit()").is_err());
}

#[test]
fn kro_functions_are_not_in_the_standard_library() {
    assert!(eval("random.seededString(3, 'x')").is_err());
}

#[test]
fn kro_runtime_conditions() {
    assert_eq!(
        eval_kro("runtime.newCondition({type: 'AppReady', status: 'True', reason: 'Up'})").unwrap(),
        json!({"type": "AppReady", "status": "True", "reason": "Up", "message": ""})
    );
    let err = |source: &str| eval_kro(source).unwrap_err().to_string();
    assert!(err("runtime.newCondition({type: 'A'})").contains("'status' is required"));
    assert!(
        err("runtime.newCondition({type: 'A', status: 'Yes'})").contains("True, False or Unknown")
    );
    assert!(
        err("runtime.newCondition({type: 'A', status: 'True', colour: 'x'})")
            .contains("unknown key")
    );
    let object = "{'status': {'conditions': [{'type': 'Ready', 'status': 'False', 'reason': 'R', 'message': 'm'}]}}";
    assert_eq!(
        eval_kro(&format!("runtime.condition({object}, 'Ready').status")).unwrap(),
        json!("False")
    );
    assert_eq!(
        eval_kro(&format!("runtime.condition({object}, 'Other').status")).unwrap(),
        json!("")
    );
}

#[test]
fn dyn_is_the_identity() {
    assert_eq!(
        eval("[dyn('a'), dyn(1)] + [dyn({'k': 'v'})]").unwrap(),
        json!(["a", 1, {"k": "v"}])
    );
}

#[test]
fn kyverno_cluster_libraries_answer_from_supplied_data() {
    use gitplane_cel::supplied::{
        generator_variable, images_variable, resources_variable, time_variable,
    };
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "limits", "namespace": "shop"}, "data": {"max": "3"}});
    let env = Env::default();
    let activation = Activation::new()
        .with_json(
            "resource",
            &resources_variable([(&configmap, "configmaps".to_string())]),
        )
        .with_json(
            "image",
            &images_variable(&[
                json!({"image": "redis:7", "config": {"created": "2024-01-01T00:00:00Z"}}),
            ]),
        )
        .with_json("time", &time_variable())
        .with_json("generator", &generator_variable());
    let eval = |source: &str| env.compile(source).unwrap().evaluate_json(&activation);
    assert_eq!(
        eval("resource.Get('v1', 'configmaps', 'shop', 'limits').data.max").unwrap(),
        json!("3")
    );
    assert_eq!(
        eval("resource.List('v1', 'configmaps', 'shop').items.size()").unwrap(),
        json!(1)
    );
    assert_eq!(
        eval("resource.List('v1', 'configmaps', 'other').items").unwrap(),
        json!([])
    );
    assert!(eval("resource.Get('v1', 'configmaps', 'shop', 'missing')").is_err());
    assert_eq!(
        eval("image.GetMetadata('redis:7').config.created").unwrap(),
        json!("2024-01-01T00:00:00Z")
    );
    assert_eq!(
        eval("time.now() > timestamp('2024-01-01T00:00:00Z')").unwrap(),
        json!(true)
    );
    assert_eq!(
        eval("generator.Apply('shop', [{'kind': 'ConfigMap', 'metadata': {'name': 'a'}}])")
            .unwrap(),
        json!([{"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "shop"}}])
    );
    // Without the variables, nothing answers.
    assert!(matches!(
        env.compile("resource.Get('v1', 'configmaps', 'shop', 'limits')")
            .unwrap()
            .evaluate_json(&Activation::new()),
        Err(CelError::Evaluation(_))
    ));
}
