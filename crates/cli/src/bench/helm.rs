//! `gitplane bench helm`: one chart rendered as many releases, as a GitOps
//! controller renders it for many applications: `gitplane helm template`
//! against `helm template`, one process per release each, in the same run,
//! and gitplane's engine in process as the controller renders (the chart
//! loaded once, each release rendered with its own name and namespace).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use gitplane_render::HelmOptions;
use gitplane_render::helm::ChartCache;

use super::measure::{Measured, best_and_median, find_in_path, report_identical};
use crate::render_cmd::root_and_path;

/// Arguments of `gitplane bench helm`.
#[derive(Debug, clap::Args)]
pub struct HelmBenchArgs {
    /// The chart (a directory or a .tgz). Default: the example platform's
    /// ingress-nginx chart.
    #[arg(long, default_value = "examples/platform/infrastructure/ingress-nginx")]
    chart: PathBuf,
    /// The peer: a `helm` binary (default: target/oracle/helm-4.1.4/helm,
    /// which scripts/oracle/helm.sh installs, else `helm` on PATH).
    #[arg(long)]
    helm: Option<PathBuf>,
    /// Releases rendered per run (one process each for both tools).
    #[arg(long, default_value_t = 50)]
    releases: usize,
    /// Runs per tool; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Runs the benchmark.
pub fn run(args: &HelmBenchArgs) -> Result<ExitCode> {
    if args.runs == 0 || args.releases == 0 {
        bail!("--runs and --releases must be at least 1");
    }
    let oracle = PathBuf::from("target/oracle/helm-4.1.4/helm");
    let helm = match &args.helm {
        Some(path) => path.clone(),
        None if oracle.is_file() => oracle,
        None => find_in_path("helm").context(
            "no helm: give --helm, or run scripts/oracle/helm.sh (Helm 4.1.4 into target/oracle/)",
        )?,
    };
    let chart = args.chart.to_str().context("the chart path is not UTF-8")?;
    let gitplane = std::env::current_exe()?;
    // One shell per run renders every release, so process start-up is
    // counted for both tools, as a controller shelling out pays it.
    let script = |program: &std::path::Path, prefix: &str| {
        format!(
            "for i in $(seq 1 {n}); do {p} {prefix} release-$i {chart} --namespace team-$i >/dev/null || exit 1; done",
            n = args.releases,
            p = program.display(),
        )
    };
    let shell = PathBuf::from("/bin/sh");
    let ours_script = script(&gitplane, "helm template");
    let theirs_script = script(&helm, "template");
    let ours = Measured::measure(
        "gitplane helm template",
        &shell,
        &["-c", &ours_script],
        args.runs,
    )?;
    let theirs = Measured::measure("helm template", &shell, &["-c", &theirs_script], args.runs)?;
    let identical = outputs_identical(&gitplane, &helm, chart)?;
    let in_process = render_in_process(&args.chart, args.releases, args.runs)?;
    println!(
        "helm: {chart}, {} releases per run, {} runs each",
        args.releases, args.runs
    );
    for m in [&ours, &theirs] {
        m.print(m.tool);
    }
    println!(
        "  {:<34} best {:>7.0} ms  median {:>7.0} ms",
        "gitplane, in process",
        in_process.0.as_secs_f64() * 1000.0,
        in_process.1.as_secs_f64() * 1000.0
    );
    let per_release = in_process.0.as_secs_f64() / args.releases as f64;
    println!(
        "ratio, one process per release (helm template / gitplane helm template, best): {:.1}x",
        theirs.best().as_secs_f64() / ours.best().as_secs_f64(),
    );
    println!(
        "ratio, per release as the controller renders (helm template / gitplane in process, best): {:.1}x ({:.2} ms per release)",
        theirs.best().as_secs_f64() / in_process.0.as_secs_f64(),
        per_release * 1000.0
    );
    Ok(report_identical(identical))
}

/// Whether both tools print the same for one release.
fn outputs_identical(
    gitplane: &std::path::Path,
    helm: &std::path::Path,
    chart: &str,
) -> Result<bool> {
    let run = |program: &std::path::Path, args: &[&str]| -> Result<Vec<u8>> {
        let out = std::process::Command::new(program).args(args).output()?;
        if !out.status.success() {
            bail!(
                "{}: {}",
                program.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    };
    let ours = run(
        gitplane,
        &[
            "helm",
            "template",
            "release-1",
            chart,
            "--namespace",
            "team-1",
        ],
    )?;
    let theirs = run(
        helm,
        &["template", "release-1", chart, "--namespace", "team-1"],
    )?;
    Ok(ours == theirs)
}

/// Best and median time of rendering every release in this process.
fn render_in_process(
    chart: &std::path::Path,
    releases: usize,
    runs: usize,
) -> Result<(std::time::Duration, std::time::Duration)> {
    let (root, path) = root_and_path(chart, None)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        // A fresh cache per run: the first release of each run loads it.
        let cache = ChartCache::default();
        for i in 1..=releases {
            let options = HelmOptions {
                release_name: format!("release-{i}"),
                namespace: format!("team-{i}"),
                chart_cache: Some(cache.clone()),
                ..HelmOptions::default()
            };
            gitplane_render::helm::template(&root, &path, &options)?;
        }
        times.push(started.elapsed());
    }
    Ok(best_and_median(times))
}
