//! `gitplane-render`: Kubernetes manifests from a directory tree.
//!
//! Input is a repository root and a path inside it; output is the list of
//! [`Object`]s the path stands for. A path is rendered as:
//! - a **Kustomization** when it holds `kustomization.yaml`, `kustomization.yml`
//!   or `Kustomization` ([`kustomize`]), with output identical to
//!   `kubectl kustomize`;
//! - a **Helm chart** when it holds `Chart.yaml` ([`helm`]), as
//!   `helm template` (Helm 4.1.4) renders it;
//! - a **plain directory** otherwise ([`directory`]), with Argo CD's
//!   `directory` options;
//! - a single manifest file when it is a file.
//!
//! Rendering is a pure function of the files: no network, no process, no host
//! environment. Every file is read through [`fs::Root`], which refuses paths and
//! symlinks that leave the root. Start with [`render`].

pub mod directory;
mod error;
pub mod fs;
pub mod helm;
pub mod kustomize;
pub mod synthetic;

use gitplane_object::{LoadOptions, Object, Syntax, load_objects};

pub use directory::DirectoryOptions;
pub use error::RenderError;
pub use fs::{RelPath, Root};
pub use helm::HelmOptions;
pub use kustomize::KustomizeOptions;

/// How to render.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// YAML limits for every file read.
    pub load: LoadOptions,
    /// Options for plain directories.
    pub directory: DirectoryOptions,
    /// Options applied on top of a kustomization (Argo CD's `kustomize` source options).
    pub kustomize: KustomizeOptions,
    /// Options for Helm charts (Argo CD's `helm` source options).
    pub helm: HelmOptions,
    /// Pulls the charts kustomize's `helmCharts` name with a `repo` and
    /// that are not in the repository; without one they must be there.
    pub chart_puller: Option<ChartPuller>,
}

/// Pulls `chart` at `version` (exact, a range, or empty for the latest)
/// from the Helm repository or OCI registry `repo`: the archive's path.
pub type ChartPullFn = dyn Fn(&str, &str, &str) -> Result<std::path::PathBuf, String> + Send + Sync;

/// A [`ChartPullFn`] in the options.
pub type ChartPuller = Callback<ChartPullFn>;

/// A function given to the renderer (equal only to itself, shown by
/// name only, so options holding one stay comparable and printable).
pub struct Callback<F: ?Sized>(pub std::sync::Arc<F>);

impl<F: ?Sized> Clone for Callback<F> {
    fn clone(&self) -> Self {
        Callback(self.0.clone())
    }
}

impl<F: ?Sized> std::fmt::Debug for Callback<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callback")
    }
}

impl<F: ?Sized> PartialEq for Callback<F> {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<F: ?Sized> Eq for Callback<F> {}

/// What kind of source a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A directory with a kustomization file.
    Kustomize,
    /// A directory with `Chart.yaml`, or a `.tgz` archive (a Helm chart).
    Helm,
    /// A directory of manifest files.
    Directory,
    /// One manifest file.
    File,
}

/// Decides how `path` will be rendered.
pub fn detect_source(root: &Root, path: &RelPath) -> Result<SourceKind, RenderError> {
    match root.kind(path)? {
        Some(fs::EntryKind::File) if path.as_str().ends_with(".tgz") => Ok(SourceKind::Helm),
        Some(fs::EntryKind::File) => Ok(SourceKind::File),
        Some(fs::EntryKind::Dir) if helm::chart::is_chart(root, path)? => Ok(SourceKind::Helm),
        Some(fs::EntryKind::Dir) if kustomize::find_kustomization_file(root, path)?.is_some() => {
            Ok(SourceKind::Kustomize)
        }
        Some(fs::EntryKind::Dir) => Ok(SourceKind::Directory),
        None => Err(RenderError::Io {
            path: path.display().to_string(),
            reason: "no such file or directory".into(),
        }),
    }
}

/// Renders `path` inside `root` into objects.
pub fn render(
    root: &Root,
    path: &RelPath,
    options: &RenderOptions,
) -> Result<Vec<Object>, RenderError> {
    render_with_notes(root, path, options).map(|rendered| rendered.objects)
}

/// What [`render_with_notes`] made.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The objects.
    pub objects: Vec<Object>,
    /// Where the output differs from the reference tool's by design (a
    /// Helm template calling a random function), one sentence each.
    pub notes: Vec<String>,
}

/// Renders `path` inside `root`: the objects, and notes on them.
pub fn render_with_notes(
    root: &Root,
    path: &RelPath,
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let objects = match detect_source(root, path)? {
        SourceKind::Kustomize => kustomize::build(root, path, options)?,
        SourceKind::Helm => {
            let (objects, notes) = helm::render_chart(root, path, &options.helm)?;
            return Ok(Rendered { objects, notes });
        }
        SourceKind::Directory => directory::render_directory(root, path, options)?,
        SourceKind::File => {
            let bytes = root.read(path)?;
            load_objects(
                &bytes,
                path.as_str(),
                Syntax::from_file_name(path.as_str()),
                &options.load,
            )?
        }
    };
    Ok(Rendered {
        objects,
        notes: Vec::new(),
    })
}
