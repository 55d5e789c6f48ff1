#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports
//! The graph API: order, CRD, expansion against live objects, readiness,
//! status projection and deletion order.

use gitplane_graph::{Graph, Observed, Outcome, breaking_changes, expand, generate_crd, is_ready};
use gitplane_object::{LoadOptions, Object, Syntax, load_objects};
use serde_json::{Value, json};

fn load(text: &str) -> Vec<Object> {
    load_objects(
        text.as_bytes(),
        "test.yaml",
        Syntax::Yaml,
        &LoadOptions::default(),
    )
    .unwrap()
}

fn fixture(name: &str) -> Vec<Object> {
    let path = format!(
        "{}/tests/fixtures/{name}/input.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    load(&std::fs::read_to_string(path).unwrap())
}

/// A cluster holding some live objects, by kind and name.
struct Live(Vec<Value>);

impl Observed for Live {
    fn live(&self, desired: &Object) -> Option<Option<Value>> {
        Some(
            self.0
                .iter()
                .find(|o| o["kind"] == desired.kind() && o["metadata"]["name"] == desired.name())
                .cloned(),
        )
    }
    fn external(&self, _: &str, _: &str, _: Option<&str>, _: &str) -> Option<Value> {
        None
    }
    fn select(&self, _: &str, _: &str, _: Option<&str>, _: &Value) -> Option<Vec<Value>> {
        None
    }
}

#[test]
fn order_and_generated_crd() {
    let objects = fixture("basic-webapp");
    let graph = Graph::compile(&objects[0], &gitplane_graph::cel_env()).unwrap();
    assert_eq!(graph.topological_order(), vec!["deployment", "service"]);
    let crd = generate_crd(&graph);
    assert_eq!(crd["metadata"]["name"], json!("webapps.example.com"));
    let spec = &crd["spec"];
    assert_eq!(spec["names"]["listKind"], json!("WebAppList"));
    assert_eq!(spec["names"]["plural"], json!("webapps"));
    assert_eq!(spec["scope"], json!("Namespaced"));
    let version = &spec["versions"][0];
    assert_eq!(version["name"], json!("v1alpha1"));
    assert_eq!(version["subresources"], json!({"status": {}}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, vec!["State", "Ready", "Age"]);
    // kro writes a description for each default column.
    assert_eq!(
        version["additionalPrinterColumns"][0]["description"],
        json!("The state of a ResourceGraphDefinition instance")
    );
    assert_eq!(
        version["additionalPrinterColumns"][2]["description"],
        json!("Age of the resource")
    );
    let schema = &version["schema"]["openAPIV3Schema"]["properties"];
    assert_eq!(schema["spec"]["required"], json!(["image"]));
    assert_eq!(
        schema["spec"]["properties"]["replicas"]["default"],
        json!(2)
    );
    assert_eq!(
        schema["status"]["properties"]["state"],
        json!({"type": "string"})
    );
    assert_eq!(
        schema["status"]["properties"]["url"],
        json!({"type": "string"})
    );
    assert!(schema["status"]["properties"]["conditions"].is_object());
}

#[test]
fn short_names_and_categories_follow_kros_rules() {
    let rgd = |names: &str| {
        load(&format!(
            "apiVersion: kro.run/v1alpha1\nkind: ResourceGraphDefinition\nmetadata: {{name: x}}\n\
             spec:\n  schema:\n    apiVersion: v1\n    kind: X\n    shortNames: {names}\n  resources: []\n"
        ))
    };
    let env = gitplane_graph::cel_env();
    assert!(Graph::compile(&rgd("[x, x-2]")[0], &env).is_ok());
    for bad in ["[X]", "[a, a]", "[-a]", "[a-]"] {
        let error = Graph::compile(&rgd(bad)[0], &env).unwrap_err().to_string();
        assert!(error.contains("spec.schema.shortNames"), "{bad}: {error}");
    }
}

#[test]
fn expansion_against_live_objects_projects_status() {
    let objects = fixture("basic-webapp");
    let graph = Graph::compile(&objects[0], &gitplane_graph::cel_env()).unwrap();
    let instance = &objects[1];
    // Nothing exists yet: the deployment is desired, the service waits for it.
    let empty = expand(&graph, instance, &Live(Vec::new())).unwrap();
    assert!(matches!(&empty.nodes[0].outcome, Outcome::Desired(o) if o.len() == 1));
    assert!(
        matches!(&empty.nodes[1].outcome, Outcome::Unresolved(u) if u[0].waits_for == "deployment")
    );
    assert!(empty.status.is_empty());
    // The deployment exists and reports availability; the service exists.
    let deployment = json!({"kind": "Deployment", "metadata": {"name": "shop", "namespace": "team-a"},
        "spec": {"selector": {"matchLabels": {"app": "shop"}}}, "status": {"availableReplicas": 2}});
    let service =
        json!({"kind": "Service", "metadata": {"name": "shop-svc", "namespace": "team-a"}});
    let live = expand(&graph, instance, &Live(vec![deployment, service])).unwrap();
    assert_eq!(live.desired().len(), 2);
    assert_eq!(live.status.get("availableReplicas"), Some(&json!(2)));
    assert_eq!(
        live.status.get("url"),
        Some(&json!("http://shop-svc.team-a.svc"))
    );
    assert!(live.unresolved().is_empty());
}

#[test]
fn ready_when_on_single_objects_and_collections() {
    let rgd = load(
        r#"
apiVersion: kro.run/v1alpha1
kind: ResourceGraphDefinition
metadata: {name: r}
spec:
  schema: {apiVersion: v1, kind: R, spec: {}}
  resources:
    - id: deploy
      readyWhen:
        - ${deploy.status.availableReplicas == deploy.spec.replicas}
      template: {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}
    - id: pods
      forEach:
        - num: ${[1, 2]}
      readyWhen:
        - ${each.status.phase == "Running"}
      template: {apiVersion: v1, kind: Pod, metadata: {name: '${"p" + string(num)}'}}
"#,
    );
    let graph = Graph::compile(&rgd[0], &gitplane_graph::cel_env()).unwrap();
    let deploy = &graph.resources[0];
    assert!(
        is_ready(
            deploy,
            &[json!({"spec": {"replicas": 2}, "status": {"availableReplicas": 2}})]
        )
        .unwrap()
    );
    assert!(
        !is_ready(
            deploy,
            &[json!({"spec": {"replicas": 2}, "status": {"availableReplicas": 1}})]
        )
        .unwrap()
    );
    assert!(
        !is_ready(deploy, &[json!({"spec": {"replicas": 2}})]).unwrap(),
        "no status yet: not ready"
    );
    let pods = &graph.resources[1];
    let running = json!({"status": {"phase": "Running"}});
    let pending = json!({"status": {"phase": "Pending"}});
    assert!(is_ready(pods, &[running.clone(), running.clone()]).unwrap());
    assert!(!is_ready(pods, &[running, pending]).unwrap());
}

#[test]
fn deletion_runs_in_reverse_dependency_order() {
    let objects = fixture("unresolved-status");
    let graph = Graph::compile(&objects[0], &gitplane_graph::cel_env()).unwrap();
    let layers: Vec<Vec<&str>> = graph
        .deletion_layers()
        .iter()
        .map(|layer| {
            layer
                .iter()
                .map(|&i| graph.resources[i].id.as_str())
                .collect()
        })
        .collect();
    assert_eq!(
        layers,
        vec![vec!["endpointConfig"], vec!["service"], vec!["deployment"]]
    );
}

#[test]
fn breaking_schema_changes_between_two_graph_versions() {
    let old = fixture("basic-webapp");
    let mut new_rgd = old[0].clone();
    new_rgd.set(&["spec", "schema", "spec", "port"], json!("string"));
    new_rgd.set(
        &["spec", "schema", "spec", "tier"],
        json!("string | required=true"),
    );
    let env = gitplane_graph::cel_env();
    let before = Graph::compile(&old[0], &env).unwrap();
    let after = Graph::compile(&new_rgd, &env).unwrap();
    let changes = breaking_changes(&before.schema.spec.openapi, &after.schema.spec.openapi);
    assert_eq!(
        changes,
        vec![
            "spec.tier: newly required",
            "spec.port: type changed from \"integer\" to \"string\""
        ]
    );
}

/// A field named `runtime` is a field: only calls of kro's `runtime`
/// functions are refused outside `status.conditions`.
#[test]
fn runtime_is_refused_outside_conditions_but_a_runtime_field_is_not() {
    let rgd = |value: &str| {
        load(&format!(
            "apiVersion: kro.run/v1alpha1\nkind: ResourceGraphDefinition\nmetadata: {{name: x}}\n\
             spec:\n  schema:\n    apiVersion: v1\n    kind: X\n    spec:\n      runtime:\n        name: string | default=a\n\
             \x20 resources:\n  - id: cm\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata: {{name: x}}\n      data: {{v: \"{value}\"}}\n"
        ))
    };
    let env = gitplane_graph::cel_env();
    assert!(Graph::compile(&rgd("${schema.spec.runtime.name}")[0], &env).is_ok());
    let error = Graph::compile(
        &rgd("${runtime.condition(schema, 'Ready').status}")[0],
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("only available in schema.status.conditions"),
        "{error}"
    );
}

/// A status field that echoes a spec field has that field's type in the
/// generated CRD, as kro's type check gives it; others accept any value.
#[test]
fn status_fields_typed_from_the_spec() {
    let objects = load(
        "apiVersion: kro.run/v1alpha1\nkind: ResourceGraphDefinition\nmetadata: {name: x}\n\
         spec:\n  schema:\n    apiVersion: v1\n    kind: X\n    spec:\n      replicas: integer | default=2 minimum=1\n      \
         ports: '[]integer'\n    status:\n      replicas: ${schema.spec.replicas}\n      ports: ${schema.spec.ports}\n      \
         doubled: ${schema.spec.replicas * 2}\n  resources: []\n",
    );
    let graph = Graph::compile(&objects[0], &gitplane_graph::cel_env()).unwrap();
    let crd = generate_crd(&graph);
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["replicas"], json!({"type": "integer"}));
    assert_eq!(
        status["ports"],
        json!({"type": "array", "items": {"type": "integer"}})
    );
    assert_eq!(
        status["doubled"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
}
