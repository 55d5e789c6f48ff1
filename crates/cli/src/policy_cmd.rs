//! `gitplane policy`: `check` evaluates Pod Security Standards,
//! ValidatingAdmissionPolicies, Kyverno policies and Gatekeeper constraints
//! on what paths render to, before anything reaches a cluster; `test` runs
//! Kyverno CLI test files and `verify` Gatekeeper (gator) suites.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use gitplane_object::Object;
use gitplane_policy::pss::Standard;
use gitplane_policy::{Finding, PolicySet, Report};
use gitplane_render::{RenderOptions, render};
use serde_json::{Value, json};

use crate::output::ReportFormat;
use crate::render_cmd::{ExpandArgs, root_and_path};
use crate::{policy_test, policy_verify};

/// `gitplane policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyCommand {
    #[command(subcommand)]
    command: PolicySubcommand,
}

#[derive(Debug, clap::Subcommand)]
enum PolicySubcommand {
    /// Render each PATH (a file, a plain directory or a kustomization) and
    /// check every object against the policies in --policies
    /// (ValidatingAdmissionPolicies with their bindings, Kyverno
    /// ClusterPolicies and Policies, Gatekeeper ConstraintTemplates with
    /// their Constraints) and, for pods — Pods and the templates
    /// of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs
    /// and ReplicationControllers — against the Pod Security Standards: at
    /// --pss for every pod, and at what rendered Namespaces'
    /// pod-security.kubernetes.io labels ask for. Prints the violations
    /// grouped by object. Exit 3 if any is enforced (--pss, an `enforce`
    /// label, a Kyverno Enforce rule, a VAP binding with Deny, a Gatekeeper
    /// constraint with enforcementAction deny), 0 otherwise, 1 on error.
    Check(CheckArgs),
    /// Run the Kyverno CLI test files (kyverno-test.yaml) found under DIR:
    /// apply each test's policies to its resources (with its variables)
    /// and compare every expected result (pass, fail, warn, error, skip)
    /// and patched resource. Prints a table per test and the totals; exit
    /// 1 if any result differs.
    Test(TestArgs),
    /// Run the OPA Gatekeeper test suites (gator's `Suite`,
    /// test.gatekeeper.sh/v1alpha1) found under DIR, as `gator verify`
    /// does: each test's ConstraintTemplate (its Rego, run in process) and
    /// Constraint, each case's object (or AdmissionReview) and inventory,
    /// and every assertion (`violations: yes|no|N`, optionally only those
    /// whose message matches a regular expression). Prints a line per case
    /// and the totals; exit 1 if any case fails.
    Verify(VerifyArgs),
}

/// Arguments of `gitplane policy verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A directory searched for Suite files (or one such file). Files a
    /// suite refers to are read relative to it, inside the Git work tree.
    pub dir: PathBuf,
    /// Run only the tests and cases whose name matches this regular expression.
    #[arg(long)]
    pub run: Option<String>,
    /// Evaluate a template's K8sNativeValidation (CEL) source when it has
    /// one, as Gatekeeper does; `false` runs the Rego source instead
    /// (gator's flag of the same name).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_k8s_native_validation: bool,
    /// Output format: text (the default), yaml or json.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text, env = "GITPLANE_OUTPUT")]
    pub output: ReportFormat,
}

/// Arguments of `gitplane policy check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or directories to render and check.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Policies to evaluate: a file or directory (rendered like PATH) of
    /// ValidatingAdmissionPolicies, their bindings and parameter objects,
    /// Kyverno ClusterPolicies/Policies, and Gatekeeper ConstraintTemplates
    /// with their Constraints. May be given more than once.
    #[arg(long, env = "GITPLANE_POLICIES")]
    pub policies: Vec<PathBuf>,
    /// Enforce this Pod Security Standard on every pod: `baseline` or
    /// `restricted`, optionally with a version (`restricted:v1.30`; default
    /// `latest`).
    #[arg(long, value_parser = parse_standard, env = "GITPLANE_PSS")]
    pub pss: Option<Standard>,
    /// Expanding resource-graph instances first, so the objects a WebApp
    /// becomes are what is checked.
    #[command(flatten)]
    pub expand: ExpandArgs,
    /// Output format: text (the default), yaml or json.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text, env = "GITPLANE_OUTPUT")]
    pub output: ReportFormat,
}

/// Arguments of `gitplane policy test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// A directory searched for kyverno-test.yaml files (or one such file).
    /// Files a test refers to must be inside it.
    pub dir: PathBuf,
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
        PolicySubcommand::Test(args) => policy_test::run(&args.dir, args.output),
        PolicySubcommand::Verify(args) => {
            let source = if args.enable_k8s_native_validation {
                gitplane_policy::gatekeeper::Source::PreferCel
            } else {
                gitplane_policy::gatekeeper::Source::Rego
            };
            policy_verify::run(&args.dir, args.run.as_deref(), source, args.output)
        }
    }
}

/// Renders each path (file or directory) into one list of objects.
pub fn render_paths(paths: &[PathBuf]) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    for path in paths {
        let (root, rel) = root_and_path(path, None)?;
        objects.extend(render(&root, &rel, &RenderOptions::default())?);
    }
    Ok(objects)
}

/// Reads and compiles the policies under `paths`; every policy that does
/// not compile is reported with its file, line and object.
pub fn load_policies(paths: &[PathBuf]) -> Result<PolicySet> {
    let set = PolicySet::load(render_paths(paths)?).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow!("invalid policies:\n  {}", lines.join("\n  "))
    })?;
    for skipped in set.skipped() {
        eprintln!("warning: not evaluated: {skipped}");
    }
    Ok(set)
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    let policies = if args.policies.is_empty() {
        PolicySet::default()
    } else {
        load_policies(&args.policies)?
    };
    if args.pss.is_none() && args.policies.is_empty() {
        eprintln!(
            "note: no --policies and no --pss: only rendered Namespaces' pod-security labels are checked"
        );
    }
    let mut objects = render_paths(&args.paths)?;
    objects = args.expand.apply(objects)?;
    let report = gitplane_policy::check(&objects, args.pss, &policies).map_err(|e| anyhow!(e))?;
    let findings: Vec<Value> = report.findings.iter().map(finding_json).collect();
    let out = match args.output {
        ReportFormat::Text => text_report(&report, policies.len()),
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(&findings)?;
            text.push('\n');
            text
        }
        ReportFormat::Yaml => gitplane_object::yaml::to_yaml(&json!(findings)),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(if report.blocks() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn text_report(report: &Report, policies: usize) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for finding in &report.findings {
        if current != Some(finding.object.as_str()) {
            let origin = finding
                .origin
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            out.push_str(&format!("{}{origin}\n", finding.object));
            current = Some(finding.object.as_str());
        }
        let result = &finding.result;
        out.push_str(&format!(
            "  {:<7} {:<5} {}/{}: {} [{}]\n",
            result.mode.as_str(),
            result.verdict.as_str(),
            result.policy,
            result.rule,
            result.message,
            finding.source
        ));
    }
    let enforced = report.findings.iter().filter(|f| f.result.blocks()).count();
    out.push_str(&format!(
        "{} objects checked against {policies} policies: {} violations ({enforced} enforced), {} passed, {} skipped\n",
        report.objects,
        report.findings.len(),
        report.passed,
        report.skipped,
    ));
    out
}

fn finding_json(finding: &Finding) -> Value {
    let result = &finding.result;
    let mut out = json!({
        "object": finding.object,
        "origin": finding.origin,
        "policy": result.policy,
        "rule": result.rule,
        "result": result.verdict.as_str(),
        "mode": result.mode.as_str(),
        "source": finding.source,
        "message": result.message,
    });
    if !result.properties.is_empty() {
        out["properties"] = json!(result.properties);
    }
    if let Some(pss) = &finding.pod_security {
        out["standard"] = json!(pss.standard.to_string());
        out["podSpecPath"] = json!(pss.path);
        out["failures"] = json!(
            pss.failures
                .iter()
                .map(|f| json!({"check": f.check, "reason": f.reason, "detail": f.detail}))
                .collect::<Vec<_>>()
        );
    }
    out
}
