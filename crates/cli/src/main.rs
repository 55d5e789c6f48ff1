//! The `gitplane` binary: parses the command line and wires the crates together.
//! It holds no logic of its own beyond presenting results; see each crate's docs.

mod bench;
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
    /// Measure gitplane against a peer tool in the same run and print the ratio.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render_cmd::run(&args),
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
