//! `gitplane bench graph`: the WebApp golden path expanded offline for many
//! instances, and reconciled end to end by the graph controller, each
//! against a peer measured in the same run.
//!
//! - Offline: `gitplane render DIR --expand-graphs` on N instances, against
//!   `kubectl kustomize` building the same objects from a plain
//!   kustomization (the time just to read and print them).
//! - Reconcile: `gitplane graph run` on an embedded API server, from
//!   `kubectl apply` of M instances to every instance ACTIVE (children
//!   applied in order, deployments available, status written), against
//!   `kubectl apply --server-side` of the same children, which neither orders,
//!   waits for readiness nor writes a status.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gitplane_object::{LoadOptions, Syntax, load_objects};

use super::measure::{Measured, find_in_path, run_measured};
use super::sync::start_server;

/// The WebApp graph of the example platform.
const WEBAPP_GRAPH: &str =
    include_str!("../../../../examples/platform/platform/graphs/webapp.yaml");

/// Arguments of `gitplane bench graph`.
#[derive(Debug, clap::Args)]
pub struct GraphBenchArgs {
    /// WebApp instances expanded offline.
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// WebApp instances reconciled end to end (0 skips that part).
    #[arg(long, default_value_t = 100)]
    reconcile: usize,
    /// Runs per tool offline; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Runs the benchmark.
pub fn run(args: &GraphBenchArgs) -> Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let gitplane = std::env::current_exe()?;
    let kubectl = find_in_path("kubectl").context("kubectl is needed as the peer")?;
    let dir = tempfile::tempdir()?;
    offline(args, dir.path(), &gitplane, &kubectl)?;
    if args.reconcile > 0 {
        reconcile(args.reconcile, dir.path(), &gitplane, &kubectl)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// N WebApp instances in `namespace`, varied like real teams' apps: every
/// third has an ingress, every fifth autoscales.
fn instances(count: usize, namespace: &str) -> String {
    let mut out = String::new();
    for i in 0..count {
        out.push_str(&format!(
            "---\napiVersion: kro.run/v1alpha1\nkind: WebApp\nmetadata:\n  name: app-{i}\n  namespace: {namespace}\nspec:\n  team: team-{}\n  image: registry.example.com/app-{i}:1.{}.0\n  replicas: {}\n  env:\n    APP: app-{i}\n",
            i % 10,
            i % 7,
            1 + i % 3
        ));
        if i % 3 == 0 {
            out.push_str(&format!(
                "  ingress:\n    enabled: true\n    host: app-{i}.example.test\n"
            ));
        }
        if i % 5 == 0 {
            out.push_str("  autoscaling:\n    enabled: true\n");
        }
    }
    out
}

fn offline(args: &GraphBenchArgs, dir: &Path, gitplane: &Path, kubectl: &Path) -> Result<()> {
    let source = dir.join("instances");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("webapp-graph.yaml"), WEBAPP_GRAPH)?;
    std::fs::write(
        source.join("instances.yaml"),
        instances(args.instances, "bench"),
    )?;
    let source_arg = source.to_str().context("path is not UTF-8")?;
    eprintln!(
        "offline: {} WebApp instances in {}",
        args.instances,
        source.display()
    );

    // The expansion itself, in process: no YAML read or written.
    let text = std::fs::read_to_string(source.join("instances.yaml"))?;
    let started = Instant::now();
    let expanded = expand_instances(&text)?;
    let in_process = started.elapsed();

    let gitplane_runs = Measured::measure(
        "gitplane render --expand-graphs",
        gitplane,
        &["render", source_arg, "--expand-graphs"],
        args.runs,
    )?;
    // The peer builds the same objects from a plain kustomization.
    let peer = dir.join("expanded");
    std::fs::create_dir_all(&peer)?;
    std::fs::write(peer.join("objects.yaml"), &gitplane_runs.runs[0].stdout)?;
    std::fs::write(
        peer.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- objects.yaml\n",
    )?;
    let peer_arg = peer.to_str().context("path is not UTF-8")?;
    let kubectl_runs = Measured::measure(
        "kubectl kustomize",
        kubectl,
        &["kustomize", peer_arg],
        args.runs,
    )?;
    let children = expanded.objects.len() - 1;
    let (ours, theirs) = (gitplane_runs.best(), kubectl_runs.best());
    println!(
        "graph expansion: {} WebApp instances -> {children} objects, {} runs each",
        expanded.instances, args.runs
    );
    gitplane_runs.print("gitplane render --expand-graphs");
    kubectl_runs.print("kubectl kustomize (same objects)");
    println!(
        "expansion alone (in process): {:.0} ms, {:.0} instances/s, {:.0} objects/s",
        in_process.as_secs_f64() * 1000.0,
        expanded.instances as f64 / in_process.as_secs_f64(),
        children as f64 / in_process.as_secs_f64()
    );
    println!(
        "ratio (kubectl kustomize of the result / gitplane expanding it, best): {:.1}x",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}

/// The WebApp instances of a YAML stream, expanded with the WebApp graph.
fn expand_instances(text: &str) -> Result<gitplane_graph::OfflineExpansion> {
    let options = LoadOptions::default();
    let mut objects = load_objects(text.as_bytes(), "instances.yaml", Syntax::Yaml, &options)?;
    objects.extend(load_objects(
        WEBAPP_GRAPH.as_bytes(),
        "webapp.yaml",
        Syntax::Yaml,
        &options,
    )?);
    Ok(gitplane_graph::expand_offline(
        objects,
        &[],
        &gitplane_graph::cel_env(),
        "default",
    )?)
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kubectl_ok(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn reconcile(count: usize, dir: &Path, gitplane: &Path, kubectl: &Path) -> Result<()> {
    eprintln!(
        "reconcile: starting gitplane apiserver (workloads simulated) and gitplane graph run"
    );
    let server = start_server(&dir.join("data"))?;
    let kubeconfig = server.kubeconfig.clone();
    let _controller = Child(
        Command::new(gitplane)
            .args(["graph", "run", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_until(Duration::from_secs(30), || {
        Ok(kubectl_ok(
            kubectl,
            &kubeconfig,
            &["get", "crd", "resourcegraphdefinitions.kro.run"],
        )
        .is_ok())
    })
    .context("the graph controller did not install its CRD")?;
    let graph = dir.join("webapp-graph.yaml");
    std::fs::write(&graph, WEBAPP_GRAPH)?;
    kubectl_ok(kubectl, &kubeconfig, &["apply", "-f", path_str(&graph)?])?;
    wait_until(Duration::from_secs(30), || {
        Ok(kubectl_ok(
            kubectl,
            &kubeconfig,
            &["get", "rgd", "webapp", "-o", "jsonpath={.status.state}"],
        )? == "Active")
    })
    .context("the WebApp graph did not become Active")?;
    // ServiceMonitor is a child kind: serve it as the monitoring app would.
    let crd = dir.join("servicemonitor-crd.yaml");
    std::fs::write(
        &crd,
        include_str!(
            "../../../../examples/platform/infrastructure/monitoring/servicemonitor-crd.yaml"
        ),
    )?;
    kubectl_ok(kubectl, &kubeconfig, &["apply", "-f", path_str(&crd)?])?;
    kubectl_ok(kubectl, &kubeconfig, &["create", "namespace", "bench"])?;
    kubectl_ok(kubectl, &kubeconfig, &["create", "namespace", "peer"])?;

    let file = dir.join("reconcile.yaml");
    std::fs::write(&file, instances(count, "bench"))?;
    eprintln!("  gitplane graph run: {count} instances applied, waiting for all ACTIVE");
    let started = Instant::now();
    kubectl_ok(kubectl, &kubeconfig, &["apply", "-f", path_str(&file)?])?;
    let mut last = String::new();
    wait_until(Duration::from_secs(600), || {
        let states = kubectl_ok(
            kubectl,
            &kubeconfig,
            &[
                "get",
                "webapps",
                "-n",
                "bench",
                "-o",
                "jsonpath={.items[*].status.state}",
            ],
        )?;
        let active = states.split_whitespace().filter(|s| *s == "ACTIVE").count();
        let line = format!("{active}/{count} ACTIVE");
        if line != last {
            eprintln!("  [{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        Ok(active == count)
    })
    .context("the instances did not all become ACTIVE")?;
    let ours = started.elapsed();

    // The peer: the same children, offline-expanded for another namespace.
    let peer_objects: Vec<_> = expand_instances(&instances(count, "peer"))?
        .objects
        .into_iter()
        .filter(|o| o.kind() != "ResourceGraphDefinition")
        .collect();
    let peer_file = dir.join("peer.yaml");
    std::fs::write(
        &peer_file,
        gitplane_object::yaml::objects_to_yaml_stream(&peer_objects),
    )?;
    eprintln!(
        "  kubectl apply --server-side: {} objects",
        peer_objects.len()
    );
    let peer = run_measured(
        kubectl,
        &[
            "--kubeconfig",
            path_str(&kubeconfig)?,
            "apply",
            "--server-side",
            "-f",
            path_str(&peer_file)?,
        ],
    )?;
    println!(
        "graph reconcile: {count} WebApp instances ({} children), embedded API server, simulated workloads",
        peer_objects.len()
    );
    println!(
        "  gitplane graph run: applied to all ACTIVE {:>7.2} s  ({:.1} instances/s)",
        ours.as_secs_f64(),
        count as f64 / ours.as_secs_f64()
    );
    println!(
        "  kubectl apply --server-side of the same children {:>7.2} s  (no order, no readiness, no status)",
        peer.wall.as_secs_f64()
    );
    println!(
        "ratio (kubectl / gitplane): {:.2}x",
        peer.wall.as_secs_f64() / ours.as_secs_f64()
    );
    drop(server);
    Ok(())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().context("path is not UTF-8")
}

fn wait_until(limit: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if check()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("gave up after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
