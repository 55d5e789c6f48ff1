//! `gitplane apply` (a one-shot sync) and `gitplane diff`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use gitplane_cluster::{Cluster, ConnectOptions, Limits};
use gitplane_diff::IgnoreRule;
use gitplane_health::{HealthChecker, LuaLimits};
use gitplane_object::{LoadOptions, Syntax, parse_values};
use gitplane_sync::{
    ConfigMapStore, OperationPhase, OperationState, OperationStore, Progress, ResultStatus,
    SyncOptions, SyncRequest, compare,
};

use crate::render_cmd::SourceArgs;
use crate::sandbox::SandboxedJq;

/// Which cluster, as kubectl picks it.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, env = "GITPLANE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in it (default: its current context).
    #[arg(long, env = "GITPLANE_CONTEXT")]
    pub context: Option<String>,
    /// Allow kubeconfig `exec` credential plugins (cloud logins).
    #[arg(long)]
    pub allow_exec: bool,
    /// Client-side rate limit: requests per second.
    #[arg(long, default_value_t = 1000.0, env = "GITPLANE_QPS")]
    pub qps: f64,
    /// Client-side rate limit: burst above the rate.
    #[arg(long, default_value_t = 2000, env = "GITPLANE_BURST")]
    pub burst: u32,
    /// Time allowed for one request.
    #[arg(long, value_parser = parse_duration, default_value = "30s", env = "GITPLANE_REQUEST_TIMEOUT")]
    pub request_timeout: Duration,
}

impl ClusterArgs {
    /// Connects.
    pub async fn connect(&self) -> Result<Cluster> {
        let options = ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            allow_exec: self.allow_exec,
            limits: Limits {
                qps: self.qps,
                burst: self.burst,
                timeout: self.request_timeout,
                ..Limits::default()
            },
        };
        Ok(Cluster::connect(&options).await?)
    }
}

/// What both `apply` and `diff` need.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The application: objects are tracked as `<app>:<group>/<Kind>:<ns>/<name>`
    /// (Argo CD's tracking annotation), and only its own objects are pruned.
    #[arg(long)]
    app: String,
    /// Namespace for namespaced objects that name none.
    #[arg(long, short = 'n')]
    namespace: String,
    /// Argo CD sync options (repeatable): `CreateNamespace=true`,
    /// `ServerSideApply=false`, `RespectIgnoreDifferences=true`,
    /// `PrunePropagationPolicy=orphan`, `ApplyOutOfSyncOnly=true`, ...
    #[arg(long = "sync-option", value_name = "OPTION")]
    sync_options: Vec<String>,
    /// A YAML list of `ignoreDifferences` entries, as in an Argo CD Application.
    #[arg(long, value_name = "FILE")]
    ignore_differences: Option<PathBuf>,
    /// Argo CD-style Lua health checks (`<group>/<Kind>/health.lua`).
    #[arg(long, value_name = "DIR")]
    health_customizations: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Arguments of `gitplane apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Delete objects this application tracks that PATH no longer renders.
    #[arg(long)]
    prune: bool,
    /// Show what would happen; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the diff of every changed object first.
    #[arg(long)]
    diff: bool,
    /// Take over objects another application tracks (default: leave them and
    /// report them as Shared).
    #[arg(long)]
    take_over: bool,
    /// How long a wave may take to become healthy.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    wave_timeout: Duration,
    /// Retry a failed sync this many times (5s, doubling, at most 3m apart).
    #[arg(long, default_value_t = 0)]
    retry_limit: u32,
    /// Output of the result: a table, or the operation as JSON or YAML.
    #[arg(short = 'o', long, value_enum, default_value_t = ResultFormat::Table)]
    output: ResultFormat,
}

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultFormat {
    /// One line per object.
    Table,
    /// The operation state.
    Json,
    /// The operation state.
    Yaml,
}

/// `30s`, `5m`, `1h` or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("not a duration: {text} (use s, m or h)")),
    }
}

/// Reads an `ignoreDifferences` file.
fn read_ignore_rules(path: Option<&PathBuf>) -> Result<Vec<IgnoreRule>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let name = path.display().to_string();
    let documents = parse_values(&bytes, &name, Syntax::Yaml, &LoadOptions::default())?;
    let Some((value, _)) = documents.into_iter().next() else {
        return Ok(Vec::new());
    };
    serde_json::from_value(value)
        .with_context(|| format!("{name}: not a list of ignoreDifferences entries"))
}

/// A digest of the objects, as the revision of a sync of local files.
fn digest(objects: &[gitplane_object::Object]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for object in objects {
        hasher.update(object.to_value().to_string().as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// Everything a sync or diff needs, prepared from the arguments.
struct Prepared {
    cluster: Arc<Cluster>,
    desired: Vec<gitplane_object::Object>,
    /// Names hooks with `generateName`: a digest of what is synced.
    revision: String,
    rules: Vec<IgnoreRule>,
    health: HealthChecker,
    jq: SandboxedJq,
    options: SyncOptions,
}

async fn prepare(args: &AppArgs) -> Result<Prepared> {
    let desired = args.source.render()?;
    let rules = read_ignore_rules(args.ignore_differences.as_ref())?;
    let health = match &args.health_customizations {
        Some(dir) => HealthChecker::with_customizations(dir, LuaLimits::default())?,
        None => HealthChecker::builtin(),
    };
    let mut options = SyncOptions::default();
    options.apply_strings(&args.sync_options)?;
    let cluster = Arc::new(args.cluster.connect().await?);
    let revision = digest(&desired);
    Ok(Prepared {
        cluster,
        desired,
        revision,
        rules,
        health,
        jq: SandboxedJq::new()?,
        options,
    })
}

impl Prepared {
    /// The sync request for application `app`.
    fn request<'a>(&'a self, app: &'a AppArgs) -> SyncRequest<'a> {
        SyncRequest {
            app: &app.app,
            namespace: &app.namespace,
            revision: &self.revision,
            desired: self.desired.clone(),
            options: self.options.clone(),
            ignore: &self.rules,
            jq: &self.jq,
            health: &self.health,
            live: None,
        }
    }

    /// Where application `app`'s operation state is kept.
    fn store(&self, app: &AppArgs) -> ConfigMapStore {
        ConfigMapStore::new(self.cluster.clone(), "gitplane", &app.app)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Progress lines on stderr.
fn print_progress(progress: &Progress) {
    match progress {
        Progress::Planned {
            resources,
            changed,
            prune,
            hooks,
        } => eprintln!(
            "planned: {resources} objects ({changed} changed), {prune} to prune, {hooks} hook runs"
        ),
        Progress::Wave {
            phase,
            wave,
            applied,
            hooks,
        } => eprintln!(
            "{} wave {wave}: {applied} applied, {hooks} hooks started",
            phase.as_str()
        ),
        Progress::Waiting { message, .. } => eprintln!("{message}"),
        Progress::Pruned { count } => eprintln!("pruned {count} objects"),
        Progress::Writing { .. } | Progress::Changed { .. } => {}
        Progress::Retrying {
            attempt,
            after_seconds,
            reason,
        } => eprintln!("sync failed ({reason}); retry {attempt} in {after_seconds:.0}s"),
    }
}

/// The result table.
fn table(state: &OperationState) -> String {
    let mut rows = vec![[
        "KIND".to_string(),
        "NAMESPACE".into(),
        "NAME".into(),
        "PHASE".into(),
        "WAVE".into(),
        "STATUS".into(),
        "HEALTH".into(),
        "MESSAGE".into(),
    ]];
    let mut resources = state.resources.clone();
    resources.sort_by_key(|r| (r.phase, r.wave, r.key.clone()));
    for r in &resources {
        let status = if r.hook {
            format!("Hook{}", r.progress.as_str())
        } else {
            r.status.as_str().to_string()
        };
        rows.push([
            r.key.kind.clone(),
            r.key.namespace.clone(),
            r.key.name.clone(),
            r.phase.as_str().into(),
            r.wave.to_string(),
            status,
            r.health
                .as_ref()
                .map(|h| h.status.to_string())
                .unwrap_or_default(),
            r.message.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (c, width) in widths.iter().enumerate() {
            out.push_str(&format!("{:<width$}  ", row[c]));
        }
        out.push_str(&row[7]);
        out.push('\n');
    }
    out.push_str(&format!(
        "operation {}: {}\n",
        state.phase.as_str(),
        state.message
    ));
    out
}

/// Whether everything ended synced and healthy.
fn converged(state: &OperationState) -> bool {
    state.phase == OperationPhase::Succeeded
        && state.resources.iter().all(|r| {
            !matches!(
                r.status,
                ResultStatus::SyncFailed | ResultStatus::RequiresPruning | ResultStatus::Shared
            ) && r.progress != OperationPhase::Failed
        })
}

/// Runs `gitplane apply`: exit 0 synced and healthy, 3 not, 1 error.
pub fn apply(args: &ApplyArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let mut prepared = prepare(&args.app).await?;
        prepared.options.prune |= args.prune;
        prepared.options.take_over_shared = args.take_over;
        prepared.options.dry_run = args.dry_run;
        prepared.options.wave_timeout = args.wave_timeout;
        prepared.options.retry.limit = args.retry_limit;
        let (request, store, cluster) = (
            prepared.request(&args.app),
            prepared.store(&args.app),
            &prepared.cluster,
        );
        if args.diff {
            let previous = store.load().await?;
            for d in compare(cluster, &request, previous.as_ref()).await?.diffs() {
                print!("{}", d.text);
            }
        }
        let state = &gitplane_sync::run(cluster, &request, &store, true, &print_progress).await?;
        match args.output {
            ResultFormat::Table => print!("{}", table(state)),
            ResultFormat::Json => println!("{}", serde_json::to_string_pretty(state)?),
            ResultFormat::Yaml => print!(
                "{}",
                gitplane_object::yaml::to_yaml(&serde_json::to_value(state)?)
            ),
        }
        Ok(if converged(state) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        })
    })
}

/// Arguments of `gitplane diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    app: AppArgs,
}

/// Runs `gitplane diff`: exit 0 no differences, 1 differences (like `kubectl
/// diff`); errors exit 2.
pub fn diff(args: &DiffArgs) -> Result<ExitCode> {
    let outcome: Result<bool> = runtime()?.block_on(async {
        let prepared = prepare(&args.app).await?;
        let (request, store, cluster) = (
            prepared.request(&args.app),
            prepared.store(&args.app),
            &prepared.cluster,
        );
        let previous = store.load().await?;
        let comparison = compare(cluster, &request, previous.as_ref()).await?;
        if let Some((key, message)) = comparison.failures().first() {
            anyhow::bail!("{key}: {message}");
        }
        let diffs = comparison.diffs();
        let mut differs = false;
        for d in diffs.iter().filter(|d| d.modified) {
            differs = true;
            print!("{}", d.text);
        }
        Ok(differs)
    });
    match outcome {
        Ok(differs) => Ok(ExitCode::from(u8::from(differs))),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5x").is_err());
    }
}
