//! What the CLI's end-to-end tests share: starting `gitplane apiserver` and
//! running the binary.

#![allow(dead_code)] // each test binary uses part of it

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// A `gitplane apiserver` child process, killed when dropped.
pub struct ApiServer {
    pub child: Child,
    pub address: String,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on a free loopback port and waits until it serves.
pub fn start_apiserver(data: &Path, simulate: bool) -> ApiServer {
    start_apiserver_with(data, simulate, &[])
}

/// [`start_apiserver`] with more arguments.
pub fn start_apiserver_with(data: &Path, simulate: bool, extra: &[&str]) -> ApiServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitplane"));
    command
        .args(["apiserver", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra);
    if !simulate {
        command.arg("--no-simulate");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("gitplane starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let serving = lines.next().expect("a first line").expect("text");
    let address = serving
        .rsplit("https://")
        .next()
        .expect("an address")
        .trim()
        .to_string();
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ApiServer { child, address }
}

/// Runs `git` in `dir` (as a fixed committer) and returns its trimmed
/// stdout; a failure fails the test.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

/// Runs the binary to completion.
pub fn gitplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(args)
        .output()
        .expect("gitplane runs")
}

/// The repository's root.
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("root")
}

/// Runs kubectl against `kubeconfig`, with `stdin` piped in; whether it
/// succeeded, and stdout then stderr.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.unwrap_or("").as_bytes())
            .expect("kubectl reads stdin");
    }
    let out = child.wait_with_output().expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `helm template` arguments exercising every value flag and
/// `--show-only`, for the fixture chart `web` (helm 4.1.4 printed
/// `crates/render/tests/helm/expected/cli-flags.yaml` for them).
pub const HELM_FLAG_ARGS: &[&str] = &[
    "rel",
    ".",
    "--set-json",
    r#"podAnnotations={"example.com/owner":"team-a","n":1}"#,
    "--set-json",
    r#"extraEnv=[{"name":"J","value":"1e6"}],service.port=9000"#,
    "--set",
    "replicaCount=4",
    "--set-file",
    "podAnnotations.motd=files/motd.txt",
    "--set-literal",
    r"podAnnotations.raw=a,b\c=d",
    "--set-json",
    r#"{"resources":{"limits":{"cpu":2}}}"#,
    "--skip-crds",
    "--show-only",
    "templates/deployment.yaml",
    "--show-only",
    "templates/s*",
];
