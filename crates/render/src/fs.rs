//! File access confined to a repository root.
//!
//! Git content is hostile input: a kustomization may name `../../etc/passwd`, an
//! absolute path, or a symlink to `/var/run/secrets`. Every path goes through
//! [`Root`], which resolves it lexically, then follows symlinks on disk and refuses
//! anything whose real location is outside the root (Argo CD CVE-2022-24904,
//! Flux CVE-2022-24877). Files are read with a size limit.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::RenderError;

/// A path inside the root, normalized, with `/` separators; empty for the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RelPath(String);

impl RelPath {
    /// The root itself.
    pub fn root() -> Self {
        RelPath(String::new())
    }

    /// The path as a string (empty for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For messages: `.` for the root.
    pub fn display(&self) -> &str {
        if self.0.is_empty() { "." } else { &self.0 }
    }

    /// A child entry.
    pub fn join(&self, name: &str) -> RelPath {
        if self.0.is_empty() {
            RelPath(name.to_string())
        } else {
            RelPath(format!("{}/{name}", self.0))
        }
    }

    /// The parent directory (the root's parent is the root).
    pub fn parent(&self) -> RelPath {
        match self.0.rsplit_once('/') {
            Some((parent, _)) => RelPath(parent.to_string()),
            None => RelPath::root(),
        }
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// True if `self` is `dir` or inside it.
    pub fn is_within(&self, dir: &RelPath) -> bool {
        dir.0.is_empty() || self.0 == dir.0 || self.0.starts_with(&format!("{}/", dir.0))
    }
}

/// What a path is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (possibly through a symlink that stays inside the root).
    File,
    /// A directory (same).
    Dir,
}

/// The repository root all reads are confined to.
#[derive(Debug, Clone)]
pub struct Root {
    real: PathBuf,
    max_file_bytes: u64,
    /// Directories already checked to be real directories inside the root
    /// (reached without symlinks), so each is checked once.
    checked_dirs: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Root {
    /// Opens a root directory. `max_file_bytes` bounds every file read.
    pub fn open(path: &Path, max_file_bytes: u64) -> Result<Self, RenderError> {
        let real = fs::canonicalize(path).map_err(|e| RenderError::Io {
            path: path.display().to_string(),
            reason: io_reason(&e),
        })?;
        if !real.is_dir() {
            return Err(RenderError::Io {
                path: path.display().to_string(),
                reason: "not a directory".into(),
            });
        }
        Ok(Root {
            real,
            max_file_bytes,
            checked_dirs: Default::default(),
        })
    }

    /// The root's real path on disk.
    pub fn path(&self) -> &Path {
        &self.real
    }

    /// The largest file read.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Resolves `reference` (as written in a file under `base`) to a path inside
    /// the root, lexically. Absolute paths and `..` beyond the root are refused.
    pub fn resolve(&self, base: &RelPath, reference: &str) -> Result<RelPath, RenderError> {
        let escape = |reason: &str| RenderError::PathEscape {
            path: reference.to_string(),
            reason: reason.to_string(),
        };
        let path = Path::new(reference);
        if path.is_absolute() || reference.starts_with('\\') {
            return Err(escape("absolute paths are not allowed"));
        }
        let mut parts: Vec<String> = base
            .0
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        for component in path.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Err(escape("it leaves the repository root"));
                    }
                }
                Component::Normal(name) => {
                    let name = name
                        .to_str()
                        .ok_or_else(|| escape("it is not valid UTF-8"))?;
                    parts.push(name.to_string());
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(escape("absolute paths are not allowed"));
                }
            }
        }
        Ok(RelPath(parts.join("/")))
    }

    /// What `rel` is, following symlinks, or `None` if it does not exist.
    /// A symlink anywhere on the way that leads outside the root is refused.
    pub fn kind(&self, rel: &RelPath) -> Result<Option<EntryKind>, RenderError> {
        // Fast path: walk the components with lstat, trusting directories
        // already checked; any symlink sends the path to the careful check.
        let mut prefix = String::new();
        let components: Vec<&str> = rel.0.split('/').filter(|c| !c.is_empty()).collect();
        for (i, component) in components.iter().enumerate() {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            let last = i + 1 == components.len();
            if !last && self.is_checked_dir(&prefix) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(self.real.join(&prefix)) else {
                return Ok(None);
            };
            let file_type = meta.file_type();
            if file_type.is_symlink() {
                return self.kind_through_symlinks(rel);
            }
            if file_type.is_dir() {
                self.mark_checked_dir(&prefix);
                if last {
                    return Ok(Some(EntryKind::Dir));
                }
            } else if last && file_type.is_file() {
                return Ok(Some(EntryKind::File));
            } else {
                return Ok(None);
            }
        }
        Ok(Some(EntryKind::Dir))
    }

    fn is_checked_dir(&self, rel: &str) -> bool {
        self.checked_dirs
            .lock()
            .is_ok_and(|dirs| dirs.contains(rel))
    }

    fn mark_checked_dir(&self, rel: &str) {
        if let Ok(mut dirs) = self.checked_dirs.lock() {
            dirs.insert(rel.to_string());
        }
    }

    /// Resolves every symlink on the way and checks where the path really is.
    fn kind_through_symlinks(&self, rel: &RelPath) -> Result<Option<EntryKind>, RenderError> {
        let on_disk = self.real.join(&rel.0);
        let Ok(real) = fs::canonicalize(&on_disk) else {
            return match fs::symlink_metadata(&on_disk) {
                // A dangling symlink: say so rather than "not found".
                Ok(m) if m.file_type().is_symlink() => Err(RenderError::PathEscape {
                    path: rel.display().into(),
                    reason: "it is a symlink to nothing".into(),
                }),
                _ => Ok(None),
            };
        };
        if !real.starts_with(&self.real) {
            return Err(RenderError::PathEscape {
                path: rel.display().to_string(),
                reason: "it is a symlink that points outside the repository".into(),
            });
        }
        let meta = fs::metadata(&real).map_err(|e| RenderError::Io {
            path: rel.display().into(),
            reason: io_reason(&e),
        })?;
        Ok(if meta.is_dir() {
            Some(EntryKind::Dir)
        } else if meta.is_file() {
            Some(EntryKind::File)
        } else {
            None
        })
    }

    /// Reads a file inside the root, refusing symlink escapes and oversized files.
    pub fn read(&self, rel: &RelPath) -> Result<Vec<u8>, RenderError> {
        match self.kind(rel)? {
            Some(EntryKind::File) => {}
            Some(EntryKind::Dir) => {
                return Err(RenderError::Io {
                    path: rel.display().into(),
                    reason: "is a directory, expected a file".into(),
                });
            }
            None => {
                return Err(RenderError::Io {
                    path: rel.display().into(),
                    reason: "no such file".into(),
                });
            }
        }
        let io = |e: std::io::Error| RenderError::Io {
            path: rel.display().into(),
            reason: io_reason(&e),
        };
        let file = fs::File::open(self.real.join(&rel.0)).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(self.max_file_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > self.max_file_bytes {
            return Err(RenderError::Io {
                path: rel.display().into(),
                reason: format!(
                    "file is larger than the limit of {} bytes",
                    self.max_file_bytes
                ),
            });
        }
        Ok(bytes)
    }

    /// The entries of a directory, sorted by name, each with its kind. Entries
    /// that are symlinks leading outside the root are refused.
    pub fn list(&self, rel: &RelPath) -> Result<Vec<(String, EntryKind)>, RenderError> {
        let io = |e: std::io::Error| RenderError::Io {
            path: rel.display().into(),
            reason: io_reason(&e),
        };
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(self.real.join(&rel.0)).map_err(io)? {
            let entry = entry.map_err(io)?;
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(_) => {
                    return Err(RenderError::Io {
                        path: rel.display().into(),
                        reason: "contains a file name that is not UTF-8".into(),
                    });
                }
            }
        }
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(kind) = self.kind(&rel.join(&name))? {
                out.push((name, kind));
            }
        }
        Ok(out)
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("repo/app")).unwrap();
        fs::write(dir.path().join("repo/app/a.yaml"), "x").unwrap();
        fs::write(dir.path().join("outside.yaml"), "secret").unwrap();
        let root = Root::open(&dir.path().join("repo"), 1024).unwrap();
        (dir, root)
    }

    #[test]
    fn resolves_inside_and_refuses_escapes() {
        let (_d, root) = root();
        let base = RelPath("app".into());
        assert_eq!(
            root.resolve(&base, "./a.yaml").unwrap().as_str(),
            "app/a.yaml"
        );
        assert_eq!(
            root.resolve(&base, "../app/a.yaml").unwrap().as_str(),
            "app/a.yaml"
        );
        assert!(matches!(
            root.resolve(&base, "../../outside.yaml"),
            Err(RenderError::PathEscape { .. })
        ));
        assert!(matches!(
            root.resolve(&base, "/etc/passwd"),
            Err(RenderError::PathEscape { .. })
        ));
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused_without_leaking_content() {
        let (d, root) = root();
        std::os::unix::fs::symlink(
            d.path().join("outside.yaml"),
            d.path().join("repo/app/link.yaml"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("repo/app/etc")).unwrap();
        let rel = root.resolve(&RelPath("app".into()), "link.yaml").unwrap();
        let err = root.read(&rel).unwrap_err();
        assert!(matches!(err, RenderError::PathEscape { .. }));
        assert!(!err.to_string().contains("secret"));
        let err = root.list(&RelPath("app".into())).unwrap_err();
        assert!(matches!(err, RenderError::PathEscape { .. }), "{err}");
    }

    #[test]
    fn symlinks_inside_the_root_work() {
        let (d, root) = root();
        std::os::unix::fs::symlink("a.yaml", d.path().join("repo/app/b.yaml")).unwrap();
        assert_eq!(root.read(&RelPath("app/b.yaml".into())).unwrap(), b"x");
    }

    #[test]
    fn size_limit() {
        let (d, root) = root();
        fs::write(d.path().join("repo/big.yaml"), vec![b'a'; 2000]).unwrap();
        let err = root.read(&RelPath("big.yaml".into())).unwrap_err();
        assert!(err.to_string().contains("larger than the limit"), "{err}");
    }
}
