//! The `gitplane` binary: parses the command line and wires the crates together.
//! It holds no logic of its own beyond presenting results; see each crate's docs.

mod apiserver_cmd;
mod app_cmd;
mod bench;
mod graph_cmd;
mod health_cmd;
mod helm_cmd;
mod output;
mod policy_cmd;
mod policy_test;
mod policy_verify;
mod portal;
mod render_cmd;
mod sandbox;
mod sync_cmd;
mod up_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc, with its background threads handing freed memory back: against
/// glibc's allocator, `gitplane up` on 5,000 platform apps took 1,625 MiB
/// and 163 s of CPU instead of 1,705–1,791 MiB and 202–228 s (glibc kept
/// memory freed after bursts in its arenas), and malloc/free were a quarter
/// of the CPU profile at 200 apps. mimalloc was tried too: 40–60 MiB more.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// gitplane: a platform control plane in one binary.
#[derive(Debug, Parser)]
#[command(name = "gitplane", version, about, long_about = None)]
struct Cli {
    /// Log more (repeat for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job: start the embedded control plane (or use --kubeconfig),
    /// install the Application CRDs, create the root Application for the
    /// platform repository (default: the bundled examples/platform), and
    /// keep every application synced, with a live progress view.
    Up(up_cmd::UpArgs),
    /// Applications: list, get, diff, sync, history, rollback, refresh,
    /// delete — through the Kubernetes API, like `argocd app`.
    App(app_cmd::AppCommand),
    /// Render a directory, a kustomization or a file to manifests, like
    /// `kustomize build` (output identical to `kubectl kustomize`).
    Render(render_cmd::RenderArgs),
    /// Helm charts without Helm: `gitplane helm template NAME CHART` prints
    /// what `helm template` (4.1.4) prints.
    Helm(helm_cmd::HelmCommand),
    /// Sync PATH to a cluster once, as application APP: render, diff against
    /// the cluster (server-side dry run), then apply in Argo CD's order
    /// (phases, waves, hooks) waiting for health, and prune with --prune.
    /// Exit 0 when synced and healthy, 3 when not, 1 on error.
    Apply(sync_cmd::ApplyArgs),
    /// Show how the cluster differs from what PATH renders, for application
    /// APP. Exit 0 when nothing differs, 1 when something does, 2 on error.
    Diff(sync_cmd::DiffArgs),
    /// Run the embedded Kubernetes-API-compatible control plane (HTTPS, token
    /// auth, durable store, simulated workloads) for kubectl and kube-rs.
    Apiserver(apiserver_cmd::ApiserverArgs),
    /// Resource graphs (KRO ResourceGraphDefinitions): check a graph, print
    /// its order or the CRD it generates.
    Graph(graph_cmd::GraphCommand),
    /// Policy: check what paths render to against the Pod Security
    /// Standards before anything reaches a cluster.
    Policy(policy_cmd::PolicyCommand),
    /// Health checks: run Argo CD-style `health_test.yaml` files against
    /// their `health.lua` scripts.
    Health(health_cmd::HealthArgs),
    /// Measure gitplane against a peer tool in the same run and print the ratio.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    // The jq sandbox's child: not a user command, so not in the help.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(sandbox::JQ_SANDBOX_COMMAND) {
        return sandbox::run_child(&args[2..]).unwrap_or_else(|e| {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        });
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Up(args) => up_cmd::run(&args),
        Command::App(command) => app_cmd::run(&command),
        Command::Render(args) => render_cmd::run(&args),
        Command::Helm(command) => helm_cmd::run(&command),
        Command::Apiserver(args) => apiserver_cmd::run(&args),
        Command::Apply(args) => sync_cmd::apply(&args),
        Command::Diff(args) => sync_cmd::diff(&args),
        Command::Graph(command) => graph_cmd::run(&command),
        Command::Policy(command) => policy_cmd::run(&command),
        Command::Health(args) => health_cmd::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr: warnings by default, more with `-v`, or `RUST_LOG`.
fn init_logging(verbose: u8) {
    // kube-rs logs every failed request as an error; gitplane reports the
    // ones that matter itself, so they show from -v on.
    let level = match verbose {
        0 => "warn,kube_client=off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
