//! Running a command and measuring its wall time and peak memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One run of a command.
#[derive(Debug, Clone)]
pub struct Run {
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// Peak resident set size of the process, in KiB.
    pub max_rss_kib: u64,
    /// CPU time, user and system.
    pub cpu: Duration,
    /// What it printed on stdout.
    pub stdout: Vec<u8>,
}

/// Runs `program args...` with stdout captured, and measures it (wall, CPU, peak memory).
pub fn run_measured(program: &Path, args: &[&str]) -> Result<Run> {
    let stdout_file = tempfile::tempfile().context("creating a temporary file for output")?;
    // A file, not a pipe: a child printing more than a pipe holds on stderr
    // would block before exiting, since it is read only afterwards.
    let stderr_file = tempfile::tempfile().context("creating a temporary file for output")?;
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout_file.try_clone()?)
        .stderr(stderr_file.try_clone()?)
        .env("KUBECONFIG", "/dev/null")
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let (status, max_rss_kib, cpu) = wait_with_rusage(child.id())?;
    let wall = started.elapsed();
    let read_back = |file: &std::fs::File| {
        std::fs::read(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(file)
        ))
    };
    let stdout = read_back(&stdout_file)?;
    let stderr = String::from_utf8_lossy(&read_back(&stderr_file)?).into_owned();
    if !status {
        let printed = String::from_utf8_lossy(&stdout);
        let tail: Vec<&str> = printed.lines().rev().take(20).collect();
        bail!(
            "{} {} failed: {}\n{}",
            program.display(),
            args.join(" "),
            stderr.trim(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(Run {
        wall,
        max_rss_kib,
        cpu,
        stdout,
    })
}

/// Waits for a child with `wait4`, which also reports its peak memory. This is
/// the one `unsafe` call in gitplane: std offers no way to read a child's rusage.
#[allow(unsafe_code)]
fn wait_with_rusage(pid: u32) -> Result<(bool, u64, Duration)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals, and a pid we spawned and have not reaped.
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!(
            "waiting for process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let seconds = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    Ok((ok, usage.ru_maxrss.max(0) as u64, cpu))
}

/// Several runs of one tool.
pub struct Measured {
    /// What ran, for the report.
    pub tool: &'static str,
    /// The counted runs.
    pub runs: Vec<Run>,
}

impl Measured {
    /// A warm-up run (not counted), then `runs` measured runs, with progress
    /// on stderr.
    pub fn measure(
        tool: &'static str,
        program: &Path,
        args: &[&str],
        runs: usize,
    ) -> Result<Measured> {
        eprintln!("  {tool}: warm-up run (not counted)");
        run_measured(program, args)?;
        let mut measured = Vec::with_capacity(runs);
        for i in 0..runs {
            eprintln!("  {tool}: run {}/{runs}", i + 1);
            measured.push(run_measured(program, args)?);
        }
        Ok(Measured {
            tool,
            runs: measured,
        })
    }

    /// The fastest run's wall time.
    pub fn best(&self) -> Duration {
        best_and_median(self.runs.iter().map(|r| r.wall).collect()).0
    }

    /// The median run's wall time.
    pub fn median(&self) -> Duration {
        best_and_median(self.runs.iter().map(|r| r.wall).collect()).1
    }

    /// Prints one line: best, median, peak memory.
    pub fn print(&self, label: &str) {
        println!(
            "  {label:<34} best {:>7.0} ms  median {:>7.0} ms  peak {:>6.1} MiB",
            self.best().as_secs_f64() * 1000.0,
            self.median().as_secs_f64() * 1000.0,
            self.peak_mib()
        );
    }

    /// The highest peak memory of the runs, in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0
    }
}

/// Prints whether the tools' outputs were identical; the exit code says
/// the same (1 when they differ).
pub fn report_identical(identical: bool) -> std::process::ExitCode {
    println!(
        "outputs identical: {}",
        if identical { "yes" } else { "NO" }
    );
    if identical {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// The fastest and the median of several durations.
pub fn best_and_median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}

/// The first executable file called `program` on `PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
