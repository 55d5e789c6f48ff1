//! `gitplane render PATH`: print what a path renders to.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use gitplane_render::{DirectoryOptions, RelPath, RenderOptions, Root, render};

use crate::output::{Format, format_objects};

/// Arguments of `gitplane render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// A directory (with a kustomization, or plain manifests) or a manifest file.
    pub path: PathBuf,
    /// The repository root reads are confined to (default: the path itself, or
    /// the directory of a file). Paths and symlinks leaving it are refused.
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
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Yaml, env = "GITPLANE_OUTPUT")]
    pub output: Format,
}

/// Splits a path into a confining root and the path inside it.
pub fn root_and_path(path: &Path, root: Option<&Path>) -> Result<(Root, RelPath)> {
    let path = std::fs::canonicalize(path)
        .with_context(|| format!("{}: no such file or directory", path.display()))?;
    let root_dir = match root {
        Some(r) => std::fs::canonicalize(r)
            .with_context(|| format!("{}: no such directory", r.display()))?,
        None if path.is_dir() => path.clone(),
        None => path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| path.clone()),
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

/// Runs `gitplane render`.
pub fn run(args: &RenderArgs) -> Result<ExitCode> {
    let (root, rel) = root_and_path(&args.path, args.root.as_deref())?;
    let options = RenderOptions {
        directory: DirectoryOptions {
            recurse: args.recurse,
            include: args.include.clone(),
            exclude: args.exclude.clone(),
        },
        ..RenderOptions::default()
    };
    let objects = render(&root, &rel, &options)?;
    let text = format_objects(&objects, args.output)?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
