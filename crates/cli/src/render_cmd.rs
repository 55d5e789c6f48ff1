//! `gitplane render PATH`: print what a path renders to.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use gitplane_render::{DirectoryOptions, RelPath, RenderOptions, Root, render, render_with_notes};

use crate::output::{Format, format_objects};

/// Arguments of `gitplane render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Yaml, env = "GITPLANE_OUTPUT")]
    pub output: Format,
    #[command(flatten)]
    pub expand: ExpandArgs,
}

/// Expanding resource-graph instances offline (shared by `render` and
/// `policy check`).
#[derive(Debug, clap::Args)]
pub struct ExpandArgs {
    /// Expand every instance of a ResourceGraphDefinition found in the
    /// output (or in --graphs) into the objects it stands for, as kro would.
    /// Fields only a cluster writes (a status) are reported as unresolved on
    /// stderr, and the resources waiting on them are left out.
    #[arg(long, env = "GITPLANE_EXPAND_GRAPHS")]
    pub expand_graphs: bool,
    /// A file or directory of ResourceGraphDefinitions to expand with (in
    /// addition to those in the output); implies --expand-graphs.
    #[arg(long, env = "GITPLANE_GRAPHS")]
    pub graphs: Option<PathBuf>,
    /// The namespace of instances that set none (of graphs whose scope is
    /// Namespaced), as `kubectl apply -n` would place them; their children
    /// follow.
    #[arg(
        short = 'n',
        long,
        default_value = "default",
        env = "GITPLANE_NAMESPACE"
    )]
    pub namespace: String,
}

impl ExpandArgs {
    /// The objects with their instances expanded, if asked to.
    pub fn apply(
        &self,
        objects: Vec<gitplane_object::Object>,
    ) -> Result<Vec<gitplane_object::Object>> {
        if !self.expand_graphs && self.graphs.is_none() {
            return Ok(objects);
        }
        expand_graphs(objects, self.graphs.as_deref(), &self.namespace)
    }
}

/// What to render: a path and how to read it (shared by every command that
/// renders).
#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// A directory (with a kustomization, or plain manifests) or a manifest file.
    pub path: PathBuf,
    /// The directory reads are confined to: paths and symlinks leaving it are
    /// refused. Default: the Git repository that holds PATH, else the current
    /// directory if it holds PATH, else PATH itself.
    #[arg(long, env = "GITPLANE_ROOT")]
    pub root: Option<PathBuf>,
    /// For plain directories: include subdirectories.
    #[arg(long, env = "GITPLANE_RECURSE")]
    pub recurse: bool,
    /// For plain directories: only files matching this glob.
    #[arg(long, env = "GITPLANE_INCLUDE")]
    pub include: Option<String>,
    /// For plain directories: skip files matching this glob.
    #[arg(long, env = "GITPLANE_EXCLUDE")]
    pub exclude: Option<String>,
}

/// Pulls the charts kustomize's `helmCharts` name from their `repo` into
/// the user's cache (anonymously), saying so on stderr.
fn chart_puller() -> gitplane_render::ChartPuller {
    gitplane_render::Callback(std::sync::Arc::new(
        |repo: &str, name: &str, version: &str| {
            let credentials = gitplane_source::Credentials::default();
            let (archive, version, digest) =
                crate::helm_cmd::pull_to_cache(repo, name, version, &credentials)
                    .map_err(|e| format!("{e:#}"))?;
            eprintln!("pulled {name} {version} from {repo} (sha256:{digest})");
            Ok(archive)
        },
    ))
}

impl SourceArgs {
    /// Renders the path.
    pub fn render(&self) -> Result<Vec<gitplane_object::Object>> {
        let (root, rel) = root_and_path(&self.path, self.root.as_deref())?;
        let options = RenderOptions {
            directory: DirectoryOptions {
                recurse: self.recurse,
                include: self.include.clone(),
                exclude: self.exclude.clone(),
            },
            chart_puller: Some(chart_puller()),
            ..RenderOptions::default()
        };
        let rendered = render_with_notes(&root, &rel, &options)?;
        for note in &rendered.notes {
            eprintln!("warning: {note}");
        }
        Ok(rendered.objects)
    }
}

/// Splits a path into a confining root and the path inside it.
pub fn root_and_path(path: &Path, root: Option<&Path>) -> Result<(Root, RelPath)> {
    let path = std::fs::canonicalize(path)
        .with_context(|| format!("{}: no such file or directory", path.display()))?;
    let root_dir = match root {
        Some(r) => std::fs::canonicalize(r)
            .with_context(|| format!("{}: no such directory", r.display()))?,
        None => default_root(&path),
    };
    let relative = path.strip_prefix(&root_dir).with_context(|| {
        format!(
            "{} is not inside the root {}",
            path.display(),
            root_dir.display()
        )
    })?;
    let rel = relative
        .to_str()
        .context("path is not valid UTF-8")?
        .to_string();
    let root = Root::open(
        &root_dir,
        RenderOptions::default().load.limits.max_bytes as u64,
    )?;
    let rel = root.resolve(&RelPath::root(), if rel.is_empty() { "." } else { &rel })?;
    Ok((root, rel))
}

/// The Git work tree holding `path`, else the current directory if it holds
/// `path`, else `path` (or its directory, for a file).
pub fn default_root(path: &Path) -> PathBuf {
    let start = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    if let Some(repo) = start.ancestors().find(|dir| dir.join(".git").exists()) {
        return repo.to_path_buf();
    }
    match std::env::current_dir().and_then(std::fs::canonicalize) {
        Ok(cwd) if path.starts_with(&cwd) => cwd,
        _ => start.to_path_buf(),
    }
}

/// Runs `gitplane render`.
pub fn run(args: &RenderArgs) -> Result<ExitCode> {
    let objects = args.expand.apply(args.source.render()?)?;
    let text = format_objects(&objects, args.output)?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Expands the graph instances among `objects` (see `--expand-graphs`),
/// reporting what stays unresolved on stderr.
fn expand_graphs(
    objects: Vec<gitplane_object::Object>,
    graphs: Option<&Path>,
    namespace: &str,
) -> Result<Vec<gitplane_object::Object>> {
    let extra = match graphs {
        Some(path) => {
            let (root, rel) = root_and_path(path, None)?;
            let options = RenderOptions {
                directory: DirectoryOptions {
                    recurse: true,
                    ..DirectoryOptions::default()
                },
                ..RenderOptions::default()
            };
            render(&root, &rel, &options)?
        }
        None => Vec::new(),
    };
    let expansion =
        gitplane_graph::expand_offline(objects, &extra, &gitplane_graph::cel_env(), namespace)?;
    let mut stderr = std::io::stderr().lock();
    for (instance, id, unresolved) in &expansion.unresolved {
        writeln!(
            stderr,
            "unresolved: {instance}, resource {id:?}: {unresolved} (left out)"
        )?;
    }
    // One line per instance for what its includeWhen left out.
    let mut excluded: Vec<(&str, Vec<String>)> = Vec::new();
    for (instance, id, reason) in &expansion.excluded {
        let entry = format!("{id} ({reason})");
        match excluded.last_mut() {
            Some((last, entries)) if *last == instance.as_str() => entries.push(entry),
            _ => excluded.push((instance.as_str(), vec![entry])),
        }
    }
    for (instance, entries) in excluded {
        writeln!(stderr, "excluded: {instance}: {}", entries.join(", "))?;
    }
    Ok(expansion.objects)
}
