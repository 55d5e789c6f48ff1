//! `gitplane bench render`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use gitplane_render::synthetic::write_synthetic_platform;

use super::measure::{Measured, find_in_path, report_identical};

/// Arguments of `gitplane bench render`.
#[derive(Debug, clap::Args)]
pub struct RenderBenchArgs {
    /// Number of services in the synthetic platform (about six objects each).
    #[arg(long, default_value_t = 200)]
    services: usize,
    /// Runs per tool; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Write the platform here and keep it (default: a temporary directory).
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(args: &RenderBenchArgs) -> Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let temp = tempfile::tempdir()?;
    let dir = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    eprintln!(
        "writing a synthetic platform of {} services to {}",
        args.services,
        dir.display()
    );
    write_synthetic_platform(&dir, args.services)?;
    let dir_arg = dir.to_str().context("path is not UTF-8")?;
    let gitplane = std::env::current_exe()?;
    let kubectl =
        find_in_path("kubectl").context("kubectl is needed as the peer (kubectl kustomize)")?;

    // Flush the files just written so neither tool competes with writeback.
    let _ = std::process::Command::new("sync").status();
    let mut results = Vec::new();
    for (tool, program, tool_args) in [
        (
            "gitplane render",
            gitplane.as_path(),
            vec!["render", dir_arg],
        ),
        (
            "kubectl kustomize",
            kubectl.as_path(),
            vec!["kustomize", dir_arg],
        ),
    ] {
        results.push(Measured::measure(tool, program, &tool_args, args.runs)?);
    }
    let (ours, theirs) = (&results[0], &results[1]);
    let identical = ours.runs[0].stdout == theirs.runs[0].stdout;
    let objects = ours.runs[0]
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"kind: "))
        .count();
    println!(
        "render: {} services, {objects} objects, {} runs each",
        args.services, args.runs
    );
    println!(
        "{:<20} {:>10} {:>10} {:>12}",
        "TOOL", "BEST", "MEDIAN", "PEAK RSS"
    );
    for m in &results {
        println!(
            "{:<20} {:>8.0}ms {:>8.0}ms {:>9.1} MiB",
            m.tool,
            m.best().as_secs_f64() * 1000.0,
            m.median().as_secs_f64() * 1000.0,
            m.peak_mib()
        );
    }
    println!(
        "ratio (kubectl kustomize / gitplane, best): {:.1}x",
        theirs.best().as_secs_f64() / ours.best().as_secs_f64()
    );
    Ok(report_identical(identical))
}
