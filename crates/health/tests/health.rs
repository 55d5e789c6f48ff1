#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! Built-in checks per kind, the conditions fallback, and Lua customizations
//! with their health_test.yaml files.

use std::path::Path;

use gitplane_health::{Health, HealthChecker, HealthStatus, LuaLimits, run_health_tests};
use gitplane_object::{LoadOptions, Syntax, parse_values};

use HealthStatus::{Degraded, Healthy, Progressing, Suspended};

fn object(yaml: &str) -> gitplane_object::Object {
    let mut docs = parse_values(
        yaml.as_bytes(),
        "test",
        Syntax::Yaml,
        &LoadOptions::default(),
    )
    .unwrap();
    gitplane_object::Object::try_from(docs.swap_remove(0).0).unwrap()
}

fn status(yaml: &str) -> (HealthStatus, String) {
    let health = HealthChecker::builtin()
        .check(&object(yaml))
        .expect("a built-in opinion");
    (health.status, health.message)
}

#[test]
fn deployments() {
    let base = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, generation: 2}\n";
    let rolled_out = format!(
        "{base}spec: {{replicas: 2}}\nstatus: {{observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2}}"
    );
    assert_eq!(status(&rolled_out).0, Healthy);
    let stale = format!(
        "{base}spec: {{replicas: 2}}\nstatus: {{observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2}}"
    );
    assert_eq!(status(&stale).0, Progressing);
    let rolling = format!(
        "{base}spec: {{replicas: 3}}\nstatus: {{observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 3}}"
    );
    let (s, m) = status(&rolling);
    assert_eq!(
        (s, m.as_str()),
        (
            Progressing,
            "Waiting for rollout to finish: 1 out of 3 new replicas have been updated..."
        )
    );
    let old_pending = format!(
        "{base}spec: {{replicas: 2}}\nstatus: {{observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 2}}"
    );
    assert!(
        status(&old_pending)
            .1
            .contains("1 old replicas are pending termination")
    );
    let stuck = format!(
        "{base}spec: {{replicas: 2}}\nstatus:\n  observedGeneration: 2\n  conditions: [{{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}}]"
    );
    assert_eq!(status(&stuck).0, Degraded);
    let paused = format!("{base}spec: {{replicas: 2, paused: true}}");
    assert_eq!(status(&paused).0, Suspended);
}

#[test]
fn stateful_sets_and_daemon_sets() {
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, generation: 1}\nspec: {replicas: 2}\n";
    assert_eq!(
        status(&format!(
            "{sts}status: {{observedGeneration: 1, readyReplicas: 1}}"
        ))
        .0,
        Progressing
    );
    assert_eq!(status(&format!("{sts}status: {{observedGeneration: 1, readyReplicas: 2, currentRevision: a, updateRevision: b}}")).0, Progressing);
    assert_eq!(status(&format!("{sts}status: {{observedGeneration: 1, readyReplicas: 2, currentRevision: b, updateRevision: b}}")).0, Healthy);
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, generation: 1}\n";
    assert_eq!(status(&format!("{ds}status: {{observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2}}")).0, Progressing);
    assert_eq!(status(&format!("{ds}status: {{observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}}")).0, Healthy);
}

#[test]
fn pods_and_jobs() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
    assert_eq!(
        status(&format!("{pod}status: {{phase: Pending}}")).0,
        Progressing
    );
    let crashing = format!(
        "{pod}status:\n  phase: Running\n  containerStatuses: [{{name: app, state: {{waiting: {{reason: CrashLoopBackOff, message: back-off restarting}}}}}}]"
    );
    assert_eq!(
        status(&crashing),
        (Degraded, "back-off restarting".to_string())
    );
    assert_eq!(status(&format!("{pod}spec: {{restartPolicy: Always}}\nstatus: {{phase: Running, conditions: [{{type: Ready, status: 'True'}}]}}")).0, Healthy);
    assert_eq!(
        status(&format!(
            "{pod}spec: {{restartPolicy: Never}}\nstatus: {{phase: Running}}"
        ))
        .0,
        Progressing,
        "a hook pod is done when it stops"
    );
    assert_eq!(
        status(&format!("{pod}status: {{phase: Succeeded}}")).0,
        Healthy
    );
    assert_eq!(
        status(&format!(
            "{pod}status: {{phase: Failed, message: OOMKilled}}"
        )),
        (Degraded, "OOMKilled".to_string())
    );

    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\n";
    assert_eq!(
        status(&format!("{job}status: {{active: 1}}")).0,
        Progressing
    );
    assert_eq!(
        status(&format!(
            "{job}status: {{conditions: [{{type: Complete, status: 'True'}}]}}"
        ))
        .0,
        Healthy
    );
    assert_eq!(
        status(&format!(
            "{job}status: {{conditions: [{{type: Failed, status: 'True', message: BackoffLimitExceeded}}]}}"
        )),
        (Degraded, "BackoffLimitExceeded".to_string())
    );
    assert_eq!(
        status(&format!("{job}spec: {{suspend: true}}")).0,
        Suspended
    );
    assert_eq!(
        status("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {suspend: true}").0,
        Suspended
    );
}

#[test]
fn networking_storage_and_autoscaling() {
    assert_eq!(
        status("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: ClusterIP}").0,
        Healthy
    );
    let lb = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: LoadBalancer}\n";
    assert_eq!(status(lb).0, Progressing);
    assert_eq!(
        status(&format!(
            "{lb}status: {{loadBalancer: {{ingress: [{{ip: 10.0.0.1}}]}}}}"
        ))
        .0,
        Healthy
    );
    assert_eq!(
        status("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}").0,
        Progressing
    );
    assert_eq!(status("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nstatus: {phase: Bound}").0, Healthy);
    assert_eq!(status("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nstatus: {phase: Pending}").0, Progressing);
    assert_eq!(status("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nstatus: {phase: Lost}").0, Degraded);
    let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n";
    assert_eq!(status(&format!("{hpa}status: {{conditions: [{{type: AbleToScale, status: 'True'}}, {{type: ScalingActive, status: 'True'}}]}}")).0, Healthy);
    assert_eq!(
        status(&format!(
            "{hpa}status: {{conditions: [{{type: ScalingActive, status: 'False', reason: FailedGetResourceMetric, message: no metrics}}]}}"
        )),
        (Degraded, "no metrics".to_string())
    );
}

#[test]
fn api_machinery_and_applications() {
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.b}\n";
    assert_eq!(status(crd).0, Progressing);
    assert_eq!(status(&format!("{crd}status: {{conditions: [{{type: Established, status: 'True'}}, {{type: NamesAccepted, status: 'True'}}]}}")).0, Healthy);
    assert_eq!(status(&format!("{crd}status: {{conditions: [{{type: NamesAccepted, status: 'False', reason: ListKindConflict}}]}}")).0, Degraded);
    assert_eq!(status("apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.x}\nstatus: {conditions: [{type: Available, status: 'True'}]}").0, Healthy);
    assert_eq!(
        status("apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\nstatus: {phase: Active}").0,
        Healthy
    );
    assert_eq!(
        status(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\nstatus: {phase: Terminating}"
        )
        .0,
        Progressing
    );
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: child}\n";
    assert_eq!(status(app).0, Progressing, "no status yet: not healthy yet");
    assert_eq!(
        status(&format!(
            "{app}status: {{health: {{status: Degraded, message: oops}}}}"
        )),
        (Degraded, "oops".to_string())
    );
    assert_eq!(
        status(&format!("{app}status: {{health: {{status: Healthy}}}}")).0,
        Healthy
    );
}

#[test]
fn custom_resources_by_their_conditions() {
    let cert =
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c, generation: 2}\n";
    assert!(
        HealthChecker::builtin().check(&object(cert)).is_none(),
        "no status: no opinion"
    );
    assert_eq!(
        status(&format!(
            "{cert}status: {{conditions: [{{type: Ready, status: 'True'}}]}}"
        ))
        .0,
        Healthy
    );
    assert_eq!(
        status(&format!(
            "{cert}status: {{conditions: [{{type: Ready, status: 'False', reason: Issuing, message: pending}}]}}"
        )),
        (Progressing, "Issuing: pending".to_string())
    );
    assert_eq!(status(&format!("{cert}status: {{conditions: [{{type: Ready, status: 'False', reason: IssuanceFailed}}]}}")).0, Degraded);
    assert_eq!(
        status(&format!(
            "{cert}status: {{observedGeneration: 1, conditions: [{{type: Ready, status: 'True'}}]}}"
        ))
        .0,
        Progressing,
        "an old generation's verdict"
    );
    assert_eq!(status(&format!("{cert}status: {{conditions: [{{type: Stalled, status: 'True', reason: Broken}}, {{type: Ready, status: 'True'}}]}}")).0, Degraded);
    assert!(
        HealthChecker::builtin()
            .check(&object(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}"
            ))
            .is_none()
    );
}

#[test]
fn resource_graphs_and_their_instances() {
    let rgd =
        "apiVersion: kro.run/v1alpha1\nkind: ResourceGraphDefinition\nmetadata: {name: webapp}\n";
    assert_eq!(status(rgd).0, Progressing, "no status yet");
    let ready = format!(
        "{rgd}status: {{conditions: [{{type: GraphAccepted, status: 'True'}}, {{type: Ready, status: 'True'}}]}}"
    );
    assert_eq!(status(&ready).0, Healthy);
    let refused = format!(
        "{rgd}status: {{conditions: [{{type: GraphAccepted, status: 'False', reason: InvalidResourceGraph, message: cycle}}, {{type: Ready, status: 'False'}}]}}"
    );
    assert_eq!(
        status(&refused),
        (Degraded, "InvalidResourceGraph: cycle".to_string())
    );
    let instance = "apiVersion: kro.run/v1alpha1\nkind: WebApp\nmetadata: {name: shop}\n";
    assert_eq!(status(instance).0, Progressing, "not reconciled yet");
    let active = format!(
        "{instance}status: {{state: ACTIVE, conditions: [{{type: Ready, status: 'True'}}]}}"
    );
    assert_eq!(status(&active).0, Healthy);
    let failed = format!(
        "{instance}status: {{state: ERROR, conditions: [{{type: Ready, status: 'False', reason: ReconcileError, message: boom}}]}}"
    );
    assert_eq!(status(&failed).0, Degraded);
}

fn customizations() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/customizations"))
}

#[test]
fn lua_customizations_override_the_builtin_checks() {
    let checker =
        HealthChecker::with_customizations(customizations(), LuaLimits::default()).unwrap();
    let db = object(
        "apiVersion: example.com/v1\nkind: Database\nmetadata: {name: d}\nspec: {replicas: 2}\nstatus: {phase: Running, syncedReplicas: 2}",
    );
    assert_eq!(
        checker.check(&db),
        Some(Health::new(Healthy, "2/2 replicas in sync"))
    );
    let placeholder = object(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {example.com/placeholder: 'true'}}",
    );
    assert_eq!(
        checker.check(&placeholder).unwrap().status,
        Progressing,
        "the core group's directory is _"
    );
}

#[test]
fn the_health_test_files_pass() {
    let report = run_health_tests(customizations(), LuaLimits::default()).unwrap();
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(report.passed(), 6);
}

#[test]
fn failing_cases_and_escaping_inputs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let kind = dir.path().join("example.com/Thing");
    std::fs::create_dir_all(&kind).unwrap();
    std::fs::write(
        kind.join("health.lua"),
        "return {status = 'Healthy', message = 'fine'}",
    )
    .unwrap();
    std::fs::write(kind.join("thing.yaml"), "kind: Thing\n").unwrap();
    std::fs::write(dir.path().join("secret.yaml"), "kind: Secret\n").unwrap();
    std::fs::write(
        kind.join("health_test.yaml"),
        "tests:\n- {healthStatus: {status: Healthy, message: fine}, inputPath: thing.yaml}\n\
         - {healthStatus: {status: Degraded, message: broken}, inputPath: thing.yaml}\n\
         - {healthStatus: {status: Healthy, message: fine}, inputPath: ../../secret.yaml}\n",
    )
    .unwrap();
    let report = run_health_tests(dir.path(), LuaLimits::default()).unwrap();
    assert_eq!(report.passed(), 1);
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].actual, Ok(Health::new(Healthy, "fine")));
    assert!(
        failures[1]
            .actual
            .as_ref()
            .unwrap_err()
            .contains("leaves the directory")
    );
}

#[test]
fn a_script_that_does_not_compile_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let kind = dir.path().join("example.com/Thing");
    std::fs::create_dir_all(&kind).unwrap();
    std::fs::write(kind.join("health.lua"), "return {status = ").unwrap();
    let error = HealthChecker::with_customizations(dir.path(), LuaLimits::default())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("example.com/Thing/health.lua"), "{error}");
}

/// Writes `example.com/Thing` under `dir` with a script, an input and a
/// test file.
fn thing(dir: &Path, script: &str, tests: &str) {
    let kind = dir.join("example.com/Thing");
    std::fs::create_dir_all(&kind).unwrap();
    std::fs::write(kind.join("health.lua"), script).unwrap();
    std::fs::write(kind.join("in.yaml"), "kind: Thing\nstatus: {ready: 2}\n").unwrap();
    std::fs::write(kind.join("health_test.yaml"), tests).unwrap();
}

#[test]
fn test_files_are_read_as_argo_cd_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    // Keys in any case (Go's JSON decoding), a case without a message
    // expects none.
    thing(
        dir.path(),
        "if obj.status.ready == 2 then return {status = 'Healthy'} end\n\
         return {status = 'Degraded', message = 'not ready'}",
        "Tests:\n- healthstatus: {STATUS: Healthy}\n  inputpath: in.yaml\n\
         - healthStatus: {status: Healthy, message: ''}\n  InputPath: in.yaml\n",
    );
    let report = run_health_tests(dir.path(), LuaLimits::default()).unwrap();
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(report.passed(), 2);
}

#[test]
fn an_unreadable_file_is_a_failing_case_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    thing(
        dir.path(),
        "return {status = 'Healthy'}",
        "tests:\n- healthStatus: {status: Healthy}\n  inputPath: in.yaml\n",
    );
    let broken = dir.path().join("example.com/Broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("health.lua"), "return {status = 'Healthy'}").unwrap();
    std::fs::write(
        broken.join("health_test.yaml"),
        "tests: [{healthStatus: {status: Fine}}]\n",
    )
    .unwrap();
    let uncompiled = dir.path().join("example.com/Uncompiled");
    std::fs::create_dir_all(&uncompiled).unwrap();
    std::fs::write(uncompiled.join("health.lua"), "return {status = ").unwrap();
    std::fs::write(
        uncompiled.join("health_test.yaml"),
        "tests: [{healthStatus: {status: Healthy}, inputPath: in.yaml}]\n",
    )
    .unwrap();
    let report = run_health_tests(dir.path(), LuaLimits::default()).unwrap();
    assert_eq!(report.passed(), 1, "the readable file still ran");
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    let unreadable = failures[0].actual.as_ref().unwrap_err();
    assert!(failures[0].expected.is_none());
    assert!(
        unreadable.contains("Broken/health_test.yaml") && unreadable.contains("\"Fine\""),
        "{unreadable}"
    );
    let uncompiled = failures[1].actual.as_ref().unwrap_err();
    assert!(uncompiled.contains("Uncompiled/health.lua"), "{uncompiled}");
}

#[test]
fn scripts_may_use_goto_as_argo_cd_scripts_do() {
    let dir = tempfile::tempdir().unwrap();
    thing(
        dir.path(),
        "local ready = 0\n\
         for _, n in ipairs({1, 2, 3}) do\n\
           if n == 2 then goto continue end\n\
           ready = ready + n\n\
           ::continue::\n\
         end\n\
         return {status = 'Healthy', message = 'sum ' .. ready}",
        "tests:\n- healthStatus: {status: Healthy, message: sum 4}\n  inputPath: in.yaml\n",
    );
    let report = run_health_tests(dir.path(), LuaLimits::default()).unwrap();
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
}

/// Writes `apps/Deployment/actions/` with a discovery script, two actions
/// and their test file, as Argo CD lays them out.
fn deployment_actions(dir: &Path, tests: &str) {
    let actions = dir.join("apps/Deployment/actions");
    std::fs::create_dir_all(actions.join("restart")).unwrap();
    std::fs::create_dir_all(actions.join("scale")).unwrap();
    std::fs::create_dir_all(actions.join("snapshot")).unwrap();
    std::fs::write(
        actions.join("discovery.lua"),
        "local actions = {}\n\
         actions['restart'] = {iconClass = 'fa fa-redo'}\n\
         actions['scale'] = {disabled = obj.spec.paused == true, params = {{name = 'replicas', default = '1'}}}\n\
         return actions",
    )
    .unwrap();
    std::fs::write(
        actions.join("restart/action.lua"),
        "local os = require('os')\n\
         obj.spec.template.metadata = obj.spec.template.metadata or {}\n\
         obj.spec.template.metadata.annotations = {['kubectl.kubernetes.io/restartedAt'] = os.date('!%Y-%m-%dT%XZ')}\n\
         return obj",
    )
    .unwrap();
    std::fs::write(
        actions.join("scale/action.lua"),
        "local n = tonumber(actionParams['replicas'])\n\
         if not n then error('invalid number: ' .. actionParams['replicas'], 0) end\n\
         obj.spec.replicas = n\n\
         return obj",
    )
    .unwrap();
    std::fs::write(
        actions.join("snapshot/action.lua"),
        "local cm = {apiVersion = 'v1', kind = 'ConfigMap', metadata = {name = obj.metadata.name .. '-snapshot', namespace = obj.metadata.namespace}, data = {replicas = tostring(obj.spec.replicas)}}\n\
         return {{operation = 'create', resource = cm}}",
    )
    .unwrap();
    std::fs::create_dir_all(actions.join("testdata")).unwrap();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n\
         spec:\n  replicas: 2\n  template:\n    spec:\n      containers: []\n";
    std::fs::write(actions.join("testdata/web.yaml"), deployment).unwrap();
    std::fs::write(
        actions.join("testdata/web-scaled.yaml"),
        deployment.replace("replicas: 2", "replicas: 6"),
    )
    .unwrap();
    std::fs::write(
        actions.join("testdata/web-restarted.yaml"),
        deployment.replace(
            "    spec:\n      containers",
            "    metadata:\n      annotations:\n        kubectl.kubernetes.io/restartedAt: \"2020-01-01T00:00:00Z\"\n    spec:\n      containers",
        ),
    )
    .unwrap();
    std::fs::write(
        actions.join("testdata/snapshot.yaml"),
        "- unstructuredObj:\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: web-snapshot, namespace: shop}\n    data: {replicas: \"2\"}\n",
    )
    .unwrap();
    std::fs::write(actions.join("action_test.yaml"), tests).unwrap();
}

#[test]
fn resource_action_tests_run_as_argo_cd_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    deployment_actions(
        dir.path(),
        "discoveryTests:\n\
         - inputPath: testdata/web.yaml\n  result:\n\
         \x20 - {name: restart, iconClass: fa fa-redo}\n\
         \x20 - {name: scale, disabled: false, params: [{name: replicas}]}\n\
         actionTests:\n\
         - {action: restart, inputPath: testdata/web.yaml, expectedOutputPath: testdata/web-restarted.yaml}\n\
         - {action: scale, inputPath: testdata/web.yaml, expectedOutputPath: testdata/web-scaled.yaml, parameters: {replicas: '6'}}\n\
         - {action: scale, inputPath: testdata/web.yaml, expectedErrorMessage: 'invalid number: many', parameters: {replicas: many}}\n\
         - {action: snapshot, inputPath: testdata/web.yaml, expectedOutputPath: testdata/snapshot.yaml}\n",
    );
    let report = run_health_tests(dir.path(), LuaLimits::default()).unwrap();
    let failures: Vec<_> = report.action_failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(report.actions.len(), 5);
    assert_eq!(report.passed(), 5);
}

#[test]
fn failing_resource_actions_say_where_they_differ() {
    let dir = tempfile::tempdir().unwrap();
    deployment_actions(
        dir.path(),
        "discoveryTests:\n\
         - inputPath: testdata/web.yaml\n  result: [{name: restart, iconClass: fa fa-redo}]\n\
         actionTests:\n\
         - {action: scale, inputPath: testdata/web.yaml, expectedOutputPath: testdata/web-scaled.yaml, parameters: {replicas: '5'}}\n\
         - {action: scale, inputPath: testdata/web.yaml, expectedErrorMessage: 'no', parameters: {replicas: '5'}}\n\
         - {action: ../../escape, inputPath: testdata/web.yaml, expectedOutputPath: testdata/web.yaml}\n",
    );
    let report = run_health_tests(dir.path(), LuaLimits::default()).unwrap();
    let failures: Vec<String> = report
        .action_failures()
        .map(|c| format!("{}: {}", c.name, c.failure.clone().unwrap()))
        .collect();
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(
        failures[0].contains("\"scale\""),
        "scale is not expected: {}",
        failures[0]
    );
    assert!(failures[1].contains("/spec/replicas"), "{}", failures[1]);
    assert!(
        failures[2].contains("expected the error"),
        "{}",
        failures[2]
    );
    assert!(
        failures[3].contains("invalid action name"),
        "{}",
        failures[3]
    );
}

#[test]
fn argocd_cm_health_customizations_apply_as_in_argo_cd() {
    use gitplane_health::Customizations;
    let data: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "resource.customizations.health.example.com_Widget":
            "return {status = 'Degraded', message = 'split key'}",
        "resource.customizations.health.ConfigMap":
            "return {status = 'Suspended', message = 'core group'}",
        "resource.customizations":
            "example.com/Widget:\n  health.lua: |\n    return {status = 'Healthy', message = 'legacy'}\n\
             example.com/Gadget:\n  health.lua: |\n    return {status = 'Healthy', message = 'legacy gadget'}\n",
        "url": "https://argocd.example.com",
    }))
    .unwrap();
    let customizations = Customizations::from_argocd_cm(&data, LuaLimits::default()).unwrap();
    let checker = HealthChecker::with(customizations);
    let widget = object("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n");
    assert_eq!(
        checker.check(&widget),
        Some(Health::new(Degraded, "split key")),
        "the split key wins over the legacy map"
    );
    let gadget = object("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n");
    assert_eq!(
        checker.check(&gadget),
        Some(Health::new(Healthy, "legacy gadget"))
    );
    let config = object("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
    assert_eq!(
        checker.check(&config),
        Some(Health::new(Suspended, "core group"))
    );

    let broken: serde_json::Map<String, serde_json::Value> = serde_json::from_value(
        serde_json::json!({"resource.customizations.health.example.com_Widget": "return {"}),
    )
    .unwrap();
    let error = Customizations::from_argocd_cm(&broken, LuaLimits::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("resource.customizations.health.example.com_Widget"),
        "{error}"
    );
}

#[test]
fn wildcard_customizations_apply_to_every_matching_kind() {
    let dir = tempfile::tempdir().unwrap();
    let script = |path: &str, message: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!("return {{status = 'Healthy', message = '{message}'}}"),
        )
        .unwrap();
    };
    script("_.example.com/_/health.lua", "any kind under example.com");
    script("db.example.com/Database/health.lua", "exactly a Database");
    let checker = HealthChecker::with_customizations(dir.path(), LuaLimits::default()).unwrap();
    let cache = object("apiVersion: cache.example.com/v1\nkind: Cache\nmetadata: {name: c}\n");
    assert_eq!(
        checker.check(&cache),
        Some(Health::new(Healthy, "any kind under example.com"))
    );
    let database = object("apiVersion: db.example.com/v1\nkind: Database\nmetadata: {name: d}\n");
    assert_eq!(
        checker.check(&database),
        Some(Health::new(Healthy, "exactly a Database")),
        "an exact match wins over a pattern"
    );
    let other = object("apiVersion: example.org/v1\nkind: Cache\nmetadata: {name: c}\n");
    assert_eq!(
        checker.check(&other),
        None,
        "example.org is not under example.com"
    );
}

#[test]
fn built_in_checks_judge_as_gitops_engine_does() {
    // autoscaling/v1 keeps its conditions in an annotation.
    let v1 = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  annotations:\n    autoscaling.alpha.kubernetes.io/conditions: '";
    let able =
        r#"[{"type":"AbleToScale","status":"True","reason":"SucceededRescale","message":"ok"}]"#;
    let failed = r#"[{"type":"ScalingActive","status":"False","reason":"FailedGetObjectMetric","message":"no metric"}]"#;
    assert_eq!(status(&format!("{v1}{able}'\n")), (Healthy, "ok".into()));
    assert_eq!(
        status(&format!("{v1}{failed}'\n")),
        (Degraded, "no metric".into())
    );
    let bare = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n";
    assert_eq!(status(bare).0, Progressing);
    // A load balancer entry counts even without an address.
    let lb = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{}]}}\n";
    assert_eq!(status(lb).0, Healthy);
    // A pod meant to finish is not Degraded by a back-off; one that failed
    // says which container and how.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
    let backoff = "containerStatuses: [{name: app, state: {waiting: {reason: CrashLoopBackOff}}}]";
    assert_eq!(
        status(&format!(
            "{pod}spec: {{restartPolicy: OnFailure}}\nstatus: {{phase: Running, {backoff}}}"
        ))
        .0,
        Progressing
    );
    assert_eq!(
        status(&format!(
            "{pod}spec: {{restartPolicy: Never}}\nstatus: {{phase: Failed, containerStatuses: [{{name: app, state: {{terminated: {{exitCode: 2}}}}}}]}}"
        )),
        (Degraded, "container \"app\" failed with exit code 2".into())
    );
    // The ignore-restart-policy annotation makes a Never pod judged as a
    // long-running one (but not a hook).
    let ignoring = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {argocd.argoproj.io/ignore-restart-policy: 'true'}\n";
    let ready = "status: {phase: Running, conditions: [{type: Ready, status: 'True'}]}";
    assert_eq!(
        status(&format!(
            "{ignoring}spec: {{restartPolicy: Never}}\n{ready}\n"
        ))
        .0,
        Healthy
    );
}
