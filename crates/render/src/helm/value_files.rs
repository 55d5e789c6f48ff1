//! Values files named as Argo CD's `spec.source.helm.valueFiles` names them:
//! relative to the chart directory, or to the repository root with a
//! leading `/`, or to another source's checkout with `$ref/` (multi-source
//! applications); globs expanded in lexical order, never outside the
//! repository they are in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use globset::GlobBuilder;

use crate::error::RenderError;
use crate::fs::{EntryKind, RelPath, Root};

/// The files `reference` names, read, in order: (name, bytes). A
/// `$name/path` reference is read from the checkout `refs` holds for
/// `name`, relative to its root. A missing file (or a glob that matches
/// nothing) is an error unless `ignore_missing`.
pub fn read(
    root: &Root,
    chart: &RelPath,
    reference: &str,
    ignore_missing: bool,
    refs: &BTreeMap<String, PathBuf>,
) -> Result<Vec<(String, Vec<u8>)>, RenderError> {
    let read_all = |root: &Root, files: Vec<RelPath>, prefix: &str| {
        files
            .into_iter()
            .map(|file| Ok((format!("{prefix}{}", file.display()), root.read(&file)?)))
            .collect()
    };
    let Some(named) = reference.strip_prefix('$') else {
        let files = resolve(root, chart, reference, ignore_missing)?;
        return read_all(root, files, "");
    };
    let (name, path) = named.split_once('/').unwrap_or((named, ""));
    let dir = refs.get(name).ok_or_else(|| {
        RenderError::helm(
            reference,
            format!("no source of the application has ref: {name}"),
        )
    })?;
    if path.is_empty() {
        return Err(RenderError::helm(reference, "expected $ref/path"));
    }
    let other = Root::open(dir, root.max_file_bytes())?;
    let files = resolve(
        &other,
        &RelPath::root(),
        &format!("/{path}"),
        ignore_missing,
    )?;
    read_all(&other, files, &format!("${name}/"))
}

/// The files `reference` names inside `root`, in order.
fn resolve(
    root: &Root,
    chart: &RelPath,
    reference: &str,
    ignore_missing: bool,
) -> Result<Vec<RelPath>, RenderError> {
    if reference.starts_with('$') {
        return Err(RenderError::helm(
            reference,
            "a $ref inside another source is not a values file",
        ));
    }
    if reference.contains("://") {
        return Err(RenderError::helm(
            reference,
            "values files from URLs are refused (the controller would fetch what a repository names); keep them in Git and use a $ref source",
        ));
    }
    let (base, pattern) = match reference.strip_prefix('/') {
        Some(rest) => (RelPath::root(), rest),
        None => (chart.clone(), reference),
    };
    if !pattern.contains(['*', '?', '[']) {
        let path = root.resolve(&base, pattern)?;
        return match root.kind(&path)? {
            Some(EntryKind::File) => Ok(vec![path]),
            _ if ignore_missing => Ok(Vec::new()),
            _ => Err(RenderError::helm(path.display(), "no such values file")),
        };
    }
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| RenderError::helm(reference, format!("bad glob: {e}")))?
        .compile_matcher();
    // Walk only below the pattern's literal directory.
    let literal = pattern
        .split('/')
        .take_while(|part| !part.contains(['*', '?', '[']))
        .collect::<Vec<_>>()
        .join("/");
    let start = if literal.is_empty() {
        base.clone()
    } else {
        root.resolve(&base, &literal)?
    };
    let mut found = Vec::new();
    if root.kind(&start)? == Some(EntryKind::Dir) {
        walk(root, &start, &mut |path| {
            let relative = path
                .as_str()
                .strip_prefix(base.as_str())
                .unwrap_or(path.as_str());
            if glob.is_match(relative.trim_start_matches('/')) {
                found.push(path.clone());
            }
        })?;
    }
    found.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    if found.is_empty() && !ignore_missing {
        return Err(RenderError::helm(
            reference,
            "the glob matches no values file",
        ));
    }
    Ok(found)
}

fn walk(root: &Root, dir: &RelPath, visit: &mut dyn FnMut(&RelPath)) -> Result<(), RenderError> {
    for (name, kind) in root.list(dir)? {
        let path = dir.join(&name);
        match kind {
            EntryKind::Dir => walk(root, &path, visit)?,
            EntryKind::File => visit(&path),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_absolute_globs_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "chart/values-a.yaml",
            "chart/values-b.yaml",
            "chart/env/prod.yaml",
            "shared/common.yaml",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "a: 1\n").unwrap();
        }
        let root = Root::open(dir.path(), 1 << 20).unwrap();
        let chart = root.resolve(&RelPath::root(), "chart").unwrap();
        let names = |reference: &str, ignore: bool| -> Vec<String> {
            resolve(&root, &chart, reference, ignore)
                .unwrap()
                .iter()
                .map(|p| p.as_str().to_string())
                .collect()
        };
        assert_eq!(names("values-a.yaml", false), ["chart/values-a.yaml"]);
        assert_eq!(names("/shared/common.yaml", false), ["shared/common.yaml"]);
        assert_eq!(
            names("values-*.yaml", false),
            ["chart/values-a.yaml", "chart/values-b.yaml"]
        );
        assert_eq!(names("**/prod.yaml", false), ["chart/env/prod.yaml"]);
        assert!(names("nope.yaml", true).is_empty());
        assert!(resolve(&root, &chart, "nope.yaml", false).is_err());
        assert!(resolve(&root, &chart, "../../outside.yaml", false).is_err());
        assert!(resolve(&root, &chart, "$values/x.yaml", false).is_err());
    }

    #[test]
    fn references_to_another_sources_checkout() {
        let chart_repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(chart_repo.path().join("chart")).unwrap();
        let values_repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(values_repo.path().join("envs")).unwrap();
        std::fs::write(values_repo.path().join("envs/prod.yaml"), "a: 1\n").unwrap();
        std::fs::write(values_repo.path().join("envs/dev.yaml"), "a: 2\n").unwrap();
        let root = Root::open(chart_repo.path(), 1 << 20).unwrap();
        let chart = root.resolve(&RelPath::root(), "chart").unwrap();
        let refs = BTreeMap::from([("values".to_string(), values_repo.path().to_path_buf())]);
        let read = |reference: &str| read(&root, &chart, reference, false, &refs);
        assert_eq!(
            read("$values/envs/prod.yaml").unwrap(),
            [("$values/envs/prod.yaml".to_string(), b"a: 1\n".to_vec())]
        );
        let names: Vec<String> = read("$values/envs/*.yaml")
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["$values/envs/dev.yaml", "$values/envs/prod.yaml"]);
        let error = |reference: &str| read(reference).unwrap_err().to_string();
        assert!(
            error("$other/envs/prod.yaml").contains("no source of the application has ref: other")
        );
        assert!(
            error("$values/../escape.yaml").contains("leaves the repository root"),
            "{}",
            error("$values/../escape.yaml")
        );
        assert!(error("$values/envs/none.yaml").contains("no such values file"));
    }
}
