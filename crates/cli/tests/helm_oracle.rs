//! The real `helm` (4.1.4) as the oracle: gitplane's fixture charts
//! rendered by `helm template` and by `gitplane helm template` with the same
//! arguments must print the same bytes (and, for bad input, the same error
//! after Helm's `Error: ` prefix). The oracle is installed by
//! `scripts/oracle/helm.sh` (CI's `.ci/run` runs it); without it this suite
//! fails, never skips.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The pinned helm, installed by scripts/oracle/helm.sh.
fn oracle() -> PathBuf {
    let helm = common::repo_root().join("target/oracle/helm-4.1.4/helm");
    assert!(
        helm.is_file(),
        "{} is missing: helm 4.1.4 is the oracle of this suite; run scripts/oracle/helm.sh (.ci/run does)",
        helm.display()
    );
    helm
}

fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("HELM_CACHE_HOME", dir.join(".oracle-cache"))
        .env("HELM_CONFIG_HOME", dir.join(".oracle-config"))
        .env("HELM_DATA_HOME", dir.join(".oracle-data"))
        .output()
        .unwrap()
}

/// Renders `chart` with both and compares; returns helm's stdout.
fn same_as_helm(chart: &str, args: &[&str]) -> String {
    let work = tempfile::tempdir().unwrap();
    let source = common::repo_root()
        .join("crates/render/tests/helm/charts")
        .join(chart);
    let dir = work.path().join(chart);
    common::copy_dir(&source, &dir);
    let mut helm_args = vec!["template"];
    helm_args.extend(args);
    let helm = run(&oracle(), &helm_args, &dir);
    let mut ours_args = vec!["helm", "template"];
    ours_args.extend(args);
    let ours = run(Path::new(env!("CARGO_BIN_EXE_gitplane")), &ours_args, &dir);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(
        helm.status.success(),
        ours.status.success(),
        "{chart} {args:?}: helm says {}, gitplane says {}",
        text(&helm.stderr),
        text(&ours.stderr)
    );
    if helm.status.success() {
        assert_eq!(text(&ours.stdout), text(&helm.stdout), "{chart} {args:?}");
        return text(&helm.stdout);
    }
    // Helm 4 may log before its `Error: ` line, and adds a hint after
    // template errors; the error is between.
    let helm_error = text(&helm.stderr);
    let helm_error = helm_error
        .split_once("Error: ")
        .map_or(helm_error.as_str(), |(_, error)| error)
        .trim()
        .trim_end_matches("Use --debug flag to render out invalid YAML")
        .trim();
    let our_error = text(&ours.stderr);
    let our_error = our_error.trim().trim_start_matches("error: ");
    assert!(
        our_error.ends_with(helm_error) || helm_error.ends_with(our_error),
        "{chart} {args:?}:\nhelm:     {helm_error}\ngitplane: {our_error}"
    );
    String::new()
}

#[test]
fn the_fixture_charts_render_as_helm_renders_them() {
    let cases: &[(&str, &[&str])] = &[
        ("web", &["rel", "."]),
        (
            "web",
            &[
                "demo",
                ".",
                "--set",
                "replicaCount=3",
                "--set",
                "image.tag=1.0",
                "--include-crds",
            ],
        ),
        (
            "web",
            &["rel", ".", "-f", "extra.yaml", "--namespace", "team-a"],
        ),
        (
            "web",
            &[
                "rel",
                ".",
                "--kube-version",
                "1.31.2-gke.7",
                "--no-hooks",
                "--set-string",
                "replicaCount=5",
            ],
        ),
        (
            "web",
            &[
                "rel",
                ".",
                "--set",
                "cache.enabled=false",
                "-a",
                "example.com/v1",
                "--skip-tests",
            ],
        ),
        ("web", common::HELM_FLAG_ARGS),
        ("imports", &["x", "."]),
        ("encodings", &["rel", "."]),
        ("encodings", &["rel", ".", "--include-crds"]),
    ];
    for (chart, args) in cases {
        assert!(!same_as_helm(chart, args).is_empty(), "{chart} {args:?}");
    }
}

#[test]
fn bad_input_fails_with_helms_words() {
    let cases: &[&[&str]] = &[
        &["rel", ".", "--kube-version", "1.24.0"],
        &["Bad_Name", "."],
        &[
            "rel",
            ".",
            "--set",
            "replicaCount=3",
            "-s",
            "templates/nope.yaml",
        ],
        &["rel", ".", "--set", "service.port=0"],
    ];
    for args in cases {
        assert!(same_as_helm("web", args).is_empty(), "{args:?} should fail");
    }
}
