//! `gitplane up`: the embedded control plane, the controller, and a root
//! Application for the platform repository, with a live progress view.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use gitplane_apiserver::{Config, Server};
use gitplane_cluster::{ApplyOptions, Cluster, ConnectOptions};
use gitplane_controller::graphs::{GraphController, GraphOptions};
use gitplane_controller::leader::{LeaderElection, LeaseOptions, default_identity};
use gitplane_controller::{AppSummary, Controller, ControllerOptions, spec::IN_CLUSTER_SERVER};
use gitplane_health::HealthChecker;
use gitplane_object::Object;
use gitplane_source::{SnapshotLimits, Sources};

use crate::sandbox::SandboxedJq;
use crate::sync_cmd::parse_duration;

/// The repository URL the bundled example's Applications name; `up`
/// replaces it with the local copy's URL.
const EXAMPLE_REPO_PLACEHOLDER: &str = "https://git.example.com/platform.git";

/// Arguments of `gitplane up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The platform repository: a local path or a Git URL. Default: the
    /// bundled `examples/platform`, copied into a Git repository in the data
    /// directory (and committed again when the example changes).
    #[arg(long)]
    pub repo: Option<String>,
    /// The directory in the repository holding the root app-of-apps.
    #[arg(long, default_value = "bootstrap")]
    pub path: String,
    /// Branch, tag or commit of the repository.
    #[arg(long, default_value = "HEAD")]
    pub revision: String,
    /// Where the embedded control plane keeps its data (and `kubeconfig`).
    #[arg(long, default_value = ".gitplane", env = "GITPLANE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address of the embedded Kubernetes API (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub api: SocketAddr,
    /// For the embedded API server: a kube-apiserver admission configuration
    /// file (`AdmissionConfiguration` with a `PodSecurity` plugin, or a
    /// `PodSecurityConfiguration`): Pod Security defaults for namespaces
    /// without labels, and exempt namespaces and runtime classes.
    #[arg(long, env = "GITPLANE_ADMISSION_CONFIG")]
    pub admission_control_config_file: Option<PathBuf>,
    /// Address of the HTTP server: webhook, /healthz, /metrics, JSON API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub ui: SocketAddr,
    /// How often every application is compared without another reason
    /// (plus up to half of it as jitter).
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub reconcile_interval: Duration,
    /// Manage this cluster instead of starting the embedded one.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context in that kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// The control namespace (Applications, AppProjects, Secrets).
    #[arg(long, default_value = "gitplane")]
    pub namespace: String,
    /// Applications compared with Git (status refreshes) at once, as Argo
    /// CD's `--status-processors`.
    #[arg(long, default_value_t = 20, env = "GITPLANE_STATUS_PROCESSORS")]
    pub status_processors: usize,
    /// Sync operation steps run at once, as Argo CD's
    /// `--operation-processors`. A step never waits for health, so a few
    /// serve many syncs; operations a person starts go first.
    #[arg(long, default_value_t = 10, env = "GITPLANE_OPERATION_PROCESSORS")]
    pub operation_processors: usize,
    /// How long a wave of a sync may take to become healthy before the
    /// operation fails; a hook may run twice as long.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub wave_timeout: Duration,
    /// The directory, in each application's repository, of the policies
    /// (ValidatingAdmissionPolicies with bindings, Kyverno ClusterPolicies)
    /// every sync must pass: read at the commit being synced; enforced
    /// violations block the sync with a condition, every result is written
    /// as a PolicyReport. A repository without it has no policies. `""`
    /// turns policy off.
    #[arg(
        long,
        default_value = "platform/policies",
        env = "GITPLANE_POLICY_PATH"
    )]
    pub policy_path: String,
    /// Shared secret webhooks must carry (GitHub/Gitea HMAC, GitLab token,
    /// `X-Gitplane-Token`). Without it, any local process may trigger refreshes.
    #[arg(long, env = "GITPLANE_WEBHOOK_SECRET")]
    pub webhook_secret: Option<String>,
    /// Wait until every application is settled, print a summary and exit:
    /// 0 if all are Synced and Healthy, 3 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Work only on the applications whose destination cluster falls in
    /// shard N of M (`0/3`), as Argo CD's controller shards; each shard
    /// elects its own leader.
    #[arg(long, env = "GITPLANE_SHARD")]
    pub shard: Option<gitplane_controller::shard::Shard>,
    /// This replica's name in leader election (default: host name and
    /// process id). Replicas against one cluster elect one leader per shard
    /// with a Lease in the control namespace; the others stand by.
    #[arg(long, env = "GITPLANE_IDENTITY")]
    pub identity: Option<String>,
    /// With --once: give up waiting after this long.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub timeout: Duration,
}

/// Runs `gitplane up`.
pub fn run(args: &UpArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(up(args))
}

async fn up(args: &UpArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| args.data_dir.display().to_string())?;
    let data_dir = args.data_dir.canonicalize()?;
    let (server, kubeconfig) = match &args.kubeconfig {
        Some(path) => (None, path.clone()),
        None => {
            let mut config = Config::new(&data_dir);
            config.listen = args.api;
            config.pod_security = crate::apiserver_cmd::pod_security_config(
                args.admission_control_config_file.as_deref(),
            )?;
            let server = Server::start(config).await.map_err(|e| anyhow!(e))?;
            let kubeconfig = server.kubeconfig.clone();
            println!(
                "embedded API server: https://{} (workloads are simulated: no container runs)",
                server.address
            );
            (Some(server), kubeconfig)
        }
    };
    let control = Arc::new(
        Cluster::connect(&ConnectOptions {
            kubeconfig: Some(kubeconfig.clone()),
            context: args.context.clone(),
            ..ConnectOptions::default()
        })
        .await?,
    );
    gitplane_controller::install(&control, &args.namespace).await?;
    gitplane_controller::graphs::install_graph_crd(&control).await?;
    let repo_url = repository(args, &data_dir)?;
    apply_root(
        &control,
        &args.namespace,
        &repo_url,
        &args.path,
        &args.revision,
    )
    .await?;

    let sources = Arc::new(Sources::new(
        &data_dir.join("cache"),
        SnapshotLimits::default(),
    )?);
    let options = ControllerOptions {
        namespace: args.namespace.clone(),
        reconcile_interval: args.reconcile_interval,
        jitter: args.reconcile_interval / 2,
        status_processors: args.status_processors,
        operation_processors: args.operation_processors,
        wave_timeout: args.wave_timeout,
        shard: args.shard,
        policy_path: Some(args.policy_path.clone()).filter(|p| !p.is_empty()),
        ..ControllerOptions::default()
    };
    let health = health_checker(&control, &args.namespace).await?;
    let controller = Controller::new(
        control.clone(),
        sources,
        Arc::new(health),
        Arc::new(SandboxedJq::new()?),
        options,
    );
    let (ui, portal) =
        crate::portal::start(args.ui, controller.clone(), args.webhook_secret.clone()).await?;
    println!("repository: {repo_url} (path {})", args.path);
    println!("kubeconfig: {}", kubeconfig.display());
    println!(
        "try: kubectl --kubeconfig {} get applications -n {}",
        kubeconfig.display(),
        args.namespace
    );
    println!("http: http://{ui} (/api/v1/applications, /metrics, POST /api/webhook)");

    let lease_name = match args.shard {
        Some(shard) => format!("gitplane-controller-shard-{}", shard.index),
        None => "gitplane-controller".to_string(),
    };
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let election = LeaderElection::new(
        control.clone(),
        LeaseOptions::new(&args.namespace, &lease_name, &identity),
    );
    let standing_by = |holder: &str| {
        println!(
            "standing by: {identity} waits for lease {}/{lease_name}, held by {holder}",
            args.namespace
        );
    };
    tokio::select! {
        _ = election.acquire(&standing_by) => {}
        _ = crate::apiserver_cmd::wait_for_shutdown() => {
            println!("stopping");
            portal.abort();
            stop_server(server).await;
            return Ok(ExitCode::SUCCESS);
        }
    }
    println!(
        "leading: {identity} holds lease {}/{lease_name}",
        args.namespace
    );
    let running = tokio::spawn(controller.clone().run());
    // Graphs are the control cluster's, so the first shard runs them.
    let graphs = args
        .shard
        .is_none_or(|s| s.index == 0)
        .then(|| GraphController::new(control.clone(), GraphOptions::default()));
    let graphs_running = graphs.as_ref().map(|g| tokio::spawn(g.clone().run()));

    let (code, release) = tokio::select! {
        code = run_until_done(args, &controller) => (code, true),
        lost = election.hold() => {
            eprintln!("lost leadership ({lost}): stopping, so that only one replica acts");
            (ExitCode::from(1), false)
        }
    };
    running.abort();
    if let (Some(graphs), Some(task)) = (&graphs, graphs_running) {
        task.abort();
        graphs.stop();
    }
    if release {
        election.release().await;
    }
    portal.abort();
    stop_server(server).await;
    Ok(code)
}

async fn stop_server(server: Option<Server>) {
    if let Some(server) = server {
        server.stop().await;
    }
}

/// With `--once`, until everything settled (exit 0 when all converged, 3
/// otherwise); else until stopped.
async fn run_until_done(args: &UpArgs, controller: &Controller) -> ExitCode {
    if args.once {
        let settled = watch_progress(controller, Some(args.timeout)).await;
        print_summary(&controller.summaries());
        if !settled {
            eprintln!("gave up waiting after {:?}", args.timeout);
        }
        let all = controller.summaries();
        if settled && !all.is_empty() && all.iter().all(AppSummary::converged) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        }
    } else {
        tokio::select! {
            _ = watch_progress(controller, None) => {}
            _ = crate::apiserver_cmd::wait_for_shutdown() => {}
        }
        println!("stopping");
        ExitCode::SUCCESS
    }
}

/// The URL of the platform repository, making the example's local Git
/// repository when none is given.
fn repository(args: &UpArgs, data_dir: &Path) -> Result<String> {
    match &args.repo {
        Some(repo) if Path::new(repo).exists() => {
            Ok(Path::new(repo).canonicalize()?.display().to_string())
        }
        Some(url) => Ok(url.clone()),
        None => {
            let example = find_example()?;
            let repo = data_dir.join("repo");
            refresh_example_repo(&example, &repo)?;
            Ok(repo.display().to_string())
        }
    }
}

/// `examples/platform` of this checkout: next to the working directory, or
/// above the binary (`target/release/gitplane`).
fn find_example() -> Result<PathBuf> {
    let mut candidates = vec![PathBuf::from("examples/platform")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().map(|a| a.join("examples/platform")));
    }
    candidates
        .into_iter()
        .find(|c| c.join("bootstrap").is_dir())
        .ok_or_else(|| {
            anyhow!("examples/platform not found: run from the gitplane checkout, or give --repo")
        })
}

/// Copies the example into a Git repository and commits what changed.
fn refresh_example_repo(example: &Path, repo: &Path) -> Result<()> {
    std::fs::create_dir_all(repo)?;
    for entry in std::fs::read_dir(repo)? {
        let entry = entry?;
        if entry.file_name() != ".git" {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    let url = format!("file://{}", repo.display());
    copy_tree(example, repo, &url)?;
    if !repo.join(".git").exists() {
        git(repo, &["init", "-q", "-b", "main"])?;
    }
    git(repo, &["add", "-A"])?;
    let status = git(repo, &["status", "--porcelain"])?;
    if !status.trim().is_empty() {
        git(
            repo,
            &["commit", "-q", "-m", "gitplane up: the example platform"],
        )?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path, url: &str) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target, url)?;
        } else {
            let text = std::fs::read_to_string(entry.path())?;
            std::fs::write(&target, text.replace(EXAMPLE_REPO_PLACEHOLDER, url))?;
        }
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=gitplane",
            "-c",
            "user.email=gitplane@localhost",
        ])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git (needed to make the example's local repository)")?;
    if !output.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The root Application: an app-of-apps for `path`, synced automatically.
async fn apply_root(
    control: &Cluster,
    namespace: &str,
    url: &str,
    path: &str,
    revision: &str,
) -> Result<()> {
    let root = serde_json::json!({
        "apiVersion": gitplane_controller::API_VERSION,
        "kind": "Application",
        "metadata": {"name": "root", "namespace": namespace},
        "spec": {
            "project": "default",
            "source": {"repoURL": url, "targetRevision": revision, "path": path},
            "destination": {"server": IN_CLUSTER_SERVER, "namespace": namespace},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}
        }
    });
    let serde_json::Value::Object(map) = root else {
        bail!("the root Application is not an object");
    };
    let options = ApplyOptions {
        field_manager: "gitplane-up".into(),
        ..ApplyOptions::default()
    };
    control.apply(&Object::new(map), &options).await?;
    Ok(())
}

/// Argo CD's built-in health checks, with the Lua health customizations of
/// the control namespace's `argocd-cm` ConfigMap, if there is one (settings
/// that do not compile are reported and none of them is used; the
/// controller follows later changes).
async fn health_checker(control: &Cluster, namespace: &str) -> Result<HealthChecker> {
    let data = gitplane_controller::argocd_cm_data(control, namespace).await?;
    let limits = gitplane_health::LuaLimits::default();
    let customizations = match gitplane_health::Customizations::from_argocd_cm(&data, limits) {
        Ok(customizations) => customizations,
        Err(e) => {
            // One broken script must not stop every application's sync.
            eprintln!(
                "warning: {namespace}/argocd-cm: {e}; its health customizations are not used"
            );
            return Ok(HealthChecker::builtin());
        }
    };
    if !customizations.is_empty() {
        println!(
            "health: {} Lua customizations from {namespace}/argocd-cm",
            customizations.len()
        );
    }
    Ok(HealthChecker::with(customizations))
}

/// Up to this many applications, every change of one prints a line; with
/// more, the view prints counts and the slowest operations instead.
const LINE_PER_APP_UP_TO: usize = 30;
/// How many of the slowest running operations the summary view names.
const SLOWEST_SHOWN: usize = 5;

/// Shows progress until everything is settled (with a timeout) or forever
/// (without one); returns whether it settled.
async fn watch_progress(controller: &Controller, timeout: Option<Duration>) -> bool {
    let started = Instant::now();
    let mut view = ProgressView::default();
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let apps = controller.summaries();
        if view.show(&apps, started.elapsed()) {
            quiet_since = Instant::now();
        }
        let Some(timeout) = timeout else { continue };
        let converged = !apps.is_empty() && apps.iter().all(AppSummary::converged);
        let quiet = quiet_since.elapsed();
        // Settled: everything converged with no operation under way (status
        // refreshes may still be queued: with thousands of apps one always
        // is), or nothing queued and nothing changed for a while (something
        // is stuck and says why).
        let converged_for_good =
            converged && controller.operations_busy() == 0 && quiet > Duration::from_millis(500);
        let stuck = controller.busy() == 0 && quiet > Duration::from_secs(30);
        if converged_for_good || stuck {
            return true;
        }
        if started.elapsed() > timeout {
            return false;
        }
    }
}

/// What the progress view printed last.
#[derive(Default)]
struct ProgressView {
    lines: BTreeMap<String, String>,
    counts: String,
    /// The counts at the last look (printed or not).
    seen: String,
    last_summary: Option<Instant>,
}

impl ProgressView {
    /// Prints what changed (counts at most every 2 s); returns whether
    /// anything changed since the last look, printed or not, so settling is
    /// measured from the last change and not from the last print.
    fn show(&mut self, apps: &[AppSummary], elapsed: Duration) -> bool {
        if apps.len() <= LINE_PER_APP_UP_TO {
            return self.show_lines(apps, elapsed);
        }
        let counts = counts_line(apps);
        let changed = counts != self.counts;
        let moved = counts != self.seen;
        self.seen.clone_from(&counts);
        let due = self
            .last_summary
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(2));
        if changed && due {
            println!("[{:>6.1}s] {counts}", elapsed.as_secs_f64());
            for line in slowest_operations(apps, SLOWEST_SHOWN) {
                println!("  {line}");
            }
            self.counts = counts;
            self.last_summary = Some(Instant::now());
        }
        moved
    }

    fn show_lines(&mut self, apps: &[AppSummary], elapsed: Duration) -> bool {
        let mut changed = false;
        for app in apps {
            let line = app_line(app);
            if self.lines.get(&app.name) != Some(&line) {
                changed = true;
                println!("  {line}");
                self.lines.insert(app.name.clone(), line);
            }
        }
        if changed {
            let synced = apps.iter().filter(|a| a.sync == "Synced").count();
            let healthy = apps.iter().filter(|a| a.health == "Healthy").count();
            println!(
                "[{:>5.1}s] {} apps: {synced} synced, {healthy} healthy",
                elapsed.as_secs_f64(),
                apps.len()
            );
        }
        changed
    }
}

/// `5000 apps: 4200 Synced, 800 OutOfSync; 4100 Healthy, 880 Progressing, 20
/// Degraded; 150 operations running`.
fn counts_line(apps: &[AppSummary]) -> String {
    let count = |values: Vec<&str>| {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for value in values {
            *counts
                .entry(if value.is_empty() { "Unknown" } else { value })
                .or_default() += 1;
        }
        let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let running = apps.iter().filter(|a| a.operation == "Running").count();
    format!(
        "{} apps: {}; {}; {running} operations running",
        apps.len(),
        count(apps.iter().map(|a| a.sync.as_str()).collect()),
        count(apps.iter().map(|a| a.health.as_str()).collect()),
    )
}

/// The running operations that started longest ago, with what each waits for.
fn slowest_operations(apps: &[AppSummary], n: usize) -> Vec<String> {
    let now = gitplane_object::time::parse_rfc3339(&gitplane_object::time::now_rfc3339());
    let mut running: Vec<(i64, &AppSummary)> = apps
        .iter()
        .filter(|a| a.operation == "Running")
        .filter_map(|a| {
            let started = gitplane_object::time::parse_rfc3339(&a.operation_started)?;
            Some((now? - started, a))
        })
        .collect();
    running.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.name.cmp(&b.1.name)));
    running
        .into_iter()
        .take(n)
        .map(|(seconds, a)| format!("{seconds:>4}s {}: {}", a.name, a.operation_message))
        .collect()
}

fn short(revision: &str) -> &str {
    revision.get(..7).unwrap_or(revision)
}

fn app_line(app: &AppSummary) -> String {
    format!(
        "{:<24} {:<10} {:<12} {:<8} {}",
        app.name,
        app.sync,
        app.health,
        short(&app.revision),
        app.message
    )
}

/// The final summary: every app when there are few, else the counts and
/// the apps that did not converge (at most 50).
fn print_summary(apps: &[AppSummary]) {
    const LISTED: usize = 50;
    let listed: Vec<&AppSummary> = if apps.len() <= LINE_PER_APP_UP_TO {
        apps.iter().collect()
    } else {
        println!("{}", counts_line(apps));
        apps.iter()
            .filter(|a| !a.converged())
            .take(LISTED)
            .collect()
    };
    if !listed.is_empty() {
        println!(
            "{:<24} {:<10} {:<12} {:<8} MESSAGE",
            "APP", "SYNC", "HEALTH", "REVISION"
        );
    }
    for app in listed {
        println!("{}", app_line(app));
    }
    let converged = apps.iter().filter(|a| a.converged()).count();
    println!(
        "{converged} of {} applications Synced and Healthy",
        apps.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps(healthy: usize) -> Vec<AppSummary> {
        (0..LINE_PER_APP_UP_TO + 1)
            .map(|i| AppSummary {
                name: format!("app-{i}"),
                sync: "Synced".into(),
                health: if i < healthy {
                    "Healthy"
                } else {
                    "Progressing"
                }
                .into(),
                ..AppSummary::default()
            })
            .collect()
    }

    #[test]
    fn a_change_counts_when_it_happens_not_when_it_is_printed() {
        let mut view = ProgressView::default();
        assert!(view.show(&apps(0), Duration::ZERO), "first look");
        // Printed less often than every 2 s: this change is not printed yet,
        // but it is a change, and the next look without one is quiet.
        assert!(view.show(&apps(1), Duration::ZERO));
        assert!(!view.show(&apps(1), Duration::ZERO));
    }
}
