//! `gitplane policy check`: Pod Security Standards on what paths render to,
//! before anything reaches a cluster.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use gitplane_policy::pss::Standard;
use gitplane_policy::{Finding, Mode, check_pod_security};
use gitplane_render::{RenderOptions, render};
use serde_json::{Value, json};

use crate::output::ReportFormat;
use crate::render_cmd::{expand_graphs, root_and_path};

/// `gitplane policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyCommand {
    #[command(subcommand)]
    command: PolicySubcommand,
}

#[derive(Debug, clap::Subcommand)]
enum PolicySubcommand {
    /// Render each PATH (a file, a plain directory or a kustomization) and
    /// check its pods — Pods and the templates of Deployments, StatefulSets,
    /// DaemonSets, ReplicaSets, Jobs, CronJobs and ReplicationControllers —
    /// against the Pod Security Standards: at --pss for every object, and at
    /// what rendered Namespaces' pod-security.kubernetes.io labels ask for.
    /// Prints the failures grouped by object. Exit 3 if any is enforced
    /// (--pss or an `enforce` label), 0 otherwise, 1 on error.
    Check(CheckArgs),
}

/// Arguments of `gitplane policy check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or directories to render and check.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Enforce this Pod Security Standard on every pod: `baseline` or
    /// `restricted`, optionally with a version (`restricted:v1.30`; default
    /// `latest`).
    #[arg(long, value_parser = parse_standard, env = "GITPLANE_PSS")]
    pub pss: Option<Standard>,
    /// Expand resource-graph instances first (see `render --expand-graphs`),
    /// so the objects a WebApp becomes are what is checked.
    #[arg(long, env = "GITPLANE_EXPAND_GRAPHS")]
    pub expand_graphs: bool,
    /// Graphs to expand with (a file or directory); implies --expand-graphs.
    #[arg(long, env = "GITPLANE_GRAPHS")]
    pub graphs: Option<PathBuf>,
    /// Output format: text (the default), yaml or json.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text, env = "GITPLANE_OUTPUT")]
    pub output: ReportFormat,
}

fn parse_standard(text: &str) -> Result<Standard, String> {
    Standard::parse(text)
}

/// Runs `gitplane policy`.
pub fn run(command: &PolicyCommand) -> Result<ExitCode> {
    match &command.command {
        PolicySubcommand::Check(args) => check(args),
    }
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    let mut objects = Vec::new();
    for path in &args.paths {
        let (root, rel) = root_and_path(path, None)?;
        objects.extend(render(&root, &rel, &RenderOptions::default())?);
    }
    if args.expand_graphs || args.graphs.is_some() {
        objects = expand_graphs(objects, args.graphs.as_deref())?;
    }
    let findings = check_pod_security(&objects, args.pss).map_err(|e| anyhow!(e))?;
    let out = match args.output {
        ReportFormat::Text => text_report(&findings, objects.len()),
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(&json!(
                findings.iter().map(finding_json).collect::<Vec<_>>()
            ))?;
            text.push('\n');
            text
        }
        ReportFormat::Yaml => gitplane_object::yaml::to_yaml(&json!(
            findings.iter().map(finding_json).collect::<Vec<_>>()
        )),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(if findings.iter().any(|f| f.mode == Mode::Enforce) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn text_report(findings: &[Finding], checked: usize) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for finding in findings {
        if current != Some(finding.object.as_str()) {
            let origin = finding
                .origin
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            out.push_str(&format!("{}{origin}\n", finding.object));
            current = Some(finding.object.as_str());
        }
        out.push_str(&format!(
            "  {:<8} {} [{}]\n",
            finding.mode.as_str(),
            gitplane_policy::pss::summary(finding.standard, &finding.failures),
            finding.source
        ));
    }
    let enforced = findings.iter().filter(|f| f.mode == Mode::Enforce).count();
    out.push_str(&format!(
        "{checked} objects checked: {} failing a Pod Security Standard, {enforced} enforced\n",
        findings.len()
    ));
    out
}

fn finding_json(finding: &Finding) -> Value {
    json!({
        "object": finding.object,
        "origin": finding.origin,
        "mode": finding.mode.as_str(),
        "standard": finding.standard.to_string(),
        "source": finding.source,
        "podSpecPath": finding.path,
        "message": gitplane_policy::pss::summary(finding.standard, &finding.failures),
        "failures": finding.failures.iter().map(|f| json!({"check": f.check, "reason": f.reason, "detail": f.detail})).collect::<Vec<_>>(),
    })
}
