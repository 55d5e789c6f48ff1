#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! The resource-graph controller end to end: `gitplane graph run` against
//! `gitplane apiserver`, driven with kubectl. A graph is accepted and its
//! kind served; an instance gets its children and a projected status; a
//! changed field rolls out; drift on a child is reverted; an includeWhen
//! turning false prunes; deleting the instance deletes its children in
//! reverse dependency order. Also `graph check` and `render --expand-graphs`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{gitplane, repo_root, start_apiserver};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gitplane graph run` against the server of a kubeconfig.
/// Starts `gitplane graph run` and waits until the API server serves the
/// ResourceGraphDefinition kind it installs (applying an RGD before that
/// fails kubectl's validation: a race the test lost on a loaded machine).
fn start_graph_controller(kubeconfig: &Path) -> Killed {
    let controller = Killed(
        Command::new(env!("CARGO_BIN_EXE_gitplane"))
            .args(["graph", "run", "--kubeconfig"])
            .arg(kubeconfig)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the ResourceGraphDefinition kind served", || {
        kubectl(kubeconfig, &["get", "resourcegraphdefinitions"]).0
    });
    controller
}

/// Merge-patches the App `demo`.
fn patch_app(kubeconfig: &Path, patch: &str) -> (bool, String) {
    kubectl(
        kubeconfig,
        &["patch", "app", "demo", "--type", "merge", "-p", patch],
    )
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    common::kubectl(kubeconfig, args, None)
}

fn kubectl_stdin(kubeconfig: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn jsonpath(kubeconfig: &Path, args: &[&str], path: &str) -> String {
    let mut all: Vec<&str> = args.to_vec();
    let expression = format!("jsonpath={path}");
    all.extend(["-o", &expression]);
    kubectl(kubeconfig, &all).1.trim().to_string()
}

/// Records when `kubectl get KIND --watch` sees each event (the listing it
/// starts with comes as ADDED events).
fn watch_deletions(
    kubeconfig: &Path,
    kind: &str,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
) -> Killed {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "get",
            kind,
            "-l",
            "kro.run/owned=true",
            "--watch-only",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let kind = kind.to_string();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut columns = line.split_whitespace();
            if columns.next() == Some("DELETED") {
                let name = columns.next().unwrap_or_default();
                seen.lock()
                    .unwrap()
                    .push((Instant::now(), format!("{kind} {name}")));
            }
        }
    });
    Killed(child)
}

#[test]
fn instances_converge_heal_prune_and_delete_in_reverse_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start_apiserver(&data, true);
    let kc = data.join("kubeconfig");
    let _controller = start_graph_controller(&kc);
    let rgd = repo_root().join("crates/cli/tests/fixtures/graph/app-rgd.yaml");
    let (ok, out) = kubectl(&kc, &["apply", "-f", rgd.to_str().unwrap()]);
    assert!(ok, "{out}");
    wait_for("the graph to be accepted and its kind served", || {
        jsonpath(&kc, &["get", "rgd", "app"], "{.status.state}") == "Active"
            && kubectl(&kc, &["get", "crd", "apps.kro.run"]).0
    });
    assert_eq!(
        jsonpath(&kc, &["get", "rgd", "app"], "{.status.topologicalOrder}"),
        r#"["config","deployment","service"]"#
    );

    // Create: children in order, status projected once the deployment is ready.
    kubectl_stdin(
        &kc,
        &["apply", "-f", "-"],
        "apiVersion: kro.run/v1alpha1\nkind: App\nmetadata: {name: demo, namespace: default}\nspec: {replicas: 2}\n",
    );
    wait_for("the instance to be ACTIVE", || {
        jsonpath(&kc, &["get", "app", "demo"], "{.status.state}") == "ACTIVE"
    });
    assert_eq!(
        jsonpath(&kc, &["get", "app", "demo"], "{.status.available}"),
        "2"
    );
    assert_eq!(
        jsonpath(&kc, &["get", "app", "demo"], "{.metadata.finalizers}"),
        r#"["kro.run/finalizer"]"#
    );
    let uid = jsonpath(&kc, &["get", "app", "demo"], "{.metadata.uid}");
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "deploy", "demo"],
            "{.metadata.labels.kro\\.run/instance-id}"
        ),
        uid
    );
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "deploy", "demo"],
            "{.metadata.labels.kro\\.run/node-id}"
        ),
        "deployment"
    );
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "deploy", "demo"],
            "{.metadata.annotations.config}"
        ),
        "demo-config"
    );
    assert!(kubectl(&kc, &["get", "svc", "demo"]).0);
    let managers = jsonpath(
        &kc,
        &["get", "cm", "demo-config", "--show-managed-fields"],
        "{.metadata.managedFields[*].manager}",
    );
    assert!(managers.contains("kro.run/applyset"), "{managers}");

    // Update a field: the child follows.
    patch_app(&kc, r#"{"spec":{"replicas":3,"message":"bye"}}"#);
    wait_for("the new replica count", || {
        jsonpath(&kc, &["get", "deploy", "demo"], "{.spec.replicas}") == "3"
    });
    wait_for("the new message", || {
        jsonpath(&kc, &["get", "cm", "demo-config"], "{.data.message}") == "bye"
    });

    // Drift on a child is reverted.
    let patch = ["patch", "cm", "demo-config", "--type", "merge", "-p"];
    kubectl(
        &kc,
        &[&patch[..], &[r#"{"data":{"message":"drifted"}}"#]].concat(),
    );
    wait_for("the drift reverted", || {
        jsonpath(&kc, &["get", "cm", "demo-config"], "{.data.message}") == "bye"
    });

    // includeWhen turning false prunes the resource.
    patch_app(&kc, r#"{"spec":{"service":{"enabled":false}}}"#);
    wait_for("the service pruned", || {
        !kubectl(&kc, &["get", "svc", "demo"]).0
    });
    patch_app(&kc, r#"{"spec":{"service":{"enabled":true}}}"#);
    wait_for("the service back", || {
        kubectl(&kc, &["get", "svc", "demo"]).0
    });

    // An instance the schema refuses is refused by the API server itself.
    let (ok, out) = patch_app(&kc, r#"{"spec":{"replicas":"many"}}"#);
    assert!(!ok, "{out}");

    // Delete: service, then deployment, then config map; then the instance.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let _watches: Vec<Killed> = ["services", "deployments", "configmaps"]
        .iter()
        .map(|kind| watch_deletions(&kc, kind, seen.clone()))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    kubectl(&kc, &["delete", "app", "demo", "--wait=false"]);
    wait_for("the instance gone", || {
        !kubectl(&kc, &["get", "app", "demo"]).0
    });
    wait_for("three deletions seen", || seen.lock().unwrap().len() >= 3);
    let mut events = seen.lock().unwrap().clone();
    events.sort();
    let order: Vec<&str> = events.iter().map(|(_, line)| line.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "services demo",
            "deployments demo",
            "configmaps demo-config"
        ],
    );
}

#[test]
fn kro_functions_and_omit_work_in_the_controller() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start_apiserver(&data, false);
    let kc = data.join("kubeconfig");
    let _controller = start_graph_controller(&kc);
    // The fixture holds the graph and an instance without a namespace.
    let input = repo_root().join("crates/graph/tests/fixtures/kro-functions/input.yaml");
    let rgd: String = std::fs::read_to_string(&input)
        .unwrap()
        .split("\n---\n")
        .next()
        .unwrap()
        .to_string();
    kubectl_stdin(&kc, &["apply", "-f", "-"], &rgd);
    wait_for("the graph's kind served", || {
        jsonpath(&kc, &["get", "rgd", "tokens"], "{.status.state}") == "Active"
            && kubectl(&kc, &["get", "tokens"]).0
    });
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "crd", "tokens.kro.run"],
            "{.spec.versions[0].additionalPrinterColumns[*].description}"
        ),
        "The state of a ResourceGraphDefinition instance Whether a ResourceGraphDefinition instance is ready Age of the resource"
    );
    let (ok, out) = kubectl(&kc, &["apply", "-f", input.to_str().unwrap()]);
    assert!(ok, "{out}");
    // The name comes from random.seededString(8, "shop"), as kro computes it.
    wait_for("the ConfigMap named by random.seededString", || {
        kubectl(&kc, &["get", "configmap", "shop-nhzf7nuk", "-n", "default"]).0
    });
    let get = |path: &str| jsonpath(&kc, &["get", "configmap", "shop-nhzf7nuk"], path);
    assert_eq!(get("{.data.port}"), "32429");
    assert_eq!(get("{.data.items}"), r#"["a","c"]"#);
    assert_eq!(get("{.metadata.labels.tier}"), "web");
    assert_eq!(get("{.metadata.annotations}"), "");
    // Pinning brings the field omit() left out.
    kubectl_stdin(
        &kc,
        &["apply", "-f", "-"],
        "apiVersion: kro.run/v1alpha1\nkind: Token\nmetadata: {name: shop}\nspec: {pinned: true}\n",
    );
    wait_for("the annotation once pinned", || {
        get("{.metadata.annotations.pinned-to}") == "node-a"
    });
}

#[test]
fn custom_conditions_are_written_after_kros_own() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start_apiserver(&data, false);
    let kc = data.join("kubeconfig");
    let _controller = start_graph_controller(&kc);
    let input = repo_root().join("crates/graph/tests/fixtures/custom-conditions/input.yaml");
    let text = std::fs::read_to_string(&input).unwrap();
    let (rgd, instance) = text.split_once("\n---\n").unwrap();
    kubectl_stdin(&kc, &["apply", "-f", "-"], rgd);
    wait_for("the graph's kind served", || {
        jsonpath(&kc, &["get", "rgd", "published"], "{.status.state}") == "Active"
            && kubectl(&kc, &["get", "publisheds"]).0
    });
    kubectl_stdin(&kc, &["apply", "-f", "-"], instance);
    let condition = |kind: &str, field: &str| {
        jsonpath(
            &kc,
            &["get", "published", "site"],
            &format!("{{.status.conditions[?(@.type==\"{kind}\")].{field}}}"),
        )
    };
    wait_for("the custom conditions", || {
        condition("ConfigPublished", "status") == "True"
            && condition("Ready", "reason") == "Composed"
    });
    assert_eq!(condition("ConfigPublished", "message"), "site-published");
    assert_eq!(condition("Ready", "status"), "True");
    assert_eq!(condition("ResourcesReady", "status"), "True");
    // runtime is refused outside status.conditions, as kro refuses it.
    let misplaced = rgd.replace(
        "greeting: ${schema.spec.greeting}",
        "greeting: ${runtime.condition(schema, 'Ready').status}",
    );
    let file = dir.path().join("misplaced.yaml");
    std::fs::write(&file, misplaced).unwrap();
    let out = gitplane(&["graph", "check", file.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("runtime is only available in schema.status.conditions"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_invalid_graph_is_reported_in_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start_apiserver(&data, false);
    let kc = data.join("kubeconfig");
    let _controller = start_graph_controller(&kc);
    let cycle = repo_root().join("crates/graph/tests/fixtures/cycle/input.yaml");
    wait_for("the RGD kind", || kubectl(&kc, &["get", "rgd"]).0);
    let (ok, out) = kubectl(&kc, &["apply", "-f", cycle.to_str().unwrap()]);
    assert!(ok, "{out}");
    wait_for("GraphAccepted=False", || {
        jsonpath(
            &kc,
            &["get", "rgd", "loop"],
            "{.status.conditions[?(@.type==\"GraphAccepted\")].status}",
        ) == "False"
    });
    let message = jsonpath(
        &kc,
        &["get", "rgd", "loop"],
        "{.status.conditions[?(@.type==\"GraphAccepted\")].message}",
    );
    assert!(
        message.contains("first -> second -> third -> first"),
        "{message}"
    );
    assert_eq!(
        jsonpath(&kc, &["get", "rgd", "loop"], "{.status.state}"),
        "Inactive"
    );
}

#[test]
fn graph_check_and_offline_expansion() {
    let fixtures = repo_root().join("crates/graph/tests/fixtures");
    let out = gitplane(&[
        "graph",
        "check",
        fixtures.join("basic-webapp/input.yaml").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("order: deployment -> service"), "{text}");
    let out = gitplane(&[
        "graph",
        "check",
        fixtures.join("cycle/input.yaml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cycle: first -> second -> third -> first")
    );
    let out = gitplane(&[
        "graph",
        "check",
        "--crd",
        fixtures.join("basic-webapp/input.yaml").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("listKind: WebAppList"));
    // Errors name the file and the line of what they point at.
    for (fixture, line) in [("unknown-identifier", 19), ("marker-without-quotes", 12)] {
        let file = fixtures.join(fixture).join("input.yaml");
        let out = gitplane(&["graph", "check", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("input.yaml:{line}: ResourceGraphDefinition")),
            "{fixture}: {stderr}"
        );
    }
    // A namespaceless instance lands in -n (default: default).
    let functions = fixtures.join("kro-functions/input.yaml");
    let render = |extra: &[&str]| {
        let mut args = vec!["render", functions.to_str().unwrap(), "--expand-graphs"];
        args.extend_from_slice(extra);
        String::from_utf8_lossy(&gitplane(&args).stdout).to_string()
    };
    assert!(render(&[]).contains("namespace: default"));
    assert!(render(&["-n", "team-a"]).contains("namespace: team-a"));
    let out = gitplane(&[
        "render",
        fixtures
            .join("unresolved-status/input.yaml")
            .to_str()
            .unwrap(),
        "--expand-graphs",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waits for service.spec.clusterIP"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("kind: Deployment") && !stdout.contains("orders-endpoint"),
        "{stdout}"
    );
}

/// The golden paths of the example platform, expanded offline, are what
/// `tests/fixtures/golden/` records (objects on stdout, exclusions on
/// stderr). `GITPLANE_BLESS=1` rewrites the files for review.
#[test]
fn golden_paths_expand_offline_as_recorded() {
    let root = repo_root();
    let golden = root.join("crates/cli/tests/fixtures/golden");
    let graphs = root.join("examples/platform/platform/graphs");
    let cases = [
        ("apps/shop/overlays/prod", "shop-prod"),
        ("apps/shop/overlays/dev", "shop-dev"),
        ("apps/catalog/overlays/prod", "catalog-prod"),
        ("platform/tenants", "tenants"),
        ("platform/tools", "tools"),
    ];
    for (path, name) in cases {
        let source = root.join("examples/platform").join(path);
        let out = gitplane(&[
            "render",
            source.to_str().unwrap(),
            "--expand-graphs",
            "--graphs",
            graphs.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (yaml, notes) = (
            golden.join(format!("{name}.yaml")),
            golden.join(format!("{name}.stderr")),
        );
        if std::env::var_os("GITPLANE_BLESS").is_some() {
            std::fs::write(&yaml, &out.stdout).unwrap();
            std::fs::write(&notes, &out.stderr).unwrap();
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&yaml).unwrap(),
            "{name}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&notes).unwrap(),
            "{name}"
        );
    }
}

/// `gitplane up --once` on the bundled example platform: every application,
/// the graphs, tenants, tools and WebApps among them, Synced and Healthy;
/// then the data served again shows what the WebApps became.
#[test]
fn up_once_converges_the_example_platform() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .current_dir(repo_root())
        .args([
            "up",
            "--once",
            "--api",
            "127.0.0.1:0",
            "--ui",
            "127.0.0.1:0",
            "--timeout",
            "3m",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("11 of 11 applications Synced and Healthy"),
        "{stdout}"
    );
    let _server = start_apiserver(&data, false);
    let kc = data.join("kubeconfig");
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "webapp", "shop", "-n", "shop-prod"],
            "{.status.state}"
        ),
        "ACTIVE"
    );
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "webapp", "shop", "-n", "shop-prod"],
            "{.status.url}"
        ),
        "https://shop.example.test"
    );
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "hpa", "shop", "-n", "shop-prod"],
            "{.spec.maxReplicas}"
        ),
        "10"
    );
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "ns", "shop-prod"],
            "{.metadata.labels.pod-security\\.kubernetes\\.io/enforce}"
        ),
        "restricted"
    );
    assert_eq!(
        jsonpath(
            &kc,
            &["get", "deploy", "ci-runners", "-n", "ci-runners"],
            "{.spec.replicas}"
        ),
        "2"
    );
    assert!(
        !kubectl(&kc, &["get", "ingress", "shop", "-n", "shop-dev"]).0,
        "no ingress in dev"
    );
}
