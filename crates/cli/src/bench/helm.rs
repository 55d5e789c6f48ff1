//! `gitplane bench helm`: one chart rendered as many releases, as a GitOps
//! controller renders it for many applications: `gitplane helm template`
//! against `helm template`, one process per release each, in the same run,
//! and gitplane's engine in process as the controller renders (the chart
//! loaded once, each release rendered with its own name and namespace).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    /// A values file given to every release of both tools (`-f`; a chart's
    /// `ci/*.yaml`, say). Repeatable.
    #[arg(long = "values", short = 'f')]
    values: Vec<PathBuf>,
    /// A value given to every release of both tools (`--set`; to pin a
    /// chart's random password so the outputs compare). Repeatable.
    #[arg(long)]
    set: Vec<String>,
    /// Measure only gitplane's engine in process: no peer, no processes, no
    /// output comparison (for profiling the engine).
    #[arg(long)]
    in_process_only: bool,
}

/// Runs the benchmark.
pub fn run(args: &HelmBenchArgs) -> Result<ExitCode> {
    if args.runs == 0 || args.releases == 0 {
        bail!("--runs and --releases must be at least 1");
    }
    if args.in_process_only {
        let (best, median) = render_in_process(args)?;
        print_in_process(args, best, median);
        return Ok(ExitCode::SUCCESS);
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
    let flags = value_flags(args)?;
    let quoted_flags: String = flags
        .iter()
        .map(|f| format!(" '{}'", f.replace('\'', "'\\''")))
        .collect();
    // One shell per run renders every release, so process start-up is
    // counted for both tools, as a controller shelling out pays it.
    let script = |program: &std::path::Path, prefix: &str| {
        format!(
            "for i in $(seq 1 {n}); do {p} {prefix} release-$i {chart} --namespace team-$i{quoted_flags} >/dev/null || exit 1; done",
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
    let identical = outputs_identical(&gitplane, &helm, chart, &flags)?;
    let in_process = render_in_process(args)?;
    println!(
        "helm: {chart}{quoted_flags}, {} releases per run, {} runs each",
        args.releases, args.runs
    );
    for m in [&ours, &theirs] {
        m.print(m.tool);
    }
    print_in_process(args, in_process.0, in_process.1);
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

/// Prints the in-process times and the time per release.
fn print_in_process(args: &HelmBenchArgs, best: Duration, median: Duration) {
    println!(
        "  {:<34} best {:>7.0} ms  median {:>7.0} ms  ({:.2} ms per release)",
        "gitplane, in process",
        best.as_secs_f64() * 1000.0,
        median.as_secs_f64() * 1000.0,
        best.as_secs_f64() * 1000.0 / args.releases as f64
    );
}

/// The `-f` and `--set` flags both tools get (values files as absolute
/// paths).
fn value_flags(args: &HelmBenchArgs) -> Result<Vec<String>> {
    let mut flags = Vec::new();
    for file in &args.values {
        let path = std::fs::canonicalize(file)
            .with_context(|| format!("{}: no such values file", file.display()))?;
        flags.push("-f".to_string());
        flags.push(
            path.to_str()
                .context("a values path is not UTF-8")?
                .to_string(),
        );
    }
    for value in &args.set {
        flags.push("--set".to_string());
        flags.push(value.clone());
    }
    Ok(flags)
}

/// Whether both tools print the same for one release.
fn outputs_identical(
    gitplane: &std::path::Path,
    helm: &std::path::Path,
    chart: &str,
    flags: &[String],
) -> Result<bool> {
    let run = |program: &std::path::Path, args: &[String]| -> Result<Vec<u8>> {
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
    let release = ["release-1", chart, "--namespace", "team-1"];
    let with_flags = |before: &[&'static str]| -> Vec<String> {
        before
            .iter()
            .chain(&release)
            .map(|s| s.to_string())
            .chain(flags.iter().cloned())
            .collect()
    };
    let ours = run(gitplane, &with_flags(&["helm", "template"]))?;
    let theirs = run(helm, &with_flags(&["template"]))?;
    Ok(ours == theirs)
}

/// Best and median time of rendering every release in this process.
fn render_in_process(args: &HelmBenchArgs) -> Result<(Duration, Duration)> {
    let (releases, runs) = (args.releases, args.runs);
    let (root, path) = root_and_path(&args.chart, None)?;
    // Values files are named as the chart's Root sees them: inside it, or
    // by an absolute path, which the Root refuses; read them as inline
    // values instead.
    let values_yaml = args
        .values
        .iter()
        .map(|file| std::fs::read_to_string(file).with_context(|| format!("{}", file.display())))
        .collect::<Result<Vec<_>>>()?;
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
                values_yaml: values_yaml.clone(),
                set: args.set.clone(),
                ..HelmOptions::default()
            };
            gitplane_render::helm::template(&root, &path, &options)?;
        }
        times.push(started.elapsed());
    }
    Ok(best_and_median(times))
}
