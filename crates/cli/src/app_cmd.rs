//! `gitplane app`: Applications through the Kubernetes API, like `argocd
//! app`, so they work the same against the embedded server or a real cluster.

mod actions;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use gitplane_cluster::{Cluster, ConnectOptions, Propagation};
use gitplane_controller::spec::{REFRESH_ANNOTATION, RESOURCES_FINALIZER};
use gitplane_controller::{Controller, ControllerOptions, application_gvk};
use gitplane_health::HealthChecker;
use gitplane_object::Object;
use gitplane_source::{SnapshotLimits, Sources};
use serde_json::{Value, json};

use crate::sandbox::SandboxedJq;
use crate::sync_cmd::parse_duration;

/// `gitplane app` and its connection options.
#[derive(Debug, clap::Args)]
pub struct AppCommand {
    #[command(subcommand)]
    action: Action,
    /// Kubeconfig (default: `.gitplane/kubeconfig` when it exists, else
    /// `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, global = true, env = "GITPLANE_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context in it.
    #[arg(long, global = true)]
    context: Option<String>,
    /// The control namespace holding the Applications.
    #[arg(long, short = 'N', global = true, default_value = "gitplane")]
    app_namespace: String,
    /// Output: table (default), wide, json or yaml.
    #[arg(long, short = 'o', global = true, default_value = "table")]
    output: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Every Application with its sync and health status.
    List,
    /// One Application: status, conditions and resources.
    Get { name: String },
    /// How the cluster differs from Git now: fetches, renders and compares as
    /// the controller does (Secrets masked), changing nothing; exit 1 if
    /// anything differs.
    Diff { name: String },
    /// Ask for a sync (as `argocd app sync`) and wait for it.
    Sync {
        name: String,
        /// Delete resources no longer in Git.
        #[arg(long)]
        prune: bool,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
        /// Sync this revision instead of the target.
        #[arg(long)]
        revision: Option<String>,
        /// How long to wait for the result.
        #[arg(long, value_parser = parse_duration, default_value = "5m")]
        timeout: Duration,
    },
    /// The sync history (IDs for rollback).
    History { name: String },
    /// Sync a revision from the history again, turning automated sync off
    /// (as Argo CD does).
    Rollback {
        name: String,
        id: i64,
        /// How long to wait for the result.
        #[arg(long, value_parser = parse_duration, default_value = "5m")]
        timeout: Duration,
    },
    /// Compare with Git now (`--hard` also fetches again).
    Refresh {
        name: String,
        #[arg(long)]
        hard: bool,
    },
    /// Stop the operation in progress (as `argocd app terminate-op`): hooks
    /// still running are deleted and the operation ends as Failed.
    TerminateOp {
        name: String,
        /// How long to wait for the controller to stop it.
        #[arg(long, value_parser = parse_duration, default_value = "1m")]
        timeout: Duration,
    },
    /// Resource actions on the application's live objects (as `argocd app
    /// actions`): restart, scale, suspend, run a CronJob now, and those of
    /// the control namespace's argocd-cm.
    Actions {
        #[command(subcommand)]
        command: actions::ActionsCommand,
    },
    /// Delete the Application; with --cascade (the default) its resources too.
    Delete {
        name: String,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        cascade: bool,
    },
}

/// Runs `gitplane app …`.
pub fn run(command: &AppCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cluster = connect(command).await?;
        let apps = Apps {
            cluster: Arc::new(cluster),
            namespace: command.app_namespace.clone(),
            output: command.output.clone(),
        };
        apps.run(&command.action).await
    })
}

async fn connect(command: &AppCommand) -> Result<Cluster> {
    let local = PathBuf::from(".gitplane/kubeconfig");
    let kubeconfig = command
        .kubeconfig
        .clone()
        .or_else(|| (std::env::var_os("KUBECONFIG").is_none() && local.exists()).then_some(local));
    Ok(Cluster::connect(&ConnectOptions {
        kubeconfig,
        context: command.context.clone(),
        ..ConnectOptions::default()
    })
    .await?)
}

struct Apps {
    cluster: Arc<Cluster>,
    namespace: String,
    output: String,
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn short(revision: &str) -> &str {
    revision.get(..7).unwrap_or(revision)
}

impl Apps {
    async fn run(&self, action: &Action) -> Result<ExitCode> {
        match action {
            Action::List => self.list().await,
            Action::Get { name } => self.get(name).await,
            Action::Diff { name } => self.diff(name).await,
            Action::Sync {
                name,
                prune,
                dry_run,
                revision,
                timeout,
            } => {
                let sync = json!({"prune": prune, "dryRun": dry_run, "revision": revision.clone().unwrap_or_default()});
                self.operate(
                    name,
                    json!({"operation": {"sync": sync, "initiatedBy": who()}}),
                    *timeout,
                )
                .await
            }
            Action::History { name } => self.history(name).await,
            Action::Actions { command } => self.actions(command).await,
            Action::Rollback { name, id, timeout } => self.rollback(name, *id, *timeout).await,
            Action::Refresh { name, hard } => {
                let mode = if *hard { "hard" } else { "normal" };
                let app = self.fetch(name).await?;
                let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: mode}}});
                self.cluster
                    .merge_patch(&app, patch, "gitplane-cli")
                    .await?;
                println!("application {name}: {mode} refresh requested");
                Ok(ExitCode::SUCCESS)
            }
            Action::TerminateOp { name, timeout } => self.terminate(name, *timeout).await,
            Action::Delete { name, cascade } => self.delete(name, *cascade).await,
        }
    }

    /// Asks the controller to stop the running operation and waits until it
    /// has.
    async fn terminate(&self, name: &str, timeout: Duration) -> Result<ExitCode> {
        let app = self.fetch(name).await?;
        let phase = app
            .str_at(&["status", "operationState", "phase"])
            .unwrap_or_default();
        if !matches!(phase, "Running" | "Terminating") {
            bail!("application {name} has no operation in progress");
        }
        let patch = json!({"status": {"operationState": {"phase": "Terminating"}}});
        self.cluster
            .merge_patch(&app, patch, "gitplane-cli")
            .await?;
        println!("application {name}: termination requested");
        let deadline = Instant::now() + timeout;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let app = self.fetch(name).await?.to_value();
            let state = &app["status"]["operationState"];
            let phase = text(state, &["phase"]);
            if !matches!(phase, "Running" | "Terminating") {
                println!("application {name}: {phase} {}", text(state, &["message"]));
                return Ok(ExitCode::SUCCESS);
            }
            if Instant::now() > deadline {
                bail!(
                    "application {name}: still {phase} after {timeout:?} (is the controller running?)"
                );
            }
        }
    }

    async fn fetch(&self, name: &str) -> Result<Object> {
        self.cluster
            .get(&application_gvk(), &self.namespace, name)
            .await?
            .ok_or_else(|| {
                anyhow!(
                    "application {name} not found in namespace {}",
                    self.namespace
                )
            })
    }

    /// Prints objects as JSON or YAML when asked; true if it did.
    fn print_structured(&self, value: &Value) -> Result<bool> {
        match self.output.as_str() {
            "json" => println!("{}", serde_json::to_string_pretty(value)?),
            "yaml" => print!("{}", gitplane_object::yaml::to_yaml(value)),
            "table" | "wide" => return Ok(false),
            other => bail!("unknown output {other}: use table, wide, json or yaml"),
        }
        Ok(true)
    }

    async fn list(&self) -> Result<ExitCode> {
        let info = self.cluster.resolve(&application_gvk()).await?;
        let apps = self
            .cluster
            .list(&info, Some(&self.namespace), None)
            .await?;
        let values: Vec<Value> = apps.iter().map(Object::to_value).collect();
        if self.print_structured(&json!({"apiVersion": "v1", "kind": "List", "items": values}))? {
            return Ok(ExitCode::SUCCESS);
        }
        let wide = self.output == "wide";
        print!(
            "{:<24} {:<10} {:<12} {:<8} {:<10}",
            "NAME", "SYNC", "HEALTH", "REVISION", "PROJECT"
        );
        println!("{}", if wide { " REPO PATH DESTINATION" } else { "" });
        for app in &values {
            print!(
                "{:<24} {:<10} {:<12} {:<8} {:<10}",
                text(app, &["metadata", "name"]),
                text(app, &["status", "sync", "status"]),
                text(app, &["status", "health", "status"]),
                short(text(app, &["status", "sync", "revision"])),
                text(app, &["spec", "project"]),
            );
            if wide {
                print!(
                    " {} {} {}/{}",
                    text(app, &["spec", "source", "repoURL"]),
                    text(app, &["spec", "source", "path"]),
                    text(app, &["spec", "destination", "server"]),
                    text(app, &["spec", "destination", "namespace"]),
                );
            }
            println!();
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn get(&self, name: &str) -> Result<ExitCode> {
        let app = self.fetch(name).await?.to_value();
        if self.print_structured(&app)? {
            return Ok(ExitCode::SUCCESS);
        }
        println!("Name:        {name}");
        println!("Project:     {}", text(&app, &["spec", "project"]));
        println!(
            "Repo:        {}",
            text(&app, &["spec", "source", "repoURL"])
        );
        println!("Path:        {}", text(&app, &["spec", "source", "path"]));
        println!(
            "Target:      {}",
            text(&app, &["spec", "source", "targetRevision"])
        );
        println!(
            "Sync:        {} to {}",
            text(&app, &["status", "sync", "status"]),
            text(&app, &["status", "sync", "revision"])
        );
        println!(
            "Health:      {} {}",
            text(&app, &["status", "health", "status"]),
            text(&app, &["status", "health", "message"])
        );
        println!(
            "Operation:   {} {}",
            text(&app, &["status", "operationState", "phase"]),
            text(&app, &["status", "operationState", "message"])
        );
        for c in app["status"]["conditions"].as_array().into_iter().flatten() {
            println!(
                "Condition:   {}: {}",
                text(c, &["type"]),
                text(c, &["message"])
            );
        }
        println!();
        println!(
            "{:<12} {:<22} {:<16} {:<32} {:<10} HEALTH",
            "GROUP", "KIND", "NAMESPACE", "NAME", "STATUS"
        );
        for r in app["status"]["resources"].as_array().into_iter().flatten() {
            println!(
                "{:<12} {:<22} {:<16} {:<32} {:<10} {}",
                text(r, &["group"]),
                text(r, &["kind"]),
                text(r, &["namespace"]),
                text(r, &["name"]),
                text(r, &["status"]),
                text(r, &["health", "status"]),
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Fetches and renders the app's source and compares it with its
    /// destination, as the controller would, changing nothing.
    async fn diff(&self, name: &str) -> Result<ExitCode> {
        let cache = tempfile::tempdir()?;
        let sources = Sources::new(cache.path(), SnapshotLimits::default())?;
        let controller = Controller::new(
            self.cluster.clone(),
            Arc::new(sources),
            Arc::new(HealthChecker::builtin()),
            Arc::new(SandboxedJq::new()?),
            ControllerOptions {
                namespace: self.namespace.clone(),
                ..ControllerOptions::default()
            },
        );
        let diffs = controller.diff(name).await.map_err(|e| anyhow!(e))?;
        let differing: Vec<_> = diffs.iter().filter(|d| d.modified).collect();
        let listed: Vec<Value> = differing
            .iter()
            .map(|d| json!({"object": d.key.to_string(), "diff": d.text}))
            .collect();
        if !self.print_structured(&json!(listed))? {
            for d in &differing {
                print!("{}", d.text);
            }
        }
        Ok(ExitCode::from(u8::from(!differing.is_empty())))
    }

    async fn history(&self, name: &str) -> Result<ExitCode> {
        let app = self.fetch(name).await?.to_value();
        let history = app["status"]["history"].clone();
        if self.print_structured(&history)? {
            return Ok(ExitCode::SUCCESS);
        }
        println!("{:<4} {:<22} REVISION", "ID", "DEPLOYED");
        for h in history.as_array().into_iter().flatten() {
            println!(
                "{:<4} {:<22} {}",
                h["id"],
                text(h, &["deployedAt"]),
                text(h, &["revision"])
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn rollback(&self, name: &str, id: i64, timeout: Duration) -> Result<ExitCode> {
        let app = self.fetch(name).await?;
        let entry = app
            .get(&["status", "history"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|h| h["id"].as_i64() == Some(id))
            .cloned()
            .ok_or_else(|| anyhow!("application {name} has no history entry {id}"))?;
        let revision = text(&entry, &["revision"]).to_string();
        if let Some(parent) = app.annotation(gitplane_cluster::TRACKING_ANNOTATION) {
            let parent = parent.split(':').next().unwrap_or(parent);
            println!(
                "note: {name} is managed by application {parent}; if {parent} heals drift, it restores {name}'s spec from Git and undoes this rollback"
            );
        }
        if app.get(&["spec", "syncPolicy", "automated"]).is_some() {
            println!(
                "application {name}: automated sync turned off (a rollback would be undone by it), as Argo CD does"
            );
        }
        let patch = json!({
            "spec": {"syncPolicy": {"automated": null}},
            "operation": {"sync": {"revision": revision, "prune": true}, "initiatedBy": who()},
        });
        println!("application {name}: rolling back to {id} ({revision})");
        self.operate(name, patch, timeout).await
    }

    /// Writes an operation and waits for its result.
    ///
    /// The controller clears `operation` in the same write that records the
    /// operation as Running, so once `operation` is gone the state is this
    /// operation's. (Comparing `startedAt` cannot tell two operations started
    /// in the same second apart: a rollback right after a sync waited forever.)
    async fn operate(&self, name: &str, patch: Value, timeout: Duration) -> Result<ExitCode> {
        let app = self.fetch(name).await?;
        self.cluster
            .merge_patch(&app, patch, "gitplane-cli")
            .await?;
        let deadline = Instant::now() + timeout;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let app = self.fetch(name).await?.to_value();
            let state = &app["status"]["operationState"];
            let phase = text(state, &["phase"]);
            let taken = app.get("operation").is_none_or(Value::is_null);
            if taken && !phase.is_empty() && phase != "Running" {
                println!("application {name}: {phase} {}", text(state, &["message"]));
                return Ok(if phase == "Succeeded" {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                });
            }
            if Instant::now() > deadline {
                bail!(
                    "application {name}: no result after {timeout:?} (is the controller running?)"
                );
            }
        }
    }

    async fn delete(&self, name: &str, cascade: bool) -> Result<ExitCode> {
        let app = self.fetch(name).await?;
        let mut finalizers: Vec<Value> = app
            .get(&["metadata", "finalizers"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let has = finalizers.iter().any(|f| f == RESOURCES_FINALIZER);
        if cascade != has {
            if cascade {
                finalizers.push(RESOURCES_FINALIZER.into());
            } else {
                finalizers.retain(|f| f != RESOURCES_FINALIZER);
            }
            let patch = json!({"metadata": {"finalizers": finalizers}});
            self.cluster
                .merge_patch(&app, patch, "gitplane-cli")
                .await?;
        }
        self.cluster
            .delete(&app, Propagation::Background, false)
            .await?;
        let what = if cascade {
            "and its resources are"
        } else {
            "is (its resources stay)"
        };
        println!("application {name} {what} being deleted");
        Ok(ExitCode::SUCCESS)
    }
}

fn who() -> Value {
    let user = std::env::var("USER").unwrap_or_else(|_| "gitplane-cli".into());
    json!({"username": user})
}
