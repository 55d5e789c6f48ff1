//! `gitplane helm template NAME CHART`: a chart rendered as `helm template`
//! (Helm 4.1.4) prints it, without Helm.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use gitplane_render::HelmOptions;

use crate::render_cmd::root_and_path;

/// `gitplane helm …`.
#[derive(Debug, clap::Args)]
pub struct HelmCommand {
    #[command(subcommand)]
    command: HelmSubcommand,
}

#[derive(Debug, clap::Subcommand)]
enum HelmSubcommand {
    /// Render a chart directory as `helm template NAME CHART` does (same
    /// output, byte for byte, as Helm 4.1.4): values files and --set
    /// flavours, dependencies in charts/ with their conditions, tags and
    /// aliases, hooks, CRDs with --include-crds; directories and .tgz
    /// archives; values validated against each chart's values.schema.json.
    /// Pulling from a chart repository (--repo) is not supported yet.
    Template(TemplateArgs),
}

/// Arguments of `gitplane helm template`.
#[derive(Debug, clap::Args)]
struct TemplateArgs {
    /// The release name (`.Release.Name`).
    name: String,
    /// The chart: a directory holding Chart.yaml, or a .tgz archive.
    chart: PathBuf,
    /// Values files, in order (later ones win). Read inside --root.
    #[arg(short = 'f', long = "values")]
    values: Vec<PathBuf>,
    /// Set values (`a.b=1,c={x,y},d[0]=z`): `true`/`false`, `null` and
    /// integers are typed, as in Helm.
    #[arg(long)]
    set: Vec<String>,
    /// Set values as strings.
    #[arg(long = "set-string")]
    set_string: Vec<String>,
    /// Set values given as JSON (`a.b={"x":1},c=[1,2]`, or a whole object
    /// `{"a":{"b":1}}`); applied before --set, as in Helm.
    #[arg(long = "set-json")]
    set_json: Vec<String>,
    /// Set a value to a file's text (`key=path`, the file read inside
    /// --root); applied after --set-string.
    #[arg(long = "set-file")]
    set_file: Vec<String>,
    /// Set one value to a literal string: everything after the first `=`,
    /// commas and backslashes included; applied last.
    #[arg(long = "set-literal")]
    set_literal: Vec<String>,
    /// Print only the documents rendered from these templates (paths in the
    /// chart such as `templates/service.yaml`; globs as Go's filepath.Match).
    #[arg(short = 's', long = "show-only")]
    show_only: Vec<String>,
    /// `.Release.Namespace`.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Print the chart's CRDs (crds/) first.
    #[arg(long)]
    include_crds: bool,
    /// Accepted for compatibility: as with `helm template`, it only affects
    /// installing CRDs into a cluster, so the output does not change (CRDs
    /// are printed only with --include-crds).
    #[arg(long)]
    skip_crds: bool,
    /// Leave out test hooks.
    #[arg(long)]
    skip_tests: bool,
    /// Leave out hooks.
    #[arg(long)]
    no_hooks: bool,
    /// Do not validate values against the charts' values.schema.json.
    #[arg(long)]
    skip_schema_validation: bool,
    /// `.Capabilities.KubeVersion` (default v1.35.0, as Helm 4.1.4).
    #[arg(long)]
    kube_version: Option<String>,
    /// API versions added to `.Capabilities.APIVersions` (repeatable).
    #[arg(short = 'a', long = "api-versions")]
    api_versions: Vec<String>,
    /// The directory reads are confined to (default: the Git repository
    /// holding the chart).
    #[arg(long)]
    root: Option<PathBuf>,
}

/// Runs `gitplane helm`.
pub fn run(command: &HelmCommand) -> Result<ExitCode> {
    match &command.command {
        HelmSubcommand::Template(args) => template(args),
    }
}

fn template(args: &TemplateArgs) -> Result<ExitCode> {
    let (root, chart) = root_and_path(&args.chart, args.root.as_deref())?;
    // Named from the root (a leading `/`), as Argo CD's absolute valueFiles.
    let from_root = |file: &Path| -> Result<String> {
        let absolute = std::fs::canonicalize(file)
            .with_context(|| format!("{}: no such file", file.display()))?;
        let relative = absolute.strip_prefix(root.path()).with_context(|| {
            format!(
                "{} is outside the root {}",
                file.display(),
                root.path().display()
            )
        })?;
        Ok(format!("/{}", relative.to_string_lossy()))
    };
    let value_files = args
        .values
        .iter()
        .map(|file| from_root(file))
        .collect::<Result<Vec<_>>>()?;
    let set_file = args
        .set_file
        .iter()
        .map(|text| {
            let (key, file) = text
                .split_once('=')
                .with_context(|| format!("--set-file {text:?}: expected key=path"))?;
            Ok((key.to_string(), from_root(Path::new(file))?))
        })
        .collect::<Result<Vec<_>>>()?;
    let options = HelmOptions {
        release_name: args.name.clone(),
        namespace: args.namespace.clone(),
        value_files,
        set_file,
        set_json: args.set_json.clone(),
        set: args.set.clone(),
        set_string: args.set_string.clone(),
        set_literal: args.set_literal.clone(),
        include_crds: args.include_crds,
        skip_tests: args.skip_tests,
        no_hooks: args.no_hooks,
        skip_schema_validation: args.skip_schema_validation,
        kube_version: args.kube_version.clone(),
        api_versions: args.api_versions.clone(),
        ..HelmOptions::default()
    };
    let rendered = gitplane_render::helm::template(&root, &chart, &options)?;
    for warning in &rendered.warnings {
        eprintln!("warning: {warning}");
    }
    let output = if args.show_only.is_empty() {
        rendered.output
    } else {
        gitplane_render::helm::manifest::show_only(&rendered.output, &args.show_only)
            .map_err(anyhow::Error::msg)?
    };
    std::io::stdout().lock().write_all(output.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
