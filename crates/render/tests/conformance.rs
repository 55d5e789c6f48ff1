//! Kustomize conformance: every case under `tests/kustomize/` is built by
//! `kubectl kustomize` (the oracle) and by gitplane, and the outputs must be
//! byte-identical. A case whose build fails in kubectl must fail in gitplane too;
//! such a case holds an `expect-error` file with text gitplane's error must contain.
//!
//! A case may hold a `known-difference` file: a deliberate, documented
//! difference (`kubectl: <text>` and `gitplane: <text>` lines, and `why:`); the
//! kubectl text is replaced by gitplane's before comparing.
//!
//! kubectl is required: without it this test fails rather than skipping, so CI
//! can never pass without having compared anything.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

use std::path::{Path, PathBuf};
use std::process::Command;

use gitplane_render::{RelPath, RenderOptions, Root, render};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kustomize");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/kustomize exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn kubectl_kustomize(dir: &Path) -> Result<String, String> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl is required for the Kustomize conformance suite (it is the oracle); install it");
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("kubectl output is UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn gitplane_render(case: &Path) -> Result<String, String> {
    // The repository root is the case directory's parent, so that cases can also
    // check what happens with paths that leave their own directory.
    let root = Root::open(case.parent().expect("case has a parent"), 64 * 1024 * 1024)
        .map_err(|e| e.to_string())?;
    let rel = root
        .resolve(
            &RelPath::root(),
            case.file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name"),
        )
        .map_err(|e| e.to_string())?;
    let objects = render(&root, &rel, &RenderOptions::default()).map_err(|e| e.to_string())?;
    Ok(gitplane_object::yaml::objects_to_yaml_stream(&objects))
}

#[test]
fn kustomize_output_is_identical_to_kubectl_kustomize() {
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "the suite needs at least 40 cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let expected = kubectl_kustomize(case).map(|out| apply_known_difference(case, out));
        let actual = gitplane_render(case);
        let expect_error = std::fs::read_to_string(case.join("expect-error")).ok();
        match (expected, actual, expect_error) {
            (Ok(want), Ok(got), None) if want == got => {}
            (Ok(want), Ok(got), None) => failures.push(format!(
                "{name}: output differs\n{}",
                first_difference(&want, &got)
            )),
            (Ok(_), Err(e), _) => {
                failures.push(format!("{name}: kubectl succeeded, gitplane failed: {e}"))
            }
            (Err(e), Ok(_), _) => failures.push(format!(
                "{name}: kubectl failed, gitplane succeeded (kubectl: {})",
                e.trim()
            )),
            (Ok(_), Ok(_), Some(_)) => {
                failures.push(format!("{name}: expected an error, both succeeded"))
            }
            (Err(_), Err(e), Some(text)) if e.contains(text.trim()) => {}
            (Err(_), Err(e), Some(text)) => failures.push(format!(
                "{name}: error {e:?} does not contain {:?}",
                text.trim()
            )),
            (Err(k), Err(e), None) => failures.push(format!(
                "{name}: both failed without expect-error\n kubectl: {}\n gitplane: {e}",
                k.trim()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn apply_known_difference(case: &Path, output: String) -> String {
    let Ok(text) = std::fs::read_to_string(case.join("known-difference")) else {
        return output;
    };
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    let (Some(from), Some(to), Some(_why)) =
        (field("kubectl: "), field("gitplane: "), field("why: "))
    else {
        panic!(
            "{}: known-difference needs kubectl:, gitplane: and why: lines",
            case.display()
        );
    };
    assert!(
        output.contains(&from),
        "{}: the known difference no longer appears in kubectl's output",
        case.display()
    );
    output.replace(&from, &to)
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (a, b)) in want.lines().zip(got.lines()).enumerate() {
        if a != b {
            let from = i.saturating_sub(3);
            let context: Vec<&str> = want.lines().skip(from).take(i - from).collect();
            return format!(
                "  at line {}:\n  context: {:?}\n  kubectl:  {a:?}\n  gitplane: {b:?}",
                i + 1,
                context
            );
        }
    }
    format!(
        "  lengths differ: kubectl {} lines, gitplane {} lines",
        want.lines().count(),
        got.lines().count()
    )
}
