//! `gitplane bench sync`: `gitplane apply` against `kubectl apply
//! --server-side` on the embedded API server, in the same run: one
//! application of many objects, and many small applications; a cold sync and
//! a no-op re-sync of each.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::measure::{Run, find_in_path, run_measured};

/// Arguments of `gitplane bench sync`.
#[derive(Debug, clap::Args)]
pub struct SyncBenchArgs {
    /// Objects in the one big application.
    #[arg(long, default_value_t = 1000)]
    objects: usize,
    /// Number of small applications.
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// Objects in each small application.
    #[arg(long, default_value_t = 10)]
    app_objects: usize,
}

/// Five objects of a typical service: ConfigMap, Secret, ServiceAccount,
/// Service and Deployment, `n` of them cut to `count` objects.
pub(super) fn write_app(dir: &Path, count: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut yaml = String::new();
    for i in 0..count {
        let name = format!("svc-{}", i / 5);
        let doc = match i % 5 {
            0 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  LOG_LEVEL: info\n  SERVICE: {name}\n"
            ),
            1 => format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  token: not-a-real-token-{i}\n"
            ),
            2 => format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n"),
            3 => format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
            ),
            _ => format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: app\n        image: ghcr.io/example/{name}:1.0.0\n        ports:\n        - containerPort: 8080\n"
            ),
        };
        let _ = write!(yaml, "---\n{doc}");
    }
    std::fs::write(dir.join("objects.yaml"), yaml)?;
    Ok(())
}

/// A `gitplane apiserver` child, stopped when dropped.
pub(super) struct Server {
    child: std::process::Child,
    pub(super) kubeconfig: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn start_server(data: &Path) -> Result<Server> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["apiserver", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    lines.next().context("the server exited")??;
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Server {
        child,
        kubeconfig: data.join("kubeconfig"),
    })
}

/// Totals over several runs of one tool.
#[derive(Default)]
struct Totals {
    wall: Duration,
    peak_kib: u64,
    runs: usize,
}

impl Totals {
    fn add(&mut self, run: &Run) {
        self.wall += run.wall;
        self.peak_kib = self.peak_kib.max(run.max_rss_kib);
        self.runs += 1;
    }
}

fn run(program: &Path, args: &[&str]) -> Result<Run> {
    run_measured(program, args)
}

/// Syncs every app directory once with each tool.
fn pass(
    gitplane: &Path,
    kubectl: &Path,
    kubeconfig: &str,
    apps: &[(String, PathBuf)],
) -> Result<(Totals, Totals, usize)> {
    let (mut ours, mut theirs, mut written) = (Totals::default(), Totals::default(), 0);
    for (name, dir) in apps {
        let dir = dir.to_str().context("path is not UTF-8")?;
        let namespace = format!("g-{name}");
        let run = run(
            gitplane,
            &[
                "apply",
                dir,
                "--app",
                name,
                "--namespace",
                &namespace,
                "--kubeconfig",
                kubeconfig,
                "--sync-option",
                "CreateNamespace=true",
            ],
        )?;
        written += String::from_utf8_lossy(&run.stdout)
            .lines()
            .filter(|l| l.contains("  Synced  "))
            .count();
        ours.add(&run);
        let namespace = format!("k-{name}");
        theirs.add(&run_kubectl(kubectl, kubeconfig, &namespace, dir)?);
    }
    Ok((ours, theirs, written))
}

fn run_kubectl(kubectl: &Path, kubeconfig: &str, namespace: &str, dir: &str) -> Result<Run> {
    run(
        kubectl,
        &[
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "--field-manager",
            "bench",
            "-n",
            namespace,
            "-f",
            dir,
        ],
    )
}

fn create_namespaces(kubectl: &Path, kubeconfig: &str, apps: &[(String, PathBuf)]) -> Result<()> {
    for (name, _) in apps {
        let status = Command::new(kubectl)
            .args([
                "--kubeconfig",
                kubeconfig,
                "create",
                "namespace",
                &format!("k-{name}"),
            ])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("kubectl could not create namespace k-{name}");
        }
    }
    Ok(())
}

fn row(label: &str, ours: &Totals, theirs: &Totals) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<34} {:>10.0}ms {:>10.0}ms {:>8.2}x {:>8.0} MiB {:>8.0} MiB",
        ms(ours.wall),
        ms(theirs.wall),
        theirs.wall.as_secs_f64() / ours.wall.as_secs_f64().max(f64::EPSILON),
        ours.peak_kib as f64 / 1024.0,
        theirs.peak_kib as f64 / 1024.0,
    );
}

/// Runs the benchmark.
pub fn run_bench(args: &SyncBenchArgs) -> Result<ExitCode> {
    let kubectl = find_in_path("kubectl")
        .context("kubectl is needed as the peer (kubectl apply --server-side)")?;
    let gitplane = std::env::current_exe()?;
    let temp = tempfile::tempdir()?;
    let big = vec![("big".to_string(), temp.path().join("big"))];
    write_app(&big[0].1, args.objects)?;
    let small: Vec<(String, PathBuf)> = (0..args.apps)
        .map(|i| {
            (
                format!("app-{i:03}"),
                temp.path().join(format!("app-{i:03}")),
            )
        })
        .collect();
    for (_, dir) in &small {
        write_app(dir, args.app_objects)?;
    }
    eprintln!("starting gitplane apiserver (workloads simulated)");
    let server = start_server(&temp.path().join("data"))?;
    let kubeconfig = server
        .kubeconfig
        .to_str()
        .context("path is not UTF-8")?
        .to_string();
    create_namespaces(&kubectl, &kubeconfig, &big)?;
    create_namespaces(&kubectl, &kubeconfig, &small)?;

    println!(
        "sync: 1 app of {} objects, {} apps of {} objects; gitplane apply vs kubectl apply --server-side",
        args.objects, args.apps, args.app_objects
    );
    println!(
        "{:<34} {:>12} {:>12} {:>9} {:>12} {:>12}",
        "MEASURE", "GITPLANE", "KUBECTL", "RATIO", "GP PEAK", "KC PEAK"
    );
    let mut unexpected_writes = 0;
    for (label, apps) in [
        (format!("1 app x {}", args.objects), &big),
        (format!("{} apps x {}", args.apps, args.app_objects), &small),
    ] {
        eprintln!("  {label}: cold sync");
        let (ours, theirs, _) = pass(&gitplane, &kubectl, &kubeconfig, apps)?;
        row(&format!("{label}, cold"), &ours, &theirs);
        eprintln!("  {label}: no-op re-sync");
        let (ours, theirs, written) = pass(&gitplane, &kubectl, &kubeconfig, apps)?;
        row(&format!("{label}, no-op"), &ours, &theirs);
        unexpected_writes += written;
    }
    println!(
        "gitplane includes waiting for every Deployment to be healthy; kubectl apply does not wait"
    );
    println!("objects written by gitplane's no-op re-syncs: {unexpected_writes}");
    Ok(if unexpected_writes == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
