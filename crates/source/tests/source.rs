//! Git sources against real repositories made with the git CLI: every kind
//! of revision, snapshots shared and immutable, hostile trees refused or
//! kept inert, coalesced fetches and dead remotes.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use gitplane_source::{Credentials, SnapshotLimits, Sources};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A repository with `main` (two commits), a branch `feature`, a tag `v1`
/// on the first commit; returns (first, second) commits.
fn fixture_repo(dir: &Path) -> (String, String) {
    git(dir, &["init", "-q"]);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("app/cm.yaml"),
        "kind: ConfigMap\nmetadata: {name: one}\n",
    )
    .unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "first"]);
    let first = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["tag", "v1"]);
    git(dir, &["branch", "feature"]);
    std::fs::write(
        dir.join("app/cm.yaml"),
        "kind: ConfigMap\nmetadata: {name: two}\n",
    )
    .unwrap();
    git(dir, &["commit", "-qam", "second"]);
    let second = git(dir, &["rev-parse", "HEAD"]);
    (first, second)
}

fn resolve(sources: &Sources, url: &str, revision: &str) -> Result<String, String> {
    sources
        .resolve(
            url,
            revision,
            &Credentials::default(),
            Duration::ZERO,
            &AtomicBool::new(false),
        )
        .map_err(|e| e.to_string())
}

#[test]
fn every_kind_of_revision_resolves_to_its_commit() {
    let repo = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (first, second) = fixture_repo(repo.path());
    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let path = repo.path().to_str().unwrap();
    let url = format!("file://{path}");
    assert_eq!(resolve(&sources, path, "HEAD").unwrap(), second);
    assert_eq!(resolve(&sources, &url, "").unwrap(), second);
    assert_eq!(resolve(&sources, &url, "main").unwrap(), second);
    assert_eq!(resolve(&sources, &url, "feature").unwrap(), first);
    assert_eq!(resolve(&sources, &url, "v1").unwrap(), first);
    assert_eq!(resolve(&sources, &url, "refs/heads/main").unwrap(), second);
    assert_eq!(resolve(&sources, &url, &first).unwrap(), first);
    let missing = resolve(&sources, &url, "no-such-branch").unwrap_err();
    assert!(missing.contains("no-such-branch"), "{missing}");
}

#[test]
fn a_new_commit_is_seen_once_the_cached_answer_is_old_enough() {
    let repo = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (_, second) = fixture_repo(repo.path());
    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let url = repo.path().to_str().unwrap();
    let never = AtomicBool::new(false);
    let cached = |age| {
        sources
            .resolve(url, "main", &Credentials::default(), age, &never)
            .unwrap()
    };
    assert_eq!(cached(Duration::from_secs(3600)), second);
    std::fs::write(repo.path().join("app/cm.yaml"), "kind: ConfigMap\n").unwrap();
    git(repo.path(), &["commit", "-qam", "third"]);
    let third = git(repo.path(), &["rev-parse", "HEAD"]);
    assert_eq!(
        cached(Duration::from_secs(3600)),
        second,
        "answered from the cache"
    );
    assert_eq!(cached(Duration::ZERO), third, "fetched again");
}

#[test]
fn snapshots_hold_the_tree_of_their_commit_and_are_shared() {
    let repo = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (first, second) = fixture_repo(repo.path());
    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let url = repo.path().to_str().unwrap();
    resolve(&sources, url, "v1").unwrap();
    resolve(&sources, url, "main").unwrap();
    let old = sources.snapshot(url, &first).unwrap();
    let new = sources.snapshot(url, &second).unwrap();
    let read = |dir: &Path| std::fs::read_to_string(dir.join("app/cm.yaml")).unwrap();
    assert!(read(&old.dir).contains("one"));
    assert!(read(&new.dir).contains("two"));
    assert_eq!(
        sources.snapshot(url, &first).unwrap(),
        old,
        "one snapshot per commit"
    );
    assert!(!old.dir.join(".git").exists());

    let keep: HashSet<String> = [second.clone()].into();
    assert_eq!(
        sources.collect_garbage(&keep, Duration::from_secs(3600)),
        0,
        "recently used"
    );
    assert_eq!(sources.collect_garbage(&keep, Duration::ZERO), 1);
    assert!(!old.dir.exists() && new.dir.exists());
}

#[test]
fn symlinks_stay_links_and_big_trees_are_refused() {
    let repo = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join("escape.yaml")).unwrap();
    for i in 0..5 {
        std::fs::write(repo.path().join(format!("f{i}.yaml")), "a: 1\n").unwrap();
    }
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "hostile"]);
    let url = repo.path().to_str().unwrap();

    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let commit = resolve(&sources, url, "HEAD").unwrap();
    let snapshot = sources.snapshot(url, &commit).unwrap();
    let link = snapshot.dir.join("escape.yaml");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/passwd"));

    let small = tempfile::tempdir().unwrap();
    for limits in [
        SnapshotLimits {
            max_files: 3,
            ..SnapshotLimits::default()
        },
        SnapshotLimits {
            max_bytes: 8,
            ..SnapshotLimits::default()
        },
    ] {
        let sources = Sources::new(small.path(), limits).unwrap();
        let commit = resolve(&sources, url, "HEAD").unwrap();
        let refused = sources.snapshot(url, &commit).unwrap_err().to_string();
        assert!(
            refused.contains("allowed") || refused.contains("bytes"),
            "{refused}"
        );
        assert!(
            !small.path().join("snapshots").join(&commit).exists(),
            "nothing half-written"
        );
    }
}

#[test]
fn concurrent_requests_for_one_repository_share_the_answer() {
    let repo = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (_, second) = fixture_repo(repo.path());
    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let url = repo.path().to_str().unwrap();
    let never = AtomicBool::new(false);
    let answers: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let commit = sources
                        .resolve(
                            url,
                            "main",
                            &Credentials::default(),
                            Duration::from_secs(60),
                            &never,
                        )
                        .unwrap();
                    sources.snapshot(url, &commit).unwrap().commit
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|c| *c == second));
    let snapshots = std::fs::read_dir(cache.path().join("snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 1, "one snapshot, no leftovers");
}

#[test]
fn an_unreachable_remote_fails_with_the_url_and_revision() {
    let cache = tempfile::tempdir().unwrap();
    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let error = resolve(&sources, "/nonexistent/repository", "main").unwrap_err();
    assert!(
        error.contains("/nonexistent/repository") && error.contains("main"),
        "{error}"
    );
    let error = resolve(&sources, "https://127.0.0.1:1/repo.git", "main").unwrap_err();
    assert!(error.contains("127.0.0.1:1"), "{error}");
}
