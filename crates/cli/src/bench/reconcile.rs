//! `gitplane bench reconcile`: a repository of N Kustomize apps behind one
//! app-of-apps. Measured: `gitplane up --once` from start to every app
//! Synced and Healthy (wall, CPU, peak memory), against the peer — `kubectl
//! create namespace` + `kubectl apply --server-side -k` per app, on a fresh
//! embedded server in the same run (the peer does not wait for health);
//! then, with `gitplane up` running, a restart until settled and the time
//! from a Git commit to the changed object applied, via webhook and via
//! polling (no peer: Argo CD is not installed here).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gitplane_cluster::{Cluster, ConnectOptions};
use gitplane_object::Gvk;

use super::measure::{Run, find_in_path, run_measured};
use super::sync::{start_server, write_app};

/// Arguments of `gitplane bench reconcile`.
#[derive(Debug, clap::Args)]
pub struct ReconcileBenchArgs {
    /// Applications (each a Kustomize overlay of 6 objects).
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// Workers of the controller.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Skip the kubectl peer (it runs two processes per app).
    #[arg(long)]
    skip_peer: bool,
}

fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .context("running git")?;
    if !status.success() {
        bail!("git {} failed", args.join(" "));
    }
    Ok(())
}

fn overlay(i: usize, annotation: Option<&str>) -> String {
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {}\nresources:\n- ../base\nlabels:\n- pairs:\n    app.kubernetes.io/instance: {}\n",
        app_name(i),
        app_name(i)
    );
    if let Some(value) = annotation {
        text.push_str(&format!(
            "commonAnnotations:\n  bench/revision: \"{value}\"\n"
        ));
    }
    text
}

/// The repository: a base, N overlays, and one Application per overlay.
fn write_repo(repo: &Path, apps: usize) -> Result<()> {
    write_app(&repo.join("apps/base"), 6)?;
    std::fs::write(
        repo.join("apps/base/kustomization.yaml"),
        "resources:\n- objects.yaml\n",
    )?;
    std::fs::create_dir_all(repo.join("bootstrap"))?;
    for i in 0..apps {
        let dir = repo.join(format!("apps/{}", app_name(i)));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("kustomization.yaml"), overlay(i, None))?;
        let app = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    path: apps/{name}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {name}\n  syncPolicy:\n    automated: {{prune: true, selfHeal: true}}\n    syncOptions: [CreateNamespace=true]\n",
            name = app_name(i),
            url = repo.display()
        );
        std::fs::write(repo.join(format!("bootstrap/{}.yaml", app_name(i))), app)?;
    }
    git(repo, &["init", "-q", "-b", "main"])?;
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-qm", "bench"])
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

fn start_up(repo: &Path, data: &Path, interval: &str, workers: usize) -> Result<Up> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["up", "--api", "127.0.0.1:0", "--ui", "127.0.0.1:0"])
        .args([
            "--reconcile-interval",
            interval,
            "--workers",
            &workers.to_string(),
        ])
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

/// Commits a change to app 0 and waits until its ConfigMap carries it.
fn commit_and_wait(repo: &Path, up: &Up, value: &str, webhook: bool) -> Result<Duration> {
    std::fs::write(
        repo.join(format!("apps/{}/kustomization.yaml", app_name(0))),
        overlay(0, Some(value)),
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cluster = Cluster::connect(&ConnectOptions::for_kubeconfig(&up.kubeconfig)).await?;
        let gvk = Gvk::new("", "v1", "ConfigMap");
        loop {
            let found = cluster.get(&gvk, &app_name(0), "svc-0").await?;
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

fn peer(
    kubectl: &Path,
    repo: &Path,
    data: &Path,
    apps: usize,
) -> Result<(Duration, Duration, u64)> {
    let server = start_server(data)?;
    let kubeconfig = server.kubeconfig.to_str().context("path is not UTF-8")?;
    let (mut wall, mut cpu, mut peak) = (Duration::ZERO, Duration::ZERO, 0);
    let mut add = |run: Run| {
        wall += run.wall;
        cpu += run.cpu;
        peak = peak.max(run.max_rss_kib);
    };
    for i in 0..apps {
        let dir = repo.join(format!("apps/{}", app_name(i)));
        let dir = dir.to_str().context("path is not UTF-8")?;
        add(run_measured(
            kubectl,
            &[
                "--kubeconfig",
                kubeconfig,
                "create",
                "namespace",
                &app_name(i),
            ],
        )?);
        add(run_measured(
            kubectl,
            &[
                "--kubeconfig",
                kubeconfig,
                "apply",
                "--server-side",
                "--field-manager",
                "bench",
                "-k",
                dir,
            ],
        )?);
    }
    Ok((wall, cpu, peak))
}

/// Runs the benchmark.
pub fn run(args: &ReconcileBenchArgs) -> Result<ExitCode> {
    let gitplane = std::env::current_exe()?;
    let temp = tempfile::tempdir()?;
    let repo = temp.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    write_repo(&repo, args.apps)?;
    let data = temp.path().join("up");
    let repo_arg = repo.to_str().context("path is not UTF-8")?;
    let data_arg = data.to_str().context("path is not UTF-8")?;
    println!(
        "reconcile: {} apps of 6 objects (Kustomize overlays), one repository, {} workers",
        args.apps, args.workers
    );
    let cold = run_measured(
        &gitplane,
        &[
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
            "--workers",
            &args.workers.to_string(),
            "--repo",
            repo_arg,
            "--data-dir",
            data_arg,
        ],
    )?;
    println!(
        "gitplane up --once, cold: {:.1} s wall, {:.1} s CPU, peak {:.0} MiB (including the embedded API server it runs)",
        cold.wall.as_secs_f64(),
        cold.cpu.as_secs_f64(),
        cold.max_rss_kib as f64 / 1024.0
    );
    if !args.skip_peer {
        let kubectl = find_in_path("kubectl").context("kubectl is needed as the peer")?;
        let (wall, cpu, peak) = peer(&kubectl, &repo, &temp.path().join("peer"), args.apps)?;
        println!(
            "kubectl create ns + apply --server-side -k per app: {:.1} s wall, {:.1} s CPU, peak {:.0} MiB, the API server not counted; ratio {:.2}x (the peer does not wait for health)",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            peak as f64 / 1024.0,
            wall.as_secs_f64() / cold.wall.as_secs_f64().max(f64::EPSILON)
        );
    }
    let up = start_up(&repo, &data, "1h", args.workers)?;
    let restart = wait_converged(&up, args.apps)?;
    println!(
        "restart of gitplane up to all settled: {:.1} s",
        restart.as_secs_f64()
    );
    let webhook = commit_and_wait(&repo, &up, "webhook", true)?;
    println!(
        "commit to change applied, via webhook: {:.0} ms",
        webhook.as_secs_f64() * 1000.0
    );
    drop(up);
    let up = start_up(&repo, &data, "10s", args.workers)?;
    wait_converged(&up, args.apps)?;
    let polled = commit_and_wait(&repo, &up, "polling", false)?;
    println!(
        "commit to change applied, without a webhook (reconcile interval 10 s + up to 5 s jitter): {:.1} s",
        polled.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
