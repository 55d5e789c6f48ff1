//! Plain directories, as Argo CD's `directory` source renders them: the `.yaml`,
//! `.yml` and `.json` files of a directory (and its subdirectories with
//! `recurse`), filtered by `include` / `exclude` globs matched against the path
//! relative to the directory, in lexical path order. Other files are ignored, and
//! so are entries whose name starts with `.` (`.git`, `.github`).

use gitplane_object::{Object, Syntax, load_objects};
use globset::{Glob, GlobMatcher};

use crate::RenderOptions;
use crate::error::RenderError;
use crate::fs::{EntryKind, RelPath, Root};

/// The Argo CD `spec.source.directory` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// Descend into subdirectories.
    pub recurse: bool,
    /// Only files whose relative path matches this glob (`{a,b}` alternatives allowed).
    pub include: Option<String>,
    /// Skip files whose relative path matches this glob.
    pub exclude: Option<String>,
}

const MANIFEST_EXTENSIONS: [&str; 3] = [".yaml", ".yml", ".json"];

/// True for file names that hold manifests.
pub fn is_manifest_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    MANIFEST_EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
}

fn matcher(pattern: &Option<String>, field: &str) -> Result<Option<GlobMatcher>, RenderError> {
    pattern
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| {
            Glob::new(p)
                .map(|g| g.compile_matcher())
                .map_err(|e| RenderError::Io {
                    path: field.to_string(),
                    reason: format!("invalid glob {p:?}: {}", e.kind()),
                })
        })
        .transpose()
}

/// Renders the manifests of a plain directory.
pub fn render_directory(
    root: &Root,
    dir: &RelPath,
    options: &RenderOptions,
) -> Result<Vec<Object>, RenderError> {
    let include = matcher(&options.directory.include, "directory.include")?;
    let exclude = matcher(&options.directory.exclude, "directory.exclude")?;
    let mut files = Vec::new();
    collect_files(root, dir, "", options.directory.recurse, &mut files)?;
    let mut objects = Vec::new();
    for (rel, relative_to_dir) in files {
        if exclude
            .as_ref()
            .is_some_and(|m| m.is_match(&relative_to_dir))
        {
            continue;
        }
        if include
            .as_ref()
            .is_some_and(|m| !m.is_match(&relative_to_dir))
        {
            continue;
        }
        let bytes = root.read(&rel)?;
        objects.extend(load_objects(
            &bytes,
            rel.as_str(),
            Syntax::from_file_name(rel.as_str()),
            &options.load,
        )?);
    }
    Ok(objects)
}

fn collect_files(
    root: &Root,
    dir: &RelPath,
    prefix: &str,
    recurse: bool,
    out: &mut Vec<(RelPath, String)>,
) -> Result<(), RenderError> {
    for (name, kind) in root.list(dir)? {
        if name.starts_with('.') {
            continue;
        }
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        match kind {
            EntryKind::File if is_manifest_file(&name) => out.push((dir.join(&name), relative)),
            EntryKind::File => {}
            EntryKind::Dir if recurse => {
                collect_files(root, &dir.join(&name), &relative, recurse, out)?
            }
            EntryKind::Dir => {}
        }
    }
    Ok(())
}
