#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! Every Pod Security Standards check, failing and passing, per level and
//! where it changed, per version; pod templates of the workload kinds; and
//! namespace labels.

use gitplane_object::{LoadOptions, Object, Syntax, load_objects};
use gitplane_policy::pss::{Standard, check_pod, summary};
use gitplane_policy::{Finding, Mode, PolicySet, check};
use serde_json::{Value, json};

/// Pod Security findings alone (no policies).
fn check_pod_security(
    objects: &[Object],
    enforce: Option<Standard>,
) -> Result<Vec<Finding>, String> {
    check(objects, enforce, &PolicySet::default()).map(|report| report.findings)
}

/// A pod that passes restricted at every version.
fn hardened() -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app",
            "image": "app:1",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
        }]
    })
}

/// The hardened pod with a change at a JSON pointer.
fn with(pointer: &str, value: Value) -> Value {
    let mut spec = hardened();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut spec
    } else {
        spec.pointer_mut(parent).unwrap()
    };
    match target {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        _ => panic!("{pointer}"),
    }
    spec
}

fn checks(spec: &Value, standard: &str) -> Vec<String> {
    check_pod(&json!({}), spec, Standard::parse(standard).unwrap())
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[track_caller]
fn fails(spec: Value, standard: &str, expected: &str) {
    let found = checks(&spec, standard);
    assert!(
        found.iter().any(|f| f == expected),
        "{standard}: expected {expected:?}, found {found:?}"
    );
}

#[track_caller]
fn passes(spec: Value, standard: &str) {
    let found = checks(&spec, standard);
    assert!(
        found.is_empty(),
        "{standard}: expected no failure, found {found:?}"
    );
}

const C: &str = "/containers/0/securityContext";

#[test]
fn the_hardened_pod_passes_every_level_and_version() {
    for standard in [
        "privileged",
        "baseline",
        "restricted",
        "restricted:v1.23",
        "restricted:v1.30",
        "baseline:latest",
    ] {
        passes(hardened(), standard);
    }
    // privileged checks nothing.
    passes(with("/hostNetwork", json!(true)), "privileged");
}

#[test]
fn baseline_checks() {
    fails(
        with("/hostNetwork", json!(true)),
        "baseline",
        "host namespaces (hostNetwork=true)",
    );
    let mut both = with("/hostPID", json!(true));
    both["hostIPC"] = json!(true);
    fails(
        both,
        "baseline",
        "host namespaces (hostPID=true, hostIPC=true)",
    );
    fails(
        with(&format!("{C}/privileged"), json!(true)),
        "baseline",
        "privileged (container \"app\" must not set securityContext.privileged=true)",
    );
    fails(
        with(
            &format!("{C}/capabilities"),
            json!({"add": ["NET_ADMIN", "CHOWN"]}),
        ),
        "baseline",
        "non-default capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
    );
    passes(
        with(
            &format!("{C}/capabilities"),
            json!({"add": ["CHOWN", "KILL"], "drop": ["ALL"]}),
        ),
        "baseline",
    );
    fails(
        with(
            "/volumes",
            json!([{"name": "root", "hostPath": {"path": "/"}}]),
        ),
        "baseline",
        "hostPath volumes (volume \"root\")",
    );
    fails(
        with(
            "/containers/0/ports",
            json!([{"containerPort": 80, "hostPort": 8080}]),
        ),
        "baseline",
        "hostPort (container \"app\" uses hostPort 8080)",
    );
    passes(
        with(
            "/containers/0/ports",
            json!([{"containerPort": 80, "hostPort": 0}]),
        ),
        "baseline",
    );
    fails(
        with(
            "/securityContext/appArmorProfile",
            json!({"type": "Unconfined"}),
        ),
        "baseline",
        "forbidden AppArmor profile (pod must not set securityContext.appArmorProfile.type to \"Unconfined\")",
    );
    passes(
        with(
            "/securityContext/appArmorProfile",
            json!({"type": "RuntimeDefault"}),
        ),
        "baseline",
    );
    fails(
        with(
            &format!("{C}/seLinuxOptions"),
            json!({"type": "spc_t", "user": "root"}),
        ),
        "baseline",
        "seLinuxOptions (container \"app\" set forbidden securityContext.seLinuxOptions: type \"spc_t\", user \"root\")",
    );
    fails(
        with(&format!("{C}/procMount"), json!("Unmasked")),
        "baseline",
        "procMount (container \"app\" must not set securityContext.procMount to \"Unmasked\")",
    );
    fails(
        with(
            "/securityContext/seccompProfile",
            json!({"type": "Unconfined"}),
        ),
        "baseline",
        "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")",
    );
    fails(
        with(
            "/securityContext/sysctls",
            json!([{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]),
        ),
        "baseline",
        "forbidden sysctls (kernel.msgmax)",
    );
    fails(
        with(&format!("{C}/windowsOptions"), json!({"hostProcess": true})),
        "baseline",
        "hostProcess (container \"app\" must not set securityContext.windowsOptions.hostProcess=true)",
    );
    fails(
        with(
            "/containers/0/livenessProbe",
            json!({"httpGet": {"host": "10.0.0.1", "port": 80}}),
        ),
        "baseline",
        "probe or lifecycle host (container \"app\" uses probe or lifecycle host \"10.0.0.1\")",
    );
}

#[test]
fn annotations_count_for_app_armor() {
    let metadata = json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}});
    let found = check_pod(&metadata, &hardened(), Standard::parse("baseline").unwrap());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].check, "appArmorProfile");
    let allowed = json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "localhost/profile"}});
    assert!(check_pod(&allowed, &hardened(), Standard::parse("baseline").unwrap()).is_empty());
}

#[test]
fn restricted_checks() {
    fails(
        with(
            "/volumes",
            json!([{"name": "data", "nfs": {"server": "x", "path": "/"}}, {"name": "tmp", "emptyDir": {}}]),
        ),
        "restricted",
        "restricted volume types (volume \"data\" uses restricted volume type \"nfs\")",
    );
    passes(
        with(
            "/volumes",
            json!([{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}]),
        ),
        "restricted",
    );
    fails(
        with(&format!("{C}/allowPrivilegeEscalation"), json!(true)),
        "restricted",
        "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)",
    );
    passes(
        with(&format!("{C}/allowPrivilegeEscalation"), json!(true)),
        "baseline",
    );
    fails(
        with("/securityContext/runAsNonRoot", json!(false)),
        "restricted",
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false; pod or container \"app\" must set securityContext.runAsNonRoot=true)",
    );
    // The container may set it instead of the pod.
    let mut at_container = with(
        "/securityContext",
        json!({"seccompProfile": {"type": "RuntimeDefault"}}),
    );
    at_container["containers"][0]["securityContext"]["runAsNonRoot"] = json!(true);
    passes(at_container, "restricted");
    fails(
        with(&format!("{C}/runAsUser"), json!(0)),
        "restricted",
        "runAsUser=0 (container \"app\" must not set runAsUser=0)",
    );
    fails(
        with("/securityContext", json!({"runAsNonRoot": true})),
        "restricted",
        "seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
    );
    fails(
        with(
            &format!("{C}/capabilities"),
            json!({"add": ["NET_BIND_SERVICE", "CHOWN"]}),
        ),
        "restricted",
        "unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"app\" must not include \"CHOWN\" in securityContext.capabilities.add)",
    );
    passes(
        with(
            &format!("{C}/capabilities"),
            json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
        ),
        "restricted",
    );
}

#[test]
fn several_containers_are_named_together() {
    let mut spec = hardened();
    spec["initContainers"] = json!([{"name": "init", "image": "x"}]);
    spec["containers"][0]["securityContext"] = json!({});
    fails(
        spec,
        "restricted",
        "allowPrivilegeEscalation != false (containers \"init\", \"app\" must set securityContext.allowPrivilegeEscalation=false)",
    );
}

#[test]
fn versions_change_what_is_allowed() {
    let engine = with(
        &format!("{C}/seLinuxOptions"),
        json!({"type": "container_engine_t"}),
    );
    fails(
        engine.clone(),
        "baseline:v1.30",
        "seLinuxOptions (container \"app\" set forbidden securityContext.seLinuxOptions: type \"container_engine_t\")",
    );
    passes(engine, "baseline:v1.31");
    let rmem = with(
        "/securityContext/sysctls",
        json!([{"name": "net.ipv4.tcp_rmem", "value": "4096"}]),
    );
    fails(
        rmem.clone(),
        "baseline:v1.31",
        "forbidden sysctls (net.ipv4.tcp_rmem)",
    );
    passes(rmem, "baseline:v1.32");
    let keepalive = with(
        "/securityContext/sysctls",
        json!([{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]),
    );
    fails(
        keepalive.clone(),
        "baseline:v1.28",
        "forbidden sysctls (net.ipv4.tcp_keepalive_time)",
    );
    passes(keepalive, "baseline:v1.29");
    let probe_host = with(
        "/containers/0/readinessProbe",
        json!({"tcpSocket": {"host": "db", "port": 5432}}),
    );
    passes(probe_host.clone(), "baseline:v1.33");
    fails(
        probe_host,
        "baseline:v1.34",
        "probe or lifecycle host (container \"app\" uses probe or lifecycle host \"db\")",
    );
    let mut user_ns = with(&format!("{C}/procMount"), json!("Unmasked"));
    user_ns["hostUsers"] = json!(false);
    fails(
        user_ns.clone(),
        "baseline:v1.34",
        "procMount (container \"app\" must not set securityContext.procMount to \"Unmasked\")",
    );
    passes(user_ns.clone(), "baseline:v1.35");
    // From 1.35 restricted takes back what baseline allows a user namespace.
    fails(
        user_ns,
        "restricted:v1.35",
        "procMount (container \"app\" must not set securityContext.procMount to \"Unmasked\")",
    );
    assert!(Standard::parse("strict").is_err());
    assert!(Standard::parse("restricted:v2").is_err());
    assert_eq!(
        Standard::parse("restricted").unwrap().to_string(),
        "restricted:latest"
    );
}

/// Restricted checks apply from the version that introduced them, and a
/// Windows pod or one in a user namespace is exempt where PSA exempts it.
#[test]
fn restricted_checks_start_at_their_version() {
    let ids = |spec: &Value, standard: &str| -> Vec<&'static str> {
        check_pod(&json!({}), spec, Standard::parse(standard).unwrap())
            .iter()
            .map(|f| f.check)
            .collect()
    };
    let bare = json!({"securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "app", "image": "app:1"}]});
    passes(bare.clone(), "restricted:v1.0");
    assert_eq!(
        ids(&bare, "restricted:v1.8"),
        vec!["allowPrivilegeEscalation"]
    );
    assert!(!ids(&bare, "restricted:v1.18").contains(&"seccompProfile_restricted"));
    assert!(ids(&bare, "restricted:v1.19").contains(&"seccompProfile_restricted"));
    assert!(!ids(&bare, "restricted:v1.21").contains(&"capabilities_restricted"));
    assert!(ids(&bare, "restricted:v1.22").contains(&"capabilities_restricted"));
    let root = with(&format!("{C}/runAsUser"), json!(0));
    passes(root.clone(), "restricted:v1.22");
    assert_eq!(ids(&root, "restricted:v1.23"), vec!["runAsUser"]);
    let mut windows = bare.clone();
    windows["os"] = json!({"name": "windows"});
    assert!(ids(&windows, "restricted:v1.24").contains(&"allowPrivilegeEscalation"));
    assert!(ids(&windows, "restricted:v1.25").is_empty());
}

/// Before 1.19, seccomp is judged by the alpha annotations.
#[test]
fn seccomp_annotations_count_before_1_19() {
    let mut pod = json!({"metadata": {"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/app": "runtime/default"}},
        "spec": hardened()});
    let metadata = pod["metadata"].clone();
    let failures = check_pod(
        &metadata,
        &pod["spec"],
        Standard::parse("baseline:v1.18").unwrap(),
    );
    assert_eq!(
        failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            "seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\")"
        ]
    );
    assert!(
        check_pod(
            &metadata,
            &pod["spec"],
            Standard::parse("baseline:v1.19").unwrap()
        )
        .is_empty()
    );
    pod["metadata"]["annotations"]["seccomp.security.alpha.kubernetes.io/pod"] =
        json!("localhost/p");
    assert!(
        check_pod(
            &pod["metadata"],
            &pod["spec"],
            Standard::parse("baseline:v1.18").unwrap()
        )
        .is_empty()
    );
}

#[test]
fn summaries_read_like_pod_security_admission() {
    let spec = with(&format!("{C}/allowPrivilegeEscalation"), json!(true));
    let standard = Standard::parse("restricted:latest").unwrap();
    let failures = check_pod(&json!({}), &spec, standard);
    assert_eq!(
        summary(standard, &failures),
        "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)"
    );
}

fn objects(text: &str) -> Vec<Object> {
    load_objects(
        text.as_bytes(),
        "test.yaml",
        Syntax::Yaml,
        &LoadOptions::default(),
    )
    .unwrap()
}

#[test]
fn workload_templates_and_namespace_labels() {
    let set = objects(
        r#"
apiVersion: v1
kind: Namespace
metadata:
  name: team
  labels:
    pod-security.kubernetes.io/enforce: baseline
    pod-security.kubernetes.io/enforce-version: v1.30
    pod-security.kubernetes.io/warn: restricted
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  template:
    spec:
      containers: [{name: web, image: web:1}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: team}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          hostPID: true
          containers: [{name: job, image: job:1}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-pod, namespace: team}
"#,
    );
    let findings = check_pod_security(&set, None).unwrap();
    let summary: Vec<(String, Mode, String)> = findings
        .iter()
        .map(|f| (f.object.clone(), f.result.mode, f.result.rule.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "Deployment team/web".to_string(),
                Mode::Warn,
                "restricted:latest".to_string()
            ),
            (
                "CronJob team/nightly".to_string(),
                Mode::Enforce,
                "baseline:v1.30".to_string()
            ),
            (
                "CronJob team/nightly".to_string(),
                Mode::Warn,
                "restricted:latest".to_string()
            ),
        ]
    );
    assert_eq!(
        findings[1].pod_security.as_ref().unwrap().path,
        "spec.jobTemplate.spec.template.spec"
    );
    assert_eq!(findings[1].origin.as_deref(), Some("test.yaml:19"));
    // A level given by the caller applies everywhere, as Enforce.
    let given = check_pod_security(&set, Some(Standard::parse("restricted").unwrap())).unwrap();
    assert!(
        given
            .iter()
            .any(|f| f.object == "Deployment team/web" && f.result.mode == Mode::Enforce)
    );
    // A malformed label is an error naming the namespace.
    let bad = objects(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {pod-security.kubernetes.io/enforce: strict}}\n",
    );
    assert!(
        check_pod_security(&bad, None)
            .unwrap_err()
            .contains("Namespace x")
    );
}
