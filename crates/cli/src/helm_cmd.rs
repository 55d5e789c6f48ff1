//! `gitplane helm template NAME CHART`: a chart rendered as `helm template`
//! (Helm 4.1.4) prints it, without Helm.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gitplane_render::{HelmOptions, RelPath, RenderOptions, Root};
use gitplane_source::{Credentials, SnapshotLimits, Sources};

use crate::render_cmd::{default_root, root_and_path};

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
    /// With --repo (a Helm repository) or an oci:// CHART, the chart is
    /// pulled first (--version: an exact version or a semver range).
    Template(TemplateArgs),
}

/// Arguments of `gitplane helm template`.
#[derive(Debug, clap::Args)]
struct TemplateArgs {
    /// The release name (`.Release.Name`).
    name: String,
    /// The chart: a directory holding Chart.yaml, a .tgz archive, a chart
    /// name in the --repo repository, or `oci://registry/path/chart`.
    chart: PathBuf,
    /// Pull CHART from this Helm repository (`http(s)://…`, the URL whose
    /// `index.yaml` lists it) or OCI registry (`oci://registry/path`).
    #[arg(long)]
    repo: Option<String>,
    /// The version to pull: exact, or a semver range (`1.2.x`, `>=1 <2`);
    /// default the latest stable version.
    #[arg(long, default_value = "")]
    version: String,
    /// User name for the repository or registry.
    #[arg(long)]
    username: Option<String>,
    /// Password or token for the repository or registry (also read from
    /// the GITPLANE_HELM_PASSWORD environment variable).
    #[arg(long)]
    password: Option<String>,
    /// Trust the repository's or registry's certificates if this CA bundle
    /// (PEM) signed them, besides the system's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for the repository or registry.
    #[arg(long)]
    cert_file: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Do not check the repository's or registry's certificate.
    #[arg(long)]
    insecure_skip_tls_verify: bool,
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
    /// holding the chart; for a pulled chart, the one holding the current
    /// directory, where values files are read).
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
    let workspace = Workspace::new(args)?;
    let value_files = args
        .values
        .iter()
        .map(|file| workspace.name(file))
        .collect::<Result<Vec<_>>>()?;
    let set_file = args
        .set_file
        .iter()
        .map(|text| {
            let (key, file) = text
                .split_once('=')
                .with_context(|| format!("--set-file {text:?}: expected key=path"))?;
            Ok((key.to_string(), workspace.name(Path::new(file))?))
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
    let rendered = gitplane_render::helm::template(&workspace.root, &workspace.chart, &options)?;
    for warning in rendered.warnings.iter().chain(&rendered.notes) {
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

/// Where a chart is rendered: the root the renderer reads, the chart in
/// it, and the directory the files named on the command line must be in.
/// A pulled chart is rendered in a staging directory holding its archive
/// and a copy of each such file, so the same confinement applies.
struct Workspace {
    root: Root,
    chart: RelPath,
    files_from: PathBuf,
    staging: Option<tempfile::TempDir>,
}

impl Workspace {
    fn new(args: &TemplateArgs) -> Result<Workspace> {
        let Some((repo, name)) = remote_chart(args)? else {
            let (root, chart) = root_and_path(&args.chart, args.root.as_deref())?;
            let files_from = root.path().to_path_buf();
            return Ok(Workspace {
                root,
                chart,
                files_from,
                staging: None,
            });
        };
        let files_from = match &args.root {
            Some(dir) => std::fs::canonicalize(dir)
                .with_context(|| format!("{}: no such directory", dir.display()))?,
            None => default_root(&std::env::current_dir()?),
        };
        let archive = pull(args, &repo, &name)?;
        let staging = tempfile::tempdir()?;
        let file_name = archive
            .file_name()
            .context("a pulled chart has a file name")?;
        std::fs::copy(&archive, staging.path().join(file_name))?;
        let root = Root::open(
            staging.path(),
            RenderOptions::default().load.limits.max_bytes as u64,
        )?;
        let chart = root.resolve(&RelPath::root(), &file_name.to_string_lossy())?;
        Ok(Workspace {
            root,
            chart,
            files_from,
            staging: Some(staging),
        })
    }

    /// `file` named from the root (a leading `/`, as Argo CD's absolute
    /// valueFiles), refused outside it; copied in when staging.
    fn name(&self, file: &Path) -> Result<String> {
        let absolute = std::fs::canonicalize(file)
            .with_context(|| format!("{}: no such file", file.display()))?;
        let relative = absolute.strip_prefix(&self.files_from).with_context(|| {
            format!(
                "{} is outside the root {}",
                file.display(),
                self.files_from.display()
            )
        })?;
        if let Some(staging) = &self.staging {
            let copy = staging.path().join(relative);
            if let Some(parent) = copy.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(&absolute, &copy)?;
        }
        Ok(format!("/{}", relative.to_string_lossy()))
    }
}

/// The repository and chart name to pull, if CHART is not a local path:
/// `--repo URL` with a chart name, or an `oci://…/chart` reference.
fn remote_chart(args: &TemplateArgs) -> Result<Option<(String, String)>> {
    let chart = args.chart.to_string_lossy();
    if let Some(repo) = &args.repo {
        if chart.contains('/') {
            bail!("with --repo, CHART is a chart name, not {chart:?}");
        }
        return Ok(Some((repo.clone(), chart.into_owned())));
    }
    if let Some(reference) = chart.strip_prefix("oci://") {
        let (path, name) = reference
            .trim_end_matches('/')
            .rsplit_once('/')
            .with_context(|| format!("{chart}: expected oci://registry/path/chart"))?;
        return Ok(Some((format!("oci://{path}"), name.to_string())));
    }
    if !args.version.is_empty() {
        bail!("--version applies to a chart pulled with --repo or from oci://");
    }
    Ok(None)
}

/// Pulls the chart `--repo`/CHART names, with the command's credentials.
fn pull(args: &TemplateArgs, repo: &str, name: &str) -> Result<PathBuf> {
    let read = |file: &Option<PathBuf>| -> Result<Option<String>> {
        file.as_ref()
            .map(|f| std::fs::read_to_string(f).with_context(|| format!("{}", f.display())))
            .transpose()
    };
    let client_cert = match (read(&args.cert_file)?, read(&args.key_file)?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => bail!("--cert-file and --key-file go together"),
    };
    let credentials = Credentials {
        username: args.username.clone(),
        password: args
            .password
            .clone()
            .or_else(|| std::env::var("GITPLANE_HELM_PASSWORD").ok()),
        insecure: args.insecure_skip_tls_verify,
        ca_certs: read(&args.ca_file)?,
        client_cert,
        ssh_private_key: None,
    };
    let (archive, version, digest) = pull_to_cache(repo, name, &args.version, &credentials)?;
    eprintln!("pulled {name} {version} (sha256:{digest})");
    Ok(archive)
}

/// Pulls a chart into the user's cache (`$XDG_CACHE_HOME/gitplane`, else
/// `~/.cache/gitplane`), where archives are kept by digest: the archive's
/// path, the version pulled and its digest.
pub fn pull_to_cache(
    repo: &str,
    name: &str,
    version: &str,
    credentials: &Credentials,
) -> Result<(PathBuf, String, String)> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .context("no cache directory: set XDG_CACHE_HOME or HOME")?
        .join("gitplane");
    let sources = Sources::new(&cache, SnapshotLimits::default())?;
    let pulled = sources.pull_chart(
        repo,
        name,
        version,
        credentials,
        Duration::ZERO,
        &AtomicBool::new(false),
    )?;
    Ok((
        pulled.dir.join(&pulled.file_name),
        pulled.version,
        pulled.digest,
    ))
}
