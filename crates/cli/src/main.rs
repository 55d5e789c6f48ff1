//! The `gitplane` binary: parses the command line and wires the crates together.
//! It holds no logic of its own beyond presenting results; see each crate's docs.

mod apiserver_cmd;
mod bench;
mod health_cmd;
mod output;
mod render_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Render a directory, a kustomization or a file to manifests, like
    /// `kustomize build` (output identical to `kubectl kustomize`).
    Render(render_cmd::RenderArgs),
    /// Run the embedded Kubernetes-API-compatible control plane (HTTPS, token
    /// auth, durable store, simulated workloads) for kubectl and kube-rs.
    Apiserver(apiserver_cmd::ApiserverArgs),
    /// Health checks: run Argo CD-style `health_test.yaml` files against
    /// their `health.lua` scripts.
    Health(health_cmd::HealthArgs),
    /// Measure gitplane against a peer tool in the same run and print the ratio.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Render(args) => render_cmd::run(&args),
        Command::Apiserver(args) => apiserver_cmd::run(&args),
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
    let level = match verbose {
        0 => "warn",
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
