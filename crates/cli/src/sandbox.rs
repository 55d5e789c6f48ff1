//! Evaluating untrusted jq expressions (`ignoreDifferences.jqPathExpressions`)
//! in a child process of this binary, with an address-space limit, a CPU-time
//! limit, an empty environment and a wall-clock timeout: an expression such
//! as `until(false; [.] + [1])` (CVE-2024-32476) kills only the child.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use gitplane_diff::{JqEvaluator, JqJob, JsonPath, jq_paths};

/// The hidden subcommand the child runs.
pub const JQ_SANDBOX_COMMAND: &str = "__jq-sandbox";

/// The child's budget.
#[derive(Debug, Clone)]
pub struct SandboxedJq {
    /// This binary.
    pub exe: PathBuf,
    /// Wall-clock time for one batch.
    pub timeout: Duration,
    /// Address space, in bytes.
    pub memory_bytes: u64,
    /// CPU seconds.
    pub cpu_seconds: u64,
}

impl SandboxedJq {
    /// The default budget: 5 seconds, 512 MiB.
    pub fn new() -> Result<Self> {
        Ok(SandboxedJq {
            exe: std::env::current_exe().context("locating the gitplane binary")?,
            timeout: Duration::from_secs(5),
            memory_bytes: 512 << 20,
            cpu_seconds: 5,
        })
    }

    fn run(&self, jobs: &[JqJob]) -> Result<Vec<Result<Vec<JsonPath>, String>>, String> {
        let input = serde_json::to_vec(jobs).map_err(|e| e.to_string())?;
        let mut child = Command::new(&self.exe)
            .arg(JQ_SANDBOX_COMMAND)
            .arg(self.memory_bytes.to_string())
            .arg(self.cpu_seconds.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the jq sandbox: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
            drop(stdin);
            let mut output = Vec::new();
            let read = stdout.read_to_end(&mut output).map(|_| output);
            let _ = done.send(read);
        });
        let output = match finished.recv_timeout(self.timeout) {
            Ok(read) => read.map_err(|e| e.to_string()),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "jq expressions exceeded their time budget of {:?}",
                    self.timeout
                ));
            }
        };
        let status = child.wait().map_err(|e| e.to_string())?;
        let output = output?;
        if !status.success() {
            return Err(format!(
                "jq expressions exceeded their budget ({} MiB, {} s of CPU) or crashed",
                self.memory_bytes >> 20,
                self.cpu_seconds
            ));
        }
        serde_json::from_slice(&output).map_err(|e| format!("jq sandbox answered garbage: {e}"))
    }
}

impl JqEvaluator for SandboxedJq {
    fn paths(&self, jobs: &[JqJob]) -> Vec<Result<Vec<JsonPath>, String>> {
        match self.run(jobs) {
            Ok(results) if results.len() == jobs.len() => results,
            Ok(_) => {
                vec![Err("jq sandbox answered the wrong number of results".into()); jobs.len()]
            }
            Err(e) => vec![Err(e); jobs.len()],
        }
    }
}

/// The child: limits itself, then evaluates the jobs on stdin.
pub fn run_child(args: &[String]) -> Result<ExitCode> {
    let number = |i: usize| -> Result<u64> {
        args.get(i)
            .context("usage: __jq-sandbox MEMORY_BYTES CPU_SECONDS")?
            .parse()
            .context("not a number")
    };
    let (memory, cpu) = (number(0)?, number(1)?);
    rlimit::setrlimit(rlimit::Resource::AS, memory, memory)?;
    rlimit::setrlimit(rlimit::Resource::CPU, cpu, cpu)?;
    let jobs: Vec<JqJob> = serde_json::from_reader(std::io::stdin().lock())?;
    let results: Vec<Result<Vec<JsonPath>, String>> = jobs
        .iter()
        .map(|job| jq_paths(&job.expression, &job.value))
        .collect();
    serde_json::to_writer(std::io::stdout().lock(), &results)?;
    Ok(ExitCode::SUCCESS)
}
