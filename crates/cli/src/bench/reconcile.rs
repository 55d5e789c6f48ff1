//! `gitplane bench reconcile`: a repository of N Kustomize apps behind one
//! app-of-apps ([`super::generate`]). Measured: `gitplane up --once` from
//! start to every app Synced and Healthy (wall, CPU, peak memory of the one
//! process that also runs the embedded API server), against the peer —
//! `kubectl kustomize | kubectl apply --server-side` per app (namespaces
//! created first), on a fresh embedded server in the same run (the peer
//! neither orders, nor waits for health, nor records status); then, with
//! `gitplane up` running, a restart until settled and the time from a Git
//! commit to the changed object applied, via webhook and via polling.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gitplane_cluster::{Cluster, ConnectOptions};
use gitplane_object::Gvk;

use super::generate::{Shape, app_file, app_name, git, namespace_of, overlay, probe, write_repo};
use super::measure::{Run, find_in_path, run_measured};
use super::sync::start_server;

/// Arguments of `gitplane bench reconcile`.
#[derive(Debug, clap::Args)]
pub struct ReconcileBenchArgs {
    /// Applications.
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// The repository's shape (see `gitplane bench generate`).
    #[arg(long, value_enum, default_value_t = Shape::Plain)]
    shape: Shape,
    /// Status processors of the controller.
    #[arg(long, default_value_t = 20)]
    status_processors: usize,
    /// Operation processors of the controller.
    #[arg(long, default_value_t = 10)]
    operation_processors: usize,
    /// Skip the kubectl peer (it runs two processes per app).
    #[arg(long)]
    skip_peer: bool,
    /// Measure only the cold convergence (no restart, no commit timings).
    #[arg(long)]
    cold_only: bool,
}

/// A running `gitplane up`, stopped when dropped.
struct Up {
    child: Child,
    http: String,
    kubeconfig: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn processor_args(args: &ReconcileBenchArgs) -> Vec<String> {
    vec![
        "--status-processors".into(),
        args.status_processors.to_string(),
        "--operation-processors".into(),
        args.operation_processors.to_string(),
    ]
}

fn start_up(repo: &Path, data: &Path, interval: &str, args: &ReconcileBenchArgs) -> Result<Up> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["up", "--api", "127.0.0.1:0", "--ui", "127.0.0.1:0"])
        .args(["--reconcile-interval", interval])
        .args(processor_args(args))
        .arg("--data-dir")
        .arg(data)
        .arg("--repo")
        .arg(repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut http = None;
    for line in lines.by_ref() {
        if let Some(rest) = line?.strip_prefix("http: http://") {
            http = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Up {
        child,
        http: http.context("gitplane up did not start")?,
        kubeconfig: data.join("kubeconfig"),
    })
}

fn http(address: &str, method: &str, path: &str, body: &str) -> Result<String> {
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Waits until `apps` applications (plus root) are Synced and Healthy.
fn wait_converged(up: &Up, apps: usize) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let response = http(&up.http, "GET", "/api/v1/applications", "")?;
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let list: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let converged = items
            .iter()
            .filter(|a| a["sync"] == "Synced" && a["health"] == "Healthy")
            .count();
        if converged == apps + 1 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("only {converged} of {} applications converged", apps + 1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Commits a change to app 0 and waits until its probe object carries it.
fn commit_and_wait(
    repo: &Path,
    up: &Up,
    shape: Shape,
    value: &str,
    webhook: bool,
) -> Result<Duration> {
    std::fs::write(
        repo.join(format!("apps/{}/{}", app_name(0), app_file(shape))),
        overlay(shape, 0, Some(value)),
    )?;
    git(repo, &["commit", "-qam", value])?;
    let started = Instant::now();
    if webhook {
        let body = format!("{{\"repoURL\": \"{}\"}}", repo.display());
        let response = http(&up.http, "POST", "/api/webhook", &body)?;
        if !response.starts_with("HTTP/1.1 200") {
            bail!("webhook refused: {response}");
        }
    }
    let (kind, namespace, name) = probe(shape);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cluster = Cluster::connect(&ConnectOptions::for_kubeconfig(&up.kubeconfig)).await?;
        let gvk = Gvk::new("", "v1", kind);
        loop {
            let found = cluster.get(&gvk, &namespace, &name).await?;
            if found.is_some_and(|o| o.annotation("bench/revision") == Some(value)) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("the change was not applied within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// The peer: each namespace created, then `kubectl apply --server-side -k`
/// per app (kubectl runs kustomize itself).
fn peer(
    kubectl: &Path,
    repo: &Path,
    data: &Path,
    apps: usize,
    shape: Shape,
) -> Result<(Duration, Duration, u64)> {
    let server = start_server(data)?;
    let kubeconfig = server.kubeconfig.to_str().context("path is not UTF-8")?;
    let (mut wall, mut cpu, mut peak) = (Duration::ZERO, Duration::ZERO, 0);
    let mut add = |run: Run| {
        wall += run.wall;
        cpu += run.cpu;
        peak = peak.max(run.max_rss_kib);
    };
    let mut namespaces: Vec<String> = (0..apps).map(|i| namespace_of(shape, i)).collect();
    namespaces.dedup();
    for namespace in &namespaces {
        add(run_measured(
            kubectl,
            &["--kubeconfig", kubeconfig, "create", "namespace", namespace],
        )?);
    }
    let apply = format!(
        "{} --kubeconfig {kubeconfig} apply --server-side --field-manager bench",
        kubectl.display()
    );
    let helm = if shape == Shape::Helm {
        Some(helm_peer()?)
    } else {
        None
    };
    for i in 0..apps {
        let dir = repo.join(format!("apps/{}", app_name(i)));
        let dir = dir.to_str().context("path is not UTF-8")?;
        // Each app one pipeline, as a controller shelling out runs it.
        let command = match &helm {
            Some(helm) => format!(
                "{} template {name} {chart} -f {dir}/values.yaml -n {namespace} | {apply} -f -",
                helm.display(),
                name = app_name(i),
                chart = repo.join("charts/service").display(),
                namespace = namespace_of(shape, i),
            ),
            None => format!("{apply} -k {dir}"),
        };
        add(run_measured(
            Path::new("/bin/sh"),
            &["-c", &format!("set -e; {command} >/dev/null")],
        )?);
    }
    Ok((wall, cpu, peak))
}

/// The `helm` of the helm shape's peer: the oracle helm 4.1.4 that
/// scripts/oracle/helm.sh installs, else `helm` on PATH.
fn helm_peer() -> Result<PathBuf> {
    let oracle = PathBuf::from("target/oracle/helm-4.1.4/helm");
    if oracle.is_file() {
        return Ok(oracle);
    }
    find_in_path("helm").context("the helm shape's peer needs helm: run scripts/oracle/helm.sh")
}

/// Runs the benchmark.
pub fn run(args: &ReconcileBenchArgs) -> Result<ExitCode> {
    let gitplane = std::env::current_exe()?;
    let temp = tempfile::tempdir()?;
    let repo = temp.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    write_repo(&repo, args.apps, args.shape)?;
    let data = temp.path().join("up");
    let repo_arg = repo.to_str().context("path is not UTF-8")?;
    let data_arg = data.to_str().context("path is not UTF-8")?;
    println!(
        "reconcile: {} apps ({:?} shape), one repository, {} status and {} operation processors",
        args.apps, args.shape, args.status_processors, args.operation_processors
    );
    let mut up_args: Vec<String> = [
        "up",
        "--once",
        "--api",
        "127.0.0.1:0",
        "--ui",
        "127.0.0.1:0",
        "--reconcile-interval",
        "1h",
        "--timeout",
        "30m",
        "--repo",
        repo_arg,
        "--data-dir",
        data_arg,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    up_args.extend(processor_args(args));
    let up_args: Vec<&str> = up_args.iter().map(String::as_str).collect();
    // `up --once` exits 0 only when every app converged (else this fails).
    let cold = run_measured(&gitplane, &up_args)?;
    println!(
        "gitplane up --once, cold, to all {} apps Synced and Healthy: {:.1} s wall, {:.1} s CPU, peak {:.0} MiB (including the embedded API server it runs)",
        args.apps + 1,
        cold.wall.as_secs_f64(),
        cold.cpu.as_secs_f64(),
        cold.max_rss_kib as f64 / 1024.0
    );
    if !args.skip_peer {
        let kubectl = find_in_path("kubectl").context("kubectl is needed as the peer")?;
        let (wall, cpu, peak) = peer(
            &kubectl,
            &repo,
            &temp.path().join("peer"),
            args.apps,
            args.shape,
        )?;
        let per_app = if args.shape == Shape::Helm {
            "helm template | kubectl apply --server-side -f -"
        } else {
            "kubectl apply --server-side -k"
        };
        println!(
            "peer, kubectl create namespace + {per_app} per app: {:.1} s wall, {:.1} s CPU, peak {:.0} MiB, the API server not counted; gitplane is {:.2}x faster (the peer neither orders, waits for health nor records status)",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            peak as f64 / 1024.0,
            wall.as_secs_f64() / cold.wall.as_secs_f64().max(f64::EPSILON)
        );
    }
    if args.cold_only {
        return Ok(ExitCode::SUCCESS);
    }
    let up = start_up(&repo, &data, "1h", args)?;
    let restart = wait_converged(&up, args.apps)?;
    println!(
        "restart of gitplane up to all settled: {:.1} s",
        restart.as_secs_f64()
    );
    let webhook = commit_and_wait(&repo, &up, args.shape, "webhook", true)?;
    println!(
        "commit to change applied, via webhook: {:.0} ms",
        webhook.as_secs_f64() * 1000.0
    );
    drop(up);
    let up = start_up(&repo, &data, "10s", args)?;
    wait_converged(&up, args.apps)?;
    let polled = commit_and_wait(&repo, &up, args.shape, "polling", false)?;
    println!(
        "commit to change applied, without a webhook (reconcile interval 10 s + up to 5 s jitter): {:.1} s",
        polled.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
