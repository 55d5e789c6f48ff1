//! `gitplane bench`: measurements against a peer tool in the same run.

use std::process::ExitCode;

use anyhow::Result;

/// Arguments of `gitplane bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs a benchmark.
pub fn run(_args: &BenchArgs) -> Result<ExitCode> {
    anyhow::bail!("no benchmark selected")
}
