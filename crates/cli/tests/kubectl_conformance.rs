#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! Runs `kubectl_conformance.sh`: the real kubectl against `gitplane apiserver`.

use std::process::Command;

#[test]
fn real_kubectl_drives_the_embedded_api_server() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kubectl_conformance.sh");
    let output = Command::new("bash")
        .arg(script)
        .env("GITPLANE", env!("CARGO_BIN_EXE_gitplane"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kubectl conformance failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("all kubectl conformance checks passed"),
        "{stdout}"
    );
}
