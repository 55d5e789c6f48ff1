//! `gitplane bench policy`: ten policies (the example platform's five and
//! five more: deny, foreach, anyPattern and two VAPs) over N objects
//! (Deployments, Services, ConfigMaps and Pods of many teams).
//!
//! - `gitplane policy check --policies DIR OBJECTS` end to end (read,
//!   compile, evaluate, print), best and median of several runs;
//! - the evaluation alone, in process: objects/s and CEL cost per object;
//! - the peer: `kubectl kustomize` of the same objects, which only reads
//!   and prints them (no policy engine runs on this machine: the ratio says
//!   what evaluating ten policies costs next to reading the YAML once);
//! - with `--gatekeeper-library CHECKOUT`, the same for the Gatekeeper
//!   library's pod-security-policy ConstraintTemplates, each with the
//!   Constraint its suite tests first (as `warn`, so violations are counted
//!   and the check exits 0), read from the checkout at run time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use gitplane_object::{LoadOptions, Syntax, load_objects};
use gitplane_policy::PolicySet;

use super::measure::{Measured, find_in_path, run_measured};

/// The example platform's policies and the bench's five.
const POLICY_FILES: [(&str, &str); 7] = [
    (
        "exemptions.yaml",
        include_str!("../../../../examples/platform/platform/policies/exemptions.yaml"),
    ),
    (
        "pod-security-restricted.yaml",
        include_str!(
            "../../../../examples/platform/platform/policies/pod-security-restricted.yaml"
        ),
    ),
    (
        "disallow-latest-tag.yaml",
        include_str!("../../../../examples/platform/platform/policies/disallow-latest-tag.yaml"),
    ),
    (
        "require-requests-limits.yaml",
        include_str!(
            "../../../../examples/platform/platform/policies/require-requests-limits.yaml"
        ),
    ),
    (
        "require-labels.yaml",
        include_str!("../../../../examples/platform/platform/policies/require-labels.yaml"),
    ),
    (
        "disallow-nodeport.yaml",
        include_str!("../../../../examples/platform/platform/policies/disallow-nodeport.yaml"),
    ),
    ("bench.yaml", include_str!("policies.yaml")),
];

/// Arguments of `gitplane bench policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyBenchArgs {
    /// Objects checked.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Runs per tool; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A checkout of open-policy-agent/gatekeeper-library: also measure its
    /// pod-security-policy ConstraintTemplates (each with its first
    /// sample's Constraint) over the same objects.
    #[arg(long, value_name = "CHECKOUT")]
    gatekeeper_library: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(args: &PolicyBenchArgs) -> Result<ExitCode> {
    if args.runs == 0 || args.objects < 4 {
        bail!("--runs must be at least 1 and --objects at least 4");
    }
    let gitplane = std::env::current_exe()?;
    let kubectl = find_in_path("kubectl").context("kubectl is needed as the peer")?;
    let dir = tempfile::tempdir()?;
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies)?;
    for (name, text) in POLICY_FILES {
        std::fs::write(policies.join(name), text)?;
    }
    let objects_dir = dir.path().join("objects");
    std::fs::create_dir_all(&objects_dir)?;
    let text = objects(args.objects);
    std::fs::write(objects_dir.join("objects.yaml"), &text)?;
    std::fs::write(
        objects_dir.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- objects.yaml\n",
    )?;
    eprintln!(
        "policy: {} objects in {}",
        args.objects,
        objects_dir.display()
    );

    let builtin: Vec<(String, String)> = POLICY_FILES
        .iter()
        .map(|(name, body)| (name.to_string(), body.to_string()))
        .collect();
    let (set, loaded) = in_process(&builtin, &text)?;
    if set != 10 {
        bail!(
            "expected 10 policies in {}, found {set}",
            policies.display()
        );
    }
    let path = |p: &Path| p.to_str().map(str::to_string).context("path is not UTF-8");
    let (policies_arg, objects_arg) = (path(&policies)?, path(&objects_dir.join("objects.yaml"))?);
    let ours = measure_check(&gitplane, &policies_arg, &objects_arg, args.runs)?;
    // One run: kustomize's handling of a long resource list is quadratic
    // (minutes at 10,000 objects), so it is neither warmed up nor repeated.
    eprintln!("  kubectl kustomize: one run (slow for long lists)");
    let peer = Measured {
        tool: "kubectl kustomize",
        runs: vec![run_measured(
            &kubectl,
            &["kustomize", &path(&objects_dir)?],
        )?],
    };
    let report = loaded.report;
    println!(
        "policy: {} policies over {} objects, {} runs each",
        set, report.objects, args.runs
    );
    ours.print("gitplane policy check (end to end)");
    peer.print("kubectl kustomize (read + print, 1 run)");
    println!(
        "evaluation alone (in process): {:.0} ms, {:.0} objects/s; {} results ({} violations, {} skipped); CEL cost {:.1} units/object",
        loaded.seconds * 1000.0,
        report.objects as f64 / loaded.seconds,
        report.passed + report.skipped + report.findings.len(),
        report.findings.len(),
        report.skipped,
        report.cost as f64 / report.objects as f64,
    );
    print_end_to_end(report.objects, &ours, &peer);
    if let Some(checkout) = &args.gatekeeper_library {
        let files = gatekeeper_policies(checkout)?;
        let dir = dir.path().join("gatekeeper");
        std::fs::create_dir_all(&dir)?;
        for (name, body) in &files {
            std::fs::write(dir.join(name), body)?;
        }
        let (_, loaded) = in_process(&files, &text)?;
        let ours = measure_check(&gitplane, &path(&dir)?, &objects_arg, args.runs)?;
        let report = loaded.report;
        println!(
            "gatekeeper-library pod-security-policy: {} ConstraintTemplates with a Constraint each, over the same objects",
            files.len() / 2
        );
        ours.print("gitplane policy check (end to end)");
        println!(
            "evaluation alone (in process): {:.0} ms, {:.0} objects/s; {} violations",
            loaded.seconds * 1000.0,
            report.objects as f64 / loaded.seconds,
            report.findings.len(),
        );
        print_end_to_end(report.objects, &ours, &peer);
    }
    Ok(ExitCode::SUCCESS)
}

/// `gitplane policy check --policies POLICIES OBJECTS -o json`, measured.
fn measure_check(gitplane: &Path, policies: &str, objects: &str, runs: usize) -> Result<Measured> {
    Measured::measure(
        "gitplane policy check",
        gitplane,
        &[
            "policy",
            "check",
            "--policies",
            policies,
            objects,
            "-o",
            "json",
        ],
        runs,
    )
}

/// Objects per second end to end, and the ratio against the peer.
fn print_end_to_end(objects: usize, ours: &Measured, peer: &Measured) {
    println!(
        "end to end: {:.0} objects/s; ratio (kubectl kustomize reading them / gitplane checking them, best): {:.1}x",
        objects as f64 / ours.best().as_secs_f64(),
        peer.best().as_secs_f64() / ours.best().as_secs_f64()
    );
}

/// The pod-security-policy ConstraintTemplates of a gatekeeper-library
/// checkout, each with the Constraint its `suite.yaml` tests first, as
/// (file name, text).
fn gatekeeper_policies(checkout: &Path) -> Result<Vec<(String, String)>> {
    let root = checkout.join("library/pod-security-policy");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut files = Vec::new();
    for template_dir in dirs {
        let template = template_dir.join("template.yaml");
        let Some(constraint) = first_tested_constraint(&template_dir)? else {
            continue;
        };
        if !template.is_file() {
            continue;
        }
        let name = template_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("template");
        files.push((
            format!("{name}-template.yaml"),
            std::fs::read_to_string(&template)?,
        ));
        files.push((
            format!("{name}-constraint.json"),
            warning_constraint(&constraint)?,
        ));
    }
    if files.is_empty() {
        bail!(
            "no ConstraintTemplates with samples under {}",
            root.display()
        );
    }
    Ok(files)
}

/// A Constraint file as JSON with `enforcementAction: warn`: the bench
/// counts violations; a `deny` would make `policy check` exit 3, as a
/// failed check does.
fn warning_constraint(path: &Path) -> Result<String> {
    let text = std::fs::read(path)?;
    let documents = gitplane_object::parse_values(
        &text,
        &path.display().to_string(),
        Syntax::Yaml,
        &LoadOptions::default(),
    )?;
    let (mut constraint, _) = documents
        .into_iter()
        .next()
        .with_context(|| format!("{} holds no Constraint", path.display()))?;
    constraint["spec"]["enforcementAction"] = "warn".into();
    Ok(serde_json::to_string(&constraint)?)
}

/// The Constraint file the first test of a template's `suite.yaml` uses.
fn first_tested_constraint(template_dir: &Path) -> Result<Option<PathBuf>> {
    let suite = template_dir.join("suite.yaml");
    let Ok(text) = std::fs::read(&suite) else {
        return Ok(None);
    };
    let documents = gitplane_object::parse_values(
        &text,
        &suite.display().to_string(),
        Syntax::Yaml,
        &LoadOptions::default(),
    )?;
    let constraint = documents
        .first()
        .and_then(|(doc, _)| doc["tests"][0]["constraint"].as_str().map(str::to_string));
    Ok(constraint
        .map(|c| template_dir.join(c))
        .filter(|c| c.is_file()))
}

struct Loaded {
    report: gitplane_policy::Report,
    seconds: f64,
}

/// Loads the policies (file name, text) and evaluates them on the objects
/// in this process; returns the number of policies (Gatekeeper counts its
/// Constraints) and the timed evaluation.
fn in_process(files: &[(String, String)], text: &str) -> Result<(usize, Loaded)> {
    let options = LoadOptions::default();
    let mut policy_objects = Vec::new();
    for (name, body) in files {
        policy_objects.extend(load_objects(body.as_bytes(), name, Syntax::Yaml, &options)?);
    }
    let set = PolicySet::load(policy_objects).map_err(|e| anyhow!("bench policies: {e:?}"))?;
    let objects = load_objects(text.as_bytes(), "objects.yaml", Syntax::Yaml, &options)?;
    let started = Instant::now();
    let report = gitplane_policy::check(&objects, None, &set).map_err(|e| anyhow!(e))?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((set.len(), Loaded { report, seconds }))
}

/// N objects, a quarter each of Deployments, Services, ConfigMaps and
/// Pods, spread over teams and environments. Some violate an Audit policy
/// (an untrusted registry, too many replicas for dev, no readiness probe);
/// none an enforced one, so `policy check` exits 0 as a clean render does.
fn objects(count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        let team = format!("team-{}", i % 20);
        let namespace = format!("{team}-{}", ["dev", "staging", "prod"][i % 3]);
        let image = if i % 50 == 0 {
            format!("docker.io/library/app-{i}:1.0")
        } else {
            format!("registry.example.com/app-{i}:1.{}.0", i % 9)
        };
        let labels = format!("team: {team}, app.kubernetes.io/name: app-{i}");
        let probe = if i % 30 == 0 {
            ""
        } else {
            "readinessProbe: {httpGet: {path: /, port: 8080}}, "
        };
        let container = format!(
            "{{name: app, image: '{image}', {probe}resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{memory: 256Mi}}}}, securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}}}"
        );
        let pod_security = "{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}";
        let doc = match i % 4 {
            0 => format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{i}, namespace: {namespace}, labels: {{{labels}}}}}\nspec:\n  replicas: {}\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n      securityContext: {pod_security}\n      containers: [{container}]\n",
                1 + i % 7
            ),
            1 => format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: app-{i}, namespace: {namespace}, labels: {{{labels}}}}}\nspec:\n  selector: {{app: app-{i}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
            ),
            2 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app-{i}, namespace: {namespace}}}\ndata: {{APP: app-{i}, LOG_LEVEL: info}}\n"
            ),
            _ => format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: app-{i}, namespace: {namespace}, labels: {{{labels}}}}}\nspec:\n  securityContext: {pod_security}\n  containers: [{container}]\n"
            ),
        };
        out.push_str("---\n");
        out.push_str(&doc);
    }
    out
}
