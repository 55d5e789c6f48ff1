//! `gitplane health test DIR` runs Argo CD `health_test.yaml` files;
//! `gitplane health check FILE|-` prints the health of objects as the
//! controller judges it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use gitplane_health::{Customizations, Health, HealthChecker, LuaLimits, run_health_tests};
use gitplane_object::{LoadOptions, Object, Syntax, load_objects};
use serde_json::{Value, json};

/// Arguments of `gitplane health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[command(subcommand)]
    command: HealthCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HealthCommand {
    /// Find every `health_test.yaml` and `actions/action_test.yaml` under
    /// DIR (Argo CD's `resource_customizations/<group>/<Kind>/` layout), run
    /// the sibling `health.lua` (or the actions' `discovery.lua` and
    /// `<action>/action.lua`) on each case's input in the Lua sandbox, print
    /// a line per failing case and `N passed, M failed`. Exit status 1 if any
    /// failed.
    Test {
        /// The directory to search.
        dir: PathBuf,
        /// Print every case, `PASS` or `FAIL`, not only the failures (the
        /// compatibility scripts read this).
        #[arg(long)]
        all: bool,
    },
    /// Print each object's health (status and message) as the controller
    /// judges it: Argo CD's built-in checks, or a Lua customization for its
    /// kind. Objects come from FILE (YAML or JSON, `List`s flattened, so
    /// `kubectl get -o yaml` output works) or `-` for stdin.
    Check {
        /// The manifest file, or `-` for stdin.
        file: PathBuf,
        /// Lua customizations (`<group>/<Kind>/health.lua`, the core group
        /// as `_`), as `gitplane health test` reads them.
        #[arg(long)]
        customizations: Option<PathBuf>,
        /// Argo CD's settings ConfigMap as a file (`kubectl get cm argocd-cm
        /// -n argocd -o yaml`): its `resource.customizations.health.*` (and
        /// legacy `resource.customizations`) scripts, which win over
        /// `--customizations` for the same kind, as in Argo CD.
        #[arg(long)]
        argocd_cm: Option<PathBuf>,
        /// `table`, or `json`/`yaml`: a list of `{apiVersion, kind,
        /// namespace, name, health}`, `health` being `{status, message}` or
        /// `null` for a kind with no health check.
        #[arg(short, long, default_value = "table")]
        output: String,
    },
}

fn show(health: &Result<Health, String>) -> String {
    match health {
        Ok(h) => format!("{} {:?}", h.status, h.message),
        Err(e) => format!("an error: {e}"),
    }
}

/// Runs `gitplane health`.
pub fn run(args: &HealthArgs) -> Result<ExitCode> {
    match &args.command {
        HealthCommand::Test { dir, all } => test(dir, *all),
        HealthCommand::Check {
            file,
            customizations,
            argocd_cm,
            output,
        } => {
            let checker = checker(customizations.as_deref(), argocd_cm.as_deref())?;
            check(file, &checker, output)
        }
    }
}

/// Reads the objects of FILE, or of stdin for `-`.
fn read_objects(file: &Path) -> Result<Vec<Object>> {
    let (bytes, name) = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        (bytes, "<stdin>".to_string())
    } else {
        let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
        (bytes, file.display().to_string())
    };
    let syntax = Syntax::from_file_name(&name);
    Ok(load_objects(
        &bytes,
        &name,
        syntax,
        &LoadOptions::default(),
    )?)
}

/// The built-in checks with the customizations of a directory and of an
/// `argocd-cm` file (which wins for the same kind).
fn checker(dir: Option<&Path>, argocd_cm: Option<&Path>) -> Result<HealthChecker> {
    let limits = LuaLimits::default();
    let mut customizations = match dir {
        Some(dir) => Customizations::load(dir, limits)?,
        None => Customizations::default(),
    };
    if let Some(file) = argocd_cm {
        let objects = read_objects(file)?;
        let [settings] = objects.as_slice() else {
            bail!(
                "{}: expected one ConfigMap, found {} objects",
                file.display(),
                objects.len()
            );
        };
        if settings.kind() != "ConfigMap" {
            bail!(
                "{}: expected a ConfigMap, found a {}",
                file.display(),
                settings.kind()
            );
        }
        let data = settings
            .get(&["data"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let from_cm = Customizations::from_argocd_cm(&data, limits)
            .with_context(|| file.display().to_string())?;
        customizations = customizations.overridden_by(from_cm);
    }
    Ok(HealthChecker::with(customizations))
}

fn check(file: &Path, checker: &HealthChecker, output: &str) -> Result<ExitCode> {
    if !matches!(output, "table" | "json" | "yaml") {
        bail!("unknown output {output}: use table, json or yaml");
    }
    let judged: Vec<(Object, Option<Health>)> = read_objects(file)?
        .into_iter()
        .map(|object| {
            let health = checker.check(&object);
            (object, health)
        })
        .collect();
    let listed: Vec<Value> = judged
        .iter()
        .map(|(object, health)| {
            json!({
                "apiVersion": object.api_version(),
                "kind": object.kind(),
                "namespace": object.namespace(),
                "name": object.name(),
                "health": health.as_ref().map(|h| json!({"status": h.status.as_str(), "message": h.message})),
            })
        })
        .collect();
    match output {
        "json" => println!("{}", serde_json::to_string_pretty(&listed)?),
        "yaml" => print!("{}", gitplane_object::yaml::to_yaml(&Value::Array(listed))),
        _ => print_health_table(&judged),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_health_table(judged: &[(Object, Option<Health>)]) {
    let rows: Vec<[String; 3]> = judged
        .iter()
        .map(|(object, health)| {
            let name = match object.namespace() {
                Some(ns) => format!("{}/{}/{}", object.kind(), ns, object.name()),
                None => format!("{}/{}", object.kind(), object.name()),
            };
            let (status, message) = match health {
                Some(h) => (h.status.as_str().to_string(), h.message.clone()),
                None => ("-".to_string(), "no health check for this kind".to_string()),
            };
            [name, status, message]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(6);
    let (w0, w1) = (width(0), width(1));
    println!("{:w0$}  {:w1$}  MESSAGE", "OBJECT", "HEALTH");
    for [name, status, message] in rows {
        println!("{name:w0$}  {status:w1$}  {message}");
    }
}

fn test(dir: &Path, all: bool) -> Result<ExitCode> {
    let report = run_health_tests(dir, LuaLimits::default())?;
    let mut failed = 0;
    for case in &report.cases {
        let passed = case.passed();
        if !passed {
            failed += 1;
        }
        match (&case.expected, passed) {
            (Some(_), true) if all => {
                println!("PASS {}: {}", case.file.display(), case.input);
            }
            (Some(_), true) => {}
            (Some(expected), false) => println!(
                "FAIL {}: {}: expected {}, got {}",
                case.file.display(),
                case.input,
                show(&Ok(expected.clone())),
                show(&case.actual)
            ),
            (None, _) => println!(
                "FAIL {}",
                show(&case.actual).trim_start_matches("an error: ")
            ),
        }
    }
    for case in &report.actions {
        match &case.failure {
            None if all => println!("PASS {}: {}", case.file.display(), case.name),
            None => {}
            Some(why) => {
                failed += 1;
                println!("FAIL {}: {}: {why}", case.file.display(), case.name);
            }
        }
    }
    println!("{} passed, {failed} failed", report.passed());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
