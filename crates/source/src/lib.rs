//! Git sources: a repository URL and a revision become an immutable
//! snapshot of the tree at one commit, on disk.
//!
//! - One bare cache repository per URL (under `<cache>/git/`), fetched
//!   shallowly with gix; concurrent requests for the same repository share one
//!   fetch, and a fetch answered less than `max_age` ago is not repeated.
//! - Snapshots are extracted once per commit (under `<cache>/snapshots/`),
//!   shared by every application on that commit, and never modified; unused
//!   ones are garbage-collected.
//! - Repository content is hostile: symlinks are written as symlinks (the
//!   renderer refuses those that leave the snapshot), and a tree with too many
//!   files or bytes is refused.
//!
//! URLs: local paths, `file://`, `https://` (credentials from the caller, as
//! Argo CD's repository Secrets give them) and `ssh://`/scp-style (a private
//! key from the caller, used through the `ssh` program as git does).
//!
//! Helm chart repositories are sources too ([`charts`]): a chart and a
//! version become an archive in the cache, pulled once per digest.

pub mod charts;
mod oci;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use sha2::{Digest, Sha256};

/// Refusals for hostile trees.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotLimits {
    /// Files (and symlinks) in a tree.
    pub max_files: usize,
    /// Bytes of file content in a tree.
    pub max_bytes: u64,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        SnapshotLimits {
            max_files: 100_000,
            max_bytes: 1 << 30,
        }
    }
}

/// Credentials for a repository (from an Argo CD repository Secret).
/// Printed with `{:?}`, secrets show as `<redacted>`.
#[derive(Clone, Default)]
pub struct Credentials {
    /// HTTPS user name.
    pub username: Option<String>,
    /// HTTPS password or token.
    pub password: Option<String>,
    /// SSH private key (PEM).
    pub ssh_private_key: Option<String>,
    /// Accept any server certificate (Argo CD's `insecure`); Helm
    /// repositories and OCI registries.
    pub insecure: bool,
    /// PEM certificates trusted besides the system's (Argo CD's
    /// `argocd-tls-certs-cm` entry for the host); Helm repositories and
    /// OCI registries.
    pub ca_certs: Option<String>,
    /// PEM client certificate and its key (Argo CD's `tlsClientCertData`
    /// and `tlsClientCertKey`); Helm repositories and OCI registries.
    pub client_cert: Option<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |present: bool| if present { "<redacted>" } else { "none" };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &secret(self.password.is_some()))
            .field("ssh_private_key", &secret(self.ssh_private_key.is_some()))
            .field("insecure", &self.insecure)
            .field("ca_certs", &self.ca_certs.is_some())
            .field("client_cert", &secret(self.client_cert.is_some()))
            .finish()
    }
}

impl Credentials {
    /// The same TLS settings, without the user name, password and key
    /// (what is sent to a host other than the repository's).
    pub fn tls_only(&self) -> Credentials {
        Credentials {
            insecure: self.insecure,
            ca_certs: self.ca_certs.clone(),
            client_cert: self.client_cert.clone(),
            ..Credentials::default()
        }
    }
}

/// What can go wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// Fetching failed (unreachable, unknown revision, refused credentials).
    #[error("fetching {url} at {revision}: {message}")]
    Fetch {
        /// The repository.
        url: String,
        /// The revision asked for.
        revision: String,
        /// Why.
        message: String,
    },
    /// The tree could not be written out, or is too big.
    #[error("snapshot of {commit}: {message}")]
    Snapshot {
        /// The commit.
        commit: String,
        /// Why.
        message: String,
    },
}

/// A revision resolved to a commit, and its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The commit SHA.
    pub commit: String,
    /// The directory holding the tree (do not modify).
    pub dir: PathBuf,
}

/// Per repository: serializes its fetches, and remembers what they resolved.
#[derive(Default)]
struct RepoState {
    resolved: HashMap<String, (String, Instant)>,
}

/// The Git cache shared by every application.
pub struct Sources {
    dir: PathBuf,
    limits: SnapshotLimits,
    repos: Mutex<HashMap<String, Arc<Mutex<RepoState>>>>,
    /// Snapshots being written (so two writers of one commit do not collide).
    writing: Mutex<HashSet<String>>,
    /// Helm repository indexes, by URL, with when they were fetched.
    indexes: Mutex<HashMap<String, (Instant, serde_json::Value)>>,
    /// Charts pulled from OCI registries, by repository, chart and
    /// version asked, with when their tag was resolved.
    oci_pulls: Mutex<HashMap<String, (Instant, charts::PulledChart)>>,
}

fn fetch_error(url: &str, revision: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Fetch {
        url: url.to_string(),
        revision: revision.to_string(),
        message: e.to_string(),
    }
}

fn snapshot_error(commit: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Snapshot {
        commit: commit.to_string(),
        message: e.to_string(),
    }
}

/// A short, filesystem-safe name for a URL.
fn url_key(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    format!("{:x}", digest)[..24].to_string()
}

/// Whether a revision is a full commit SHA.
fn is_sha(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Local paths become `file://` URLs.
fn normalize_url(url: &str) -> String {
    if url.starts_with('/') {
        format!("file://{url}")
    } else {
        url.to_string()
    }
}

impl Sources {
    /// A cache in `dir` (created if missing).
    pub fn new(dir: &Path, limits: SnapshotLimits) -> Result<Self, SourceError> {
        for sub in ["git", "snapshots"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| snapshot_error("-", format!("{}: {e}", dir.display())))?;
        }
        Ok(Sources {
            dir: dir.to_path_buf(),
            limits,
            repos: Mutex::default(),
            writing: Mutex::default(),
            indexes: Mutex::default(),
            oci_pulls: Mutex::default(),
        })
    }

    fn repo_state(&self, url: &str) -> Arc<Mutex<RepoState>> {
        self.repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(url.to_string())
            .or_default()
            .clone()
    }

    /// Forgets what was resolved for the repositories whose URL `matches`
    /// (a webhook said they changed): the next resolve fetches.
    pub fn invalidate(&self, matches: &dyn Fn(&str) -> bool) {
        let repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        for (url, state) in repos.iter() {
            if matches(url) {
                state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .resolved
                    .clear();
            }
        }
    }

    /// Resolves `revision` (branch, tag, full SHA or `HEAD`) of `url` to a
    /// commit, fetching unless a fetch less than `max_age` ago resolved it.
    /// Blocking; `interrupt` stops a running fetch.
    pub fn resolve(
        &self,
        url: &str,
        revision: &str,
        credentials: &Credentials,
        max_age: Duration,
        interrupt: &AtomicBool,
    ) -> Result<String, SourceError> {
        let url = normalize_url(url);
        let revision = if revision.is_empty() {
            "HEAD"
        } else {
            revision
        };
        let state = self.repo_state(&url);
        // Concurrent callers for this repository wait here and then find the
        // answer the first one fetched.
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((commit, at)) = state.resolved.get(revision)
            && (at.elapsed() < max_age || is_sha(revision))
        {
            return Ok(commit.clone());
        }
        let started = Instant::now();
        let commit = self.fetch(&url, revision, credentials, interrupt)?;
        tracing::debug!(
            "fetched {url} {revision} -> {commit} in {:?}",
            started.elapsed()
        );
        state
            .resolved
            .insert(revision.to_string(), (commit.clone(), Instant::now()));
        Ok(commit)
    }

    fn fetch(
        &self,
        url: &str,
        revision: &str,
        credentials: &Credentials,
        interrupt: &AtomicBool,
    ) -> Result<String, SourceError> {
        let fail = |e: &dyn std::fmt::Display| fetch_error(url, revision, e);
        let path = self.dir.join("git").join(url_key(url));
        let repo = if path.join("HEAD").exists() {
            gix::open(&path).map_err(|e| fail(&e))?
        } else {
            gix::init_bare(&path).map_err(|e| fail(&e))?
        };
        if is_sha(revision)
            && repo
                .find_commit(gix::ObjectId::from_hex(revision.as_bytes()).map_err(|e| fail(&e))?)
                .is_ok()
        {
            return Ok(revision.to_string());
        }
        let key_file = self.ssh_key_file(url, credentials)?;
        let repo = with_ssh_key(repo, key_file.as_deref()).map_err(|e| fail(&e))?;
        let specs = refspecs(revision);
        let remote = repo
            .remote_at(url)
            .map_err(|e| fail(&e))?
            .with_fetch_tags(gix::remote::fetch::Tags::None)
            .with_refspecs(
                specs.iter().map(String::as_str),
                gix::remote::Direction::Fetch,
            )
            .map_err(|e| fail(&e))?;
        let mut connection = remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(|e| fail(&e))?;
        if credentials.username.is_some() || credentials.password.is_some() {
            let (user, pass) = (
                credentials.username.clone().unwrap_or_default(),
                credentials.password.clone().unwrap_or_default(),
            );
            connection = connection.with_credentials(move |action| match action {
                gix::credentials::helper::Action::Get(ctx) => {
                    Ok(Some(gix::credentials::protocol::Outcome {
                        identity: gix::sec::identity::Account {
                            username: user.clone(),
                            password: pass.clone(),
                            oauth_refresh_token: None,
                        },
                        next: ctx.into(),
                    }))
                }
                _ => Ok(None),
            });
        }
        let outcome = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| fail(&e))?
            .with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(NonZeroU32::MIN))
            .receive(gix::progress::Discard, interrupt)
            .map_err(|e| fail(&e))?;
        drop(outcome);
        let repo = gix::open(&path).map_err(|e| fail(&e))?;
        resolve_local(&repo, revision).ok_or_else(|| {
            fail(&format!(
                "no branch, tag or commit {revision:?} in the repository"
            ))
        })
    }

    /// Writes an SSH key to a private file for `ssh -i`.
    fn ssh_key_file(
        &self,
        url: &str,
        credentials: &Credentials,
    ) -> Result<Option<PathBuf>, SourceError> {
        let Some(key) = &credentials.ssh_private_key else {
            return Ok(None);
        };
        let path = self.dir.join("git").join(format!("{}.key", url_key(url)));
        write_private(&path, key).map_err(|e| fetch_error(url, "-", e))?;
        Ok(Some(path))
    }

    /// The snapshot of a commit of `url` (fetched by [`Sources::resolve`]),
    /// extracted on first use.
    pub fn snapshot(&self, url: &str, commit: &str) -> Result<Snapshot, SourceError> {
        let url = normalize_url(url);
        let dir = self.dir.join("snapshots").join(commit);
        if dir.exists() {
            touch(&dir);
            return Ok(Snapshot {
                commit: commit.to_string(),
                dir,
            });
        }
        // One writer per commit; others wait for it. The existence check is
        // made while holding the lock, so a writer that finished between a
        // waiter's check and its turn is seen and not repeated.
        loop {
            let mut writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
            if dir.exists() {
                return Ok(Snapshot {
                    commit: commit.to_string(),
                    dir,
                });
            }
            if writing.insert(commit.to_string()) {
                break;
            }
            drop(writing);
            std::thread::sleep(Duration::from_millis(10));
        }
        let result = self.extract(&url, commit, &dir);
        self.writing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(commit);
        result.map(|()| Snapshot {
            commit: commit.to_string(),
            dir,
        })
    }

    fn extract(&self, url: &str, commit: &str, dir: &Path) -> Result<(), SourceError> {
        let fail = |e: &dyn std::fmt::Display| snapshot_error(commit, e);
        let repo = gix::open(self.dir.join("git").join(url_key(url))).map_err(|e| fail(&e))?;
        let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| fail(&e))?;
        let tree = repo
            .find_commit(id)
            .map_err(|e| fail(&e))?
            .tree()
            .map_err(|e| fail(&e))?;
        let mut recorder = gix::traverse::tree::Recorder::default();
        tree.traverse()
            .breadthfirst(&mut recorder)
            .map_err(|e| fail(&e))?;
        let files = recorder
            .records
            .iter()
            .filter(|e| !e.mode.is_tree())
            .count();
        if files > self.limits.max_files {
            return Err(fail(&format!(
                "{files} files; at most {} are allowed",
                self.limits.max_files
            )));
        }
        let temporary = dir.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&temporary);
        std::fs::create_dir_all(&temporary).map_err(|e| fail(&e))?;
        let mut bytes = 0u64;
        for entry in &recorder.records {
            let relative = entry.filepath.to_str().map_err(|e| fail(&e))?;
            if relative
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c == ".git")
            {
                continue;
            }
            let target = temporary.join(relative);
            if entry.mode.is_tree() {
                std::fs::create_dir_all(&target).map_err(|e| fail(&e))?;
                continue;
            }
            if entry.mode.is_commit() {
                continue; // submodules are not fetched
            }
            let data = repo
                .find_object(entry.oid)
                .map_err(|e| fail(&e))?
                .detach()
                .data;
            bytes += data.len() as u64;
            if bytes > self.limits.max_bytes {
                let _ = std::fs::remove_dir_all(&temporary);
                return Err(fail(&format!("more than {} bytes", self.limits.max_bytes)));
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| fail(&e))?;
            }
            if entry.mode.is_link() {
                let link = data.to_str().map_err(|e| fail(&e))?;
                std::os::unix::fs::symlink(link, &target).map_err(|e| fail(&e))?;
            } else {
                std::fs::write(&target, &data).map_err(|e| fail(&e))?;
            }
        }
        if let Err(error) = std::fs::rename(&temporary, dir) {
            let _ = std::fs::remove_dir_all(&temporary);
            // Another gitplane process sharing the cache extracted it first.
            if !dir.exists() {
                return Err(fail(&error));
            }
        }
        Ok(())
    }

    /// Removes snapshots not in `keep` and not used for `unused_for`.
    pub fn collect_garbage(&self, keep: &HashSet<String>, unused_for: Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(self.dir.join("snapshots")) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > unused_for);
            if !keep.contains(&name) && old && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// Marks a snapshot as used now (for garbage collection).
fn touch(dir: &Path) {
    if let Ok(file) = std::fs::File::open(dir) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// The refspecs that fetch a revision into refs this cache can resolve.
fn refspecs(revision: &str) -> Vec<String> {
    if revision == "HEAD" {
        vec!["+HEAD:refs/remotes/origin/HEAD".into()]
    } else if is_sha(revision) {
        vec![format!("+{revision}:refs/gitplane/{revision}")]
    } else if let Some(name) = revision.strip_prefix("refs/") {
        vec![format!("+refs/{name}:refs/gitplane/{name}")]
    } else {
        vec![
            format!("+refs/heads/{revision}:refs/remotes/origin/{revision}"),
            format!("+refs/tags/{revision}:refs/tags/{revision}"),
        ]
    }
}

/// A fetched revision's commit.
fn resolve_local(repo: &gix::Repository, revision: &str) -> Option<String> {
    let candidates: Vec<String> = if revision == "HEAD" {
        vec!["refs/remotes/origin/HEAD".into()]
    } else if is_sha(revision) {
        vec![revision.to_string()]
    } else if let Some(name) = revision.strip_prefix("refs/") {
        vec![format!("refs/gitplane/{name}")]
    } else {
        vec![
            format!("refs/remotes/origin/{revision}"),
            format!("refs/tags/{revision}"),
        ]
    };
    candidates.iter().find_map(|spec| {
        repo.rev_parse_single(format!("{spec}^{{commit}}").as_str())
            .ok()
            .map(|id| id.detach().to_string())
    })
}

/// Points the repository's `ssh` at a key file (`core.sshCommand`).
fn with_ssh_key(repo: gix::Repository, key: Option<&Path>) -> Result<gix::Repository, String> {
    let Some(key) = key else { return Ok(repo) };
    let mut repo = repo;
    let command = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        key.display()
    );
    let mut config = repo.config_snapshot_mut();
    config
        .set_raw_value("core.sshCommand", command.as_str())
        .map_err(|e| e.to_string())?;
    config.commit().map_err(|e| e.to_string())?;
    Ok(repo)
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())
}
