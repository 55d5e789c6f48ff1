#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! `gitplane policy check` and `policy test`: the golden paths pass Pod
//! Security "restricted" and the example platform's policies; a workload
//! that does not fails with PSA's messages and exit 3; the tenants'
//! namespace labels are honoured; JSON output; Kyverno CLI test files;
//! Gatekeeper (gator) suites and constraints; invalid and hostile policies.

mod common;

use common::{gitplane, kubectl, repo_root};

fn path(relative: &str) -> String {
    repo_root().join(relative).to_str().unwrap().to_string()
}

/// Runs gitplane, which must exit 0; its stdout.
fn succeeds(args: &[&str]) -> String {
    let out = gitplane(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// An embedded API server (no simulator) with the CRDs of a fixture file
/// applied: its directory (kept while the test runs), the server and its
/// kubeconfig.
fn server_with_crds(crds: &str) -> (tempfile::TempDir, common::ApiServer, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = common::start_apiserver(&data, false);
    let kc = data.join("kubeconfig");
    let crds = repo_root()
        .join("crates/cli/tests/fixtures/policy")
        .join(crds);
    let (ok, out) = kubectl(&kc, &["apply", "-f", crds.to_str().unwrap()], None);
    assert!(ok, "{out}");
    (dir, server, kc)
}

/// `kubectl apply -f -` of `yaml`, retried while the kinds it needs are not
/// served yet (a CRD just created); the last `(ok, output)`.
fn apply_when_served(kubeconfig: &std::path::Path, yaml: &str) -> (bool, String) {
    let mut applied = (false, String::new());
    for _ in 0..50 {
        applied = kubectl(kubeconfig, &["apply", "-f", "-"], Some(yaml));
        if applied.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    applied
}

/// `gitplane policy check --policies P… OBJECTS -o json`, which must exit 3
/// (an enforced violation); its findings.
fn enforced_findings(policies: &[&str], objects: &str) -> Vec<serde_json::Value> {
    let mut args = vec!["policy", "check"];
    for policy in policies {
        args.extend(["--policies", policy]);
    }
    args.extend([objects, "-o", "json"]);
    let out = gitplane(&args);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    findings.as_array().unwrap().clone()
}

#[test]
fn the_golden_paths_pass_restricted() {
    let graphs = path("examples/platform/platform/graphs");
    let policies = path("examples/platform/platform/policies");
    let mut args = vec![
        "policy",
        "check",
        "--pss",
        "restricted",
        "--policies",
        &policies,
        "--graphs",
        &graphs,
    ];
    let paths: Vec<String> = [
        "examples/platform/apps/shop/overlays/dev",
        "examples/platform/apps/shop/overlays/staging",
        "examples/platform/apps/shop/overlays/prod",
        "examples/platform/apps/catalog/overlays/prod",
        "examples/platform/platform/tenants",
        "examples/platform/platform/tools",
        "examples/platform/infrastructure",
    ]
    .iter()
    .map(|p| path(p))
    .collect();
    args.extend(paths.iter().map(String::as_str));
    let stdout = succeeds(&args);
    assert!(
        stdout.contains("against 5 policies: 0 violations (0 enforced)"),
        "{stdout}"
    );
}

#[test]
fn a_workload_that_fails_is_reported_and_exits_3() {
    let ingress = path("examples/platform/infrastructure/ingress-nginx");
    let out = gitplane(&["policy", "check", "--pss", "restricted:v1.30", &ingress]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        // A Helm chart, rendered with helm template's defaults.
        stdout.contains("Deployment default/release-name-controller (examples/platform/infrastructure/ingress-nginx/templates/deployment.yaml (rendered):1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("violates PodSecurity \"restricted:v1.30\": allowPrivilegeEscalation != false (container \"controller\" must set securityContext.allowPrivilegeEscalation=false)"),
        "{stdout}"
    );
    // Baseline allows it.
    let out = gitplane(&["policy", "check", "--pss", "baseline", &ingress]);
    assert_eq!(out.status.code(), Some(0));
    // A level that does not exist is a usage error.
    let out = gitplane(&["policy", "check", "--pss", "strict", &ingress]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn namespace_labels_are_honoured_and_json_lists_findings() {
    let graphs = path("examples/platform/platform/graphs");
    let tenants = path("examples/platform/platform/tenants");
    let pod = path("crates/cli/tests/fixtures/policy/privileged-pod.yaml");
    let out = gitplane(&[
        "policy", "check", "--graphs", &graphs, &tenants, &pod, "-o", "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = findings.as_array().unwrap();
    let enforce = findings
        .iter()
        .find(|f| f["mode"] == "Enforce")
        .expect("an enforced finding");
    assert_eq!(enforce["object"], "Pod shop-dev/debug");
    assert_eq!(enforce["source"], "namespace shop-dev");
    assert_eq!(enforce["standard"], "restricted:latest");
    let checks: Vec<&str> = enforce["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for check in [
        "hostNamespaces",
        "privileged",
        "allowPrivilegeEscalation",
        "runAsUser",
    ] {
        assert!(checks.contains(&check), "{checks:?}");
    }
    assert!(
        findings
            .iter()
            .any(|f| f["mode"] == "Warn" || f["mode"] == "Audit")
    );
}

#[test]
fn the_example_policies_refuse_what_they_say() {
    let policies = path("examples/platform/platform/policies");
    let bad = path("crates/cli/tests/fixtures/policy/violations.yaml");
    let findings = enforced_findings(&[&policies], &bad);
    let found: Vec<(String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["policy"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (policy, rule) in [
        ("require-team-labels", "require-team-labels"),
        ("disallow-latest-tag", "autogen-require-image-tag"),
        ("disallow-latest-tag", "autogen-validate-image-tag"),
        ("pod-security-restricted", "autogen-restricted"),
        ("require-requests-limits", "autogen-validate-resources"),
        ("disallow-nodeport", "disallow-nodeport"),
    ] {
        assert!(
            found.contains(&(policy.to_string(), rule.to_string())),
            "{policy}/{rule} in {found:?}"
        );
    }
    let labels = findings
        .iter()
        .find(|f| f["policy"] == "require-team-labels")
        .unwrap();
    assert_eq!(labels["object"], "Deployment shop-dev/legacy");
    assert_eq!(
        labels["message"],
        "Deployment legacy is missing the label(s) team, app.kubernetes.io/name"
    );
    assert_eq!(
        labels["origin"],
        "crates/cli/tests/fixtures/policy/violations.yaml:2"
    );
}

#[test]
fn kyverno_cli_tests_run_and_pass() {
    let dir = path("crates/policy/tests/kyverno");
    let stdout = succeeds(&["policy", "test", &dir]);
    assert!(
        stdout.contains("Test summary: 127 passed, 0 failed (22 test files)"),
        "{stdout}"
    );
    let out = gitplane(&["policy", "test", &dir, "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 127);
    assert!(rows.iter().all(|r| r["ok"] == true));
    // Every verdict is exercised, not only passes.
    for verdict in ["pass", "fail", "warn", "skip", "error"] {
        assert!(rows.iter().any(|r| r["actual"] == verdict), "{verdict}");
    }
}

#[test]
fn gatekeeper_suites_run_and_pass() {
    let dir = path("crates/policy/tests/gatekeeper");
    let stdout = succeeds(&["policy", "verify", &dir]);
    assert!(
        stdout.contains("Test summary: 9 passed, 0 failed, 0 skipped (2 suites)"),
        "{stdout}"
    );
    let out = gitplane(&["policy", "verify", &dir, "--run", "taken", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{
            "suite": "crates/policy/tests/gatekeeper/unique-hosts/suite.yaml",
            "test": "one-ingress-per-host",
            "case": "taken",
            "result": "pass",
            "violations": ["host shop.example.com is already served by Ingress shop/shop"],
            "detail": ""
        }])
    );
}

#[test]
fn gatekeeper_suite_failures_wrong_kinds_and_escapes_fail() {
    let out = gitplane(&[
        "policy",
        "verify",
        &path("crates/cli/tests/fixtures/policy/gatekeeper-mismatch"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "expects-a-violation                         FAIL: assertions[0]: expected at least one violation, got 0",
        "leaves the repository root",
        "constraint one-ingress-per-host is a UniqueHosts, not a TeamLabels",
        "Test summary: 0 passed, 3 failed, 0 skipped (1 suites)",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}");
    }
}

#[test]
fn gatekeeper_constraints_are_checked_with_the_render_as_inventory() {
    let dir = "crates/policy/tests/gatekeeper";
    let template = path(&format!("{dir}/team-labels/template.yaml"));
    let constraint = path(&format!("{dir}/team-labels/constraint.yaml"));
    let findings = enforced_findings(
        &[&template, &constraint],
        &path(&format!("{dir}/team-labels/samples/missing-both.yaml")),
    );
    let messages: Vec<&str> = findings
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Deployment api must carry the label \"team\"",
            "Deployment api must carry the label \"tier\""
        ]
    );
    // Parameters the template's schema refuses make the constraint invalid.
    let out = gitplane(&[
        "policy",
        "check",
        "--policies",
        &template,
        "--policies",
        &path(&format!("{dir}/team-labels/constraint-invalid.yaml")),
        &path(&format!("{dir}/team-labels/samples/allowed.yaml")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("constraint-invalid.yaml:2: TeamLabels malformed: spec.parameters.labels: must be of type array"),
        "{stderr}"
    );
    // A warn constraint that reads data.inventory: each Ingress sees the
    // other among the rendered objects; warnings do not fail the check.
    let out = succeeds(&[
        "policy",
        "check",
        "--policies",
        &path(&format!("{dir}/unique-hosts/template.yaml")),
        "--policies",
        &path(&format!("{dir}/unique-hosts/constraint.yaml")),
        &path(&format!("{dir}/unique-hosts/samples/shop.yaml")),
        &path(&format!("{dir}/unique-hosts/samples/copycat.yaml")),
        "-o",
        "json",
    ]);
    let findings: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warned: Vec<(&str, &str)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["object"].as_str().unwrap(), f["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        warned,
        [
            ("Ingress shop/shop", "warn"),
            ("Ingress other/copycat", "warn")
        ]
    );
}

#[test]
fn kyverno_cli_test_mismatches_and_escapes_fail() {
    let out = gitplane(&[
        "policy",
        "test",
        &path("crates/cli/tests/fixtures/policy/mismatch"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Test summary: 0 passed, 2 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("MISMATCH: no such resource"), "{stdout}");
    let out = gitplane(&[
        "policy",
        "test",
        &path("crates/cli/tests/fixtures/policy/escape"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("leaves the repository root"), "{stderr}");
}

#[test]
fn invalid_policies_are_errors_with_file_line_and_object() {
    let policies = path("crates/cli/tests/fixtures/policy/invalid/policies.yaml");
    let pod = path("crates/cli/tests/fixtures/policy/privileged-pod.yaml");
    let out = gitplane(&["policy", "check", "--policies", &policies, &pod]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "invalid/policies.yaml:11: ValidatingAdmissionPolicy broken-cel: validations[0]: syntax error"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "invalid/policies.yaml:22: ClusterPolicy broken-action: rule \"r\": failure action \"Block\""
        ),
        "{stderr}"
    );
}

/// A CEL cost bomb and a string bomb stop at the limits and fail closed;
/// a catastrophic regex and a backtracking wildcard pattern over a 50 KB
/// value finish (both matchers are linear).
#[test]
fn hostile_policies_are_stopped_by_limits() {
    let policies = path("crates/cli/tests/fixtures/policy/hostile/policies.yaml");
    let victim = path("crates/cli/tests/fixtures/policy/hostile/resources.yaml");
    let findings = enforced_findings(&[&policies], &victim);
    let message = |policy: &str, rule: &str| -> String {
        findings
            .iter()
            .find(|f| f["policy"] == policy && f["rule"] == rule)
            .map(|f| f["message"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    // Each of the two expressions is stopped by a limit: its own (cost,
    // size), or the 1 s deadline on a slow debug build (CI's once was).
    let bomb = message("cost-bomb", "cost-bomb");
    let stops: Vec<&str> = bomb
        .split("; ")
        .filter(|m| {
            [
                "cost limit exceeded",
                "size limit exceeded",
                "time limit exceeded",
            ]
            .iter()
            .any(|limit| m.contains(limit))
        })
        .collect();
    assert_eq!(stops.len(), 2, "{bomb}");
    // The regex does not match (the text ends in '!'): no finding, no hang.
    assert_eq!(message("regex-bomb", "catastrophic-backtracking"), "");
    assert!(message("regex-bomb", "wildcard-backtracking").contains("does not match"));
}

/// The embedded API server admits pods as a cluster does: a privileged pod
/// in a namespace labelled `enforce: restricted` is refused with PSA's
/// message; a Deployment whose template fails is created with a warning.
#[test]
fn the_embedded_server_enforces_namespace_pod_security_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = common::start_apiserver(&data, true);
    let kc = data.join("kubeconfig");
    assert!(kubectl(&kc, &["create", "namespace", "team"], None).0);
    let (ok, out) = kubectl(
        &kc,
        &[
            "label",
            "namespace",
            "team",
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
    assert!(ok, "{out}");
    let pod = std::fs::read_to_string(
        repo_root().join("crates/cli/tests/fixtures/policy/privileged-pod.yaml"),
    )
    .unwrap()
    .replace("shop-dev", "team");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&pod));
    assert!(!ok, "{out}");
    assert!(
        out.contains("pods \"debug\" is forbidden: violates PodSecurity \"restricted:latest\": host namespaces (hostNetwork=true), privileged (container \"shell\" must not set securityContext.privileged=true)"),
        "{out}"
    );
    let (ok, out) = kubectl(
        &kc,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "-n",
            "team",
        ],
        None,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Warning: would violate PodSecurity \"restricted:latest\""),
        "{out}"
    );
    // A namespace without labels admits the same pod.
    let elsewhere = pod.replace("namespace: team", "namespace: default");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&elsewhere));
    assert!(ok, "{out}");
}

/// ValidatingAdmissionPolicies as a cluster applies them, through kubectl:
/// a policy that does not compile is refused; a Deny binding with a
/// ConfigMap parameter refuses creations and updates (client-side and
/// server-side apply, scale by patch) with the policy's message; a Warn
/// binding warns; an object the binding's selector leaves out is admitted.
/// Stored Kyverno policies admit writes as Kyverno's webhook would: an
/// Enforce rule refuses, an Audit rule lets through, a policy that does not
/// compile is refused itself.
#[test]
fn the_embedded_server_enforces_stored_kyverno_policies() {
    let (_dir, _server, kc) = server_with_crds("kyverno-admission/crds.yaml");
    let fixtures = repo_root().join("crates/cli/tests/fixtures/policy/kyverno-admission");
    let policies = std::fs::read_to_string(fixtures.join("policies.yaml")).unwrap();
    let applied = apply_when_served(&kc, &policies);
    assert!(applied.0, "{}", applied.1);
    let broken = policies.replacen("pattern:", "patern:", 1);
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&broken));
    assert!(!ok, "a policy that does not compile is refused: {out}");
    assert!(
        out.contains("ClusterPolicy") && out.contains("no-latest"),
        "{out}"
    );
    let pod = |name: &str, image: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec: {{containers: [{{name: a, image: '{image}'}}]}}\n"
        )
    };
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&pod("floating", "nginx:latest")),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("Kyverno policy pinned-images (rule no-latest)")
            && out.contains("images must be pinned"),
        "{out}"
    );
    // Pinned: admitted, and mutated before validation: the team label
    // the Audit rule asks for is added where it is missing, by create,
    // update and server-side apply alike.
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&pod("pinned", "nginx:1.27")),
    );
    assert!(ok, "{out}");
    let team = |name: &str| {
        kubectl(
            &kc,
            &["get", "pod", name, "-o", "jsonpath={.metadata.labels.team}"],
            None,
        )
    };
    assert_eq!(team("pinned"), (true, "unassigned".to_string()));
    let (ok, out) = kubectl(
        &kc,
        &["apply", "--server-side", "-f", "-"],
        Some(&pod("applied", "nginx:1.27")),
    );
    assert!(ok, "{out}");
    assert_eq!(team("applied"), (true, "unassigned".to_string()));
    let (ok, out) = kubectl(
        &kc,
        &["label", "pod", "pinned", "team=shop", "--overwrite"],
        None,
    );
    assert!(ok, "{out}");
    assert_eq!(
        team("pinned"),
        (true, "shop".to_string()),
        "an existing label is kept"
    );
    // The MutatingPolicy's apply configuration, on every write path.
    for name in ["pinned", "applied"] {
        assert_eq!(
            kubectl(
                &kc,
                &[
                    "get",
                    "pod",
                    name,
                    "-o",
                    "jsonpath={.metadata.annotations.owner}"
                ],
                None,
            ),
            (true, "default-team".to_string())
        );
    }
    // The PolicyException lets a debug pod float.
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&pod("debug-shell", "busybox:latest")),
    );
    assert!(ok, "excepted: {out}");
    let broken = policies.replacen("Object{metadata", "Object{metadata:", 1);
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&broken));
    assert!(
        !ok,
        "a MutatingPolicy that does not compile is refused: {out}"
    );
    assert!(out.contains("MutatingPolicy"), "{out}");
}

/// A stored DeletingPolicy runs on its schedule (every minute here): the
/// bare pods its condition selects are deleted, the others stay. Waits for
/// the next minute, so up to a minute.
#[test]
fn the_embedded_server_runs_stored_deleting_policies() {
    let (_dir, _server, kc) = server_with_crds("kyverno-admission/crds.yaml");
    let policy = r#"
apiVersion: policies.kyverno.io/v1alpha1
kind: DeletingPolicy
metadata: {name: expired-debug-pods}
spec:
  schedule: "* * * * *"
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], resources: [pods]}
  conditions:
  - name: marked-expired
    expression: "object.metadata.?labels.?expired.orValue('') == 'yes'"
"#;
    let applied = apply_when_served(&kc, policy);
    assert!(applied.0, "{}", applied.1);
    let pod = |name: &str, expired: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default, labels: {{expired: '{expired}'}}}}\nspec: {{containers: [{{name: a, image: 'busybox:1.36'}}]}}\n"
        )
    };
    assert!(kubectl(&kc, &["apply", "-f", "-"], Some(&pod("old-shell", "yes"))).0);
    assert!(kubectl(&kc, &["apply", "-f", "-"], Some(&pod("kept", "no"))).0);
    let names = || kubectl(&kc, &["get", "pods", "-n", "default", "-o", "name"], None).1;
    let mut last = String::new();
    for _ in 0..150 {
        last = names();
        if !last.contains("old-shell") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(last.trim(), "pod/kept", "only the expired pod is deleted");
}

/// Gatekeeper installed in the embedded server: a stored template gets its
/// constraint CRD (parameters validated by the template's schema), a
/// template that does not compile is refused, and a `deny` constraint
/// refuses with Gatekeeper's message while a `warn` one reads the stored
/// objects as its inventory and warns.
#[test]
fn the_embedded_server_enforces_stored_gatekeeper_constraints() {
    let (_dir, _server, kc) = server_with_crds("gatekeeper-admission/crd.yaml");
    let fixtures = repo_root().join("crates/policy/tests/gatekeeper");
    let read = |file: &str| std::fs::read_to_string(fixtures.join(file)).unwrap();
    let templates = format!(
        "{}\n---\n{}",
        read("team-labels/template.yaml"),
        read("unique-hosts/template.yaml")
    );
    let retry = |yaml: &str| apply_when_served(&kc, yaml);
    // An object stored before any constraint, for the audit to find.
    let (ok, out) = kubectl(&kc, &["create", "namespace", "audited"], None);
    assert!(ok, "{out}");
    let unlabelled = read("team-labels/samples/missing-both.yaml")
        .replace("namespace: shop", "namespace: audited");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&unlabelled));
    assert!(ok, "{out}");
    let applied = retry(&templates);
    assert!(applied.0, "{}", applied.1);
    let broken = read("team-labels/template.yaml").replace("violation[", "deny[");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&broken));
    assert!(!ok, "a template without violation is refused: {out}");
    assert!(out.contains("missing required rules: [violation]"), "{out}");
    // The constraints' CRDs come from the templates.
    let constraints = format!(
        "{}\n---\n{}",
        read("team-labels/constraint.yaml"),
        read("unique-hosts/constraint.yaml")
    );
    let applied = retry(&constraints);
    assert!(applied.0, "{}", applied.1);
    let (ok, out) = kubectl(&kc, &["get", "constraints"], None);
    assert!(
        ok && out.contains("team-and-tier") && out.contains("one-ingress-per-host"),
        "{out}"
    );
    // The audit runs when a constraint is written: the Deployment stored
    // before it is listed in its status.
    let mut audited = String::new();
    for _ in 0..100 {
        audited = kubectl(
            &kc,
            &["get", "teamlabels", "team-and-tier", "-o", "jsonpath={.status.totalViolations} {.status.violations[0].name} {.status.violations[0].namespace}"],
            None,
        )
        .1;
        if audited == "2 api audited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(audited, "2 api audited");
    let bad_parameters = read("team-labels/constraint.yaml").replace("- key: tier", "- key: 7");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&bad_parameters));
    assert!(
        !ok,
        "parameters are checked against the template's schema: {out}"
    );
    let (ok, out) = kubectl(&kc, &["create", "namespace", "shop"], None);
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&read("team-labels/samples/missing-both.yaml")),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "admission webhook \"validation.gatekeeper.sh\" denied the request: [team-and-tier] Deployment api must carry the label \"team\""
        ),
        "{out}"
    );
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&read("team-labels/samples/allowed.yaml")),
    );
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&kc, &["create", "namespace", "other"], None);
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&read("unique-hosts/samples/shop.yaml")),
    );
    assert!(ok && !out.contains("Warning"), "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&read("unique-hosts/samples/copycat.yaml")),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "[one-ingress-per-host] host shop.example.com is already served by Ingress shop/shop"
        ),
        "{out}"
    );
}

/// The Pod Security admission configuration (`--admission-control-config-file`):
/// its defaults apply to namespaces without labels (a label wins), and its
/// exempt namespaces and runtime classes are not checked.
#[test]
fn pod_security_defaults_and_exemptions_come_from_the_admission_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = path("crates/cli/tests/fixtures/policy/pod-security-config/admission.yaml");
    let _server =
        common::start_apiserver_with(&data, false, &["--admission-control-config-file", &config]);
    let kc = data.join("kubeconfig");
    for ns in ["shop", "legacy", "open"] {
        assert!(kubectl(&kc, &["create", "namespace", ns], None).0);
    }
    let (ok, out) = kubectl(
        &kc,
        &[
            "label",
            "namespace",
            "open",
            "pod-security.kubernetes.io/enforce=privileged",
        ],
        None,
    );
    assert!(ok, "{out}");
    let privileged =
        std::fs::read_to_string(path("crates/cli/tests/fixtures/policy/privileged-pod.yaml"))
            .unwrap();
    let create = |ns: &str, name: &str, runtime: Option<&str>| {
        let mut pod = privileged
            .replace("namespace: shop-dev", &format!("namespace: {ns}"))
            .replace("name: debug", &format!("name: {name}"));
        if let Some(class) = runtime {
            pod = pod.replace("spec:\n", &format!("spec:\n  runtimeClassName: {class}\n"));
        }
        kubectl(&kc, &["create", "-f", "-"], Some(&pod))
    };
    let (ok, out) = create("shop", "refused", None);
    assert!(!ok, "the default enforce level applies: {out}");
    assert!(
        out.contains("violates PodSecurity \"baseline:latest\""),
        "{out}"
    );
    let (ok, out) = create("legacy", "exempt-namespace", None);
    assert!(ok, "{out}");
    let (ok, out) = create("shop", "exempt-runtime", Some("kata"));
    assert!(ok, "{out}");
    let (ok, out) = create("open", "labelled", None);
    assert!(ok, "a namespace label wins over the default: {out}");
    assert!(
        out.contains("would violate PodSecurity \"restricted:latest\""),
        "the default warn level still applies: {out}"
    );
}

/// Kyverno's generate rules in the embedded server: a labelled namespace
/// gets its objects, with Kyverno's labels; a synchronized one comes back
/// when deleted, one that is not is left as its users change it.
#[test]
fn the_embedded_server_runs_stored_kyverno_generate_rules() {
    let (_dir, _server, kc) = server_with_crds("kyverno-admission/crds.yaml");
    let fixtures = repo_root().join("crates/cli/tests/fixtures/policy");
    let policies =
        std::fs::read_to_string(fixtures.join("kyverno-generate/policies.yaml")).unwrap();
    let applied = apply_when_served(&kc, &policies);
    assert!(applied.0, "{}", applied.1);
    let namespace = |name: &str, tier: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{tier: {tier}}}}}\n"
        )
    };
    // The source the clone rule copies.
    assert!(kubectl(&kc, &["create", "namespace", "platform"], None).0);
    let pull_secret = |token: &str| {
        kubectl(
            &kc,
            &[
                "create",
                "secret",
                "generic",
                "registry-pull",
                "-n",
                "platform",
                &format!("--from-literal=token={token}"),
                "--dry-run=client",
                "-o",
                "yaml",
            ],
            None,
        )
        .1
    };
    assert!(kubectl(&kc, &["apply", "-f", "-"], Some(&pull_secret("first"))).0);
    assert!(kubectl(&kc, &["apply", "-f", "-"], Some(&namespace("shop", "team"))).0);
    assert!(
        kubectl(
            &kc,
            &["apply", "-f", "-"],
            Some(&namespace("infra", "system"))
        )
        .0
    );
    let eventually = |args: &[&str], wanted: &str| {
        let mut last = String::new();
        for _ in 0..100 {
            let (ok, out) = kubectl(&kc, args, None);
            if ok && out == wanted {
                return;
            }
            last = out;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("kubectl {args:?}: wanted {wanted:?}, last {last:?}");
    };
    let policy_label = "jsonpath={.metadata.labels.generate\\.kyverno\\.io/policy-name}";
    eventually(
        &[
            "get",
            "networkpolicy",
            "default-deny",
            "-n",
            "shop",
            "-o",
            policy_label,
        ],
        "namespace-defaults",
    );
    let owner = [
        "get",
        "configmap",
        "team-settings",
        "-n",
        "shop",
        "-o",
        "jsonpath={.data.owner}",
    ];
    eventually(&owner, "shop");
    let (ok, _) = kubectl(
        &kc,
        &["get", "networkpolicy", "-n", "infra", "-o", "name"],
        None,
    );
    assert!(ok);
    eventually(&["get", "networkpolicy", "-n", "infra", "-o", "name"], "");
    // Synchronized: deleted, it comes back.
    let (ok, out) = kubectl(
        &kc,
        &["delete", "networkpolicy", "default-deny", "-n", "shop"],
        None,
    );
    assert!(ok, "{out}");
    eventually(
        &[
            "get",
            "networkpolicy",
            "default-deny",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.policyTypes}",
        ],
        "[\"Ingress\",\"Egress\"]",
    );
    // Not synchronized: a user's change stays.
    let (ok, out) = kubectl(
        &kc,
        &[
            "patch",
            "configmap",
            "team-settings",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"owner":"someone"}}"#,
        ],
        None,
    );
    assert!(ok, "{out}");
    assert!(kubectl(&kc, &["label", "namespace", "shop", "touched=yes"], None).0);
    std::thread::sleep(std::time::Duration::from_millis(500));
    eventually(&owner, "someone");
    // The clone: copied into the team namespace, and changed with its source.
    let copied = [
        "get",
        "secret",
        "registry-pull",
        "-n",
        "shop",
        "-o",
        "jsonpath={.data.token}",
    ];
    eventually(&copied, "Zmlyc3Q=");
    assert!(kubectl(&kc, &["apply", "-f", "-"], Some(&pull_secret("second"))).0);
    eventually(&copied, "c2Vjb25k");
    // The GeneratingPolicy's quota.
    eventually(
        &[
            "get",
            "resourcequota",
            "team-quota",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.hard.pods}",
        ],
        "10",
    );
}

#[test]
fn the_embedded_server_enforces_validating_admission_policies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = common::start_apiserver(&data, false);
    let kc = data.join("kubeconfig");
    let policies = std::fs::read_to_string(
        repo_root().join("crates/policy/tests/kyverno/vap-params/policy.yaml"),
    )
    .unwrap();
    let broken = policies.replace(
        "object.spec.replicas <= variables.limit",
        "object.spec.replicas <= (",
    );
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&broken));
    assert!(!ok, "{out}");
    assert!(out.contains("validations[0]: syntax error"), "{out}");
    for namespace in ["platform", "shop", "lab"] {
        assert!(kubectl(&kc, &["create", "namespace", namespace], None).0);
    }
    let (ok, out) = kubectl(
        &kc,
        &["label", "namespace", "shop", "example.com/tenant=true"],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&policies));
    assert!(ok, "{out}");
    let deployment = |name: &str, namespace: &str, replicas: u32, labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}\n\
             spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: a, image: 'nginx:1.27'}}]\n"
        )
    };
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&deployment("big", "shop", 8, "team: shop")),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-teams' denied request: replicas must be at most 5, not 8"),
        "{out}"
    );
    assert!(
        out.contains("forbidden"),
        "the validation's reason is Forbidden: {out}"
    );
    // Within the limit: admitted; without a team label: a warning.
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&deployment("small", "shop", 3, "")),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'team-label' with binding 'team-label-warn': every workload has a team label"),
        "{out}"
    );
    // Updates are checked too: server-side apply and a scale by patch.
    let (ok, out) = kubectl(
        &kc,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&deployment("small", "shop", 9, "team: shop")),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("replicas must be at most 5, not 9"), "{out}");
    let (ok, out) = kubectl(
        &kc,
        &[
            "patch",
            "deployment",
            "small",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            "{\"spec\":{\"replicas\":7}}",
        ],
        None,
    );
    assert!(!ok, "{out}");
    assert!(out.contains("replicas must be at most 5, not 7"), "{out}");
    // The binding selects tenant namespaces only.
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&deployment("big", "lab", 8, "team: lab")),
    );
    assert!(ok, "{out}");
    // The parameter is read live: raising the limit admits the change.
    let (ok, out) = kubectl(
        &kc,
        &[
            "patch",
            "configmap",
            "replica-limits",
            "-n",
            "platform",
            "--type=merge",
            "-p",
            "{\"data\":{\"maxReplicas\":\"10\"}}",
        ],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(&deployment("big", "shop", 8, "team: shop")),
    );
    assert!(ok, "{out}");
}
