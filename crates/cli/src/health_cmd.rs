//! `gitplane health test DIR`: runs Argo CD `health_test.yaml` files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use gitplane_health::{Health, LuaLimits, run_health_tests};

/// Arguments of `gitplane health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[command(subcommand)]
    command: HealthCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HealthCommand {
    /// Find every `health_test.yaml` under DIR (Argo CD's
    /// `resource_customizations/<group>/<Kind>/` layout), run the sibling
    /// `health.lua` on each case's input in the Lua sandbox, print a line per
    /// failing case and `N passed, M failed`. Exit status 1 if any failed.
    Test {
        /// The directory to search.
        dir: PathBuf,
    },
}

fn show(health: &Result<Health, String>) -> String {
    match health {
        Ok(h) => format!("{} {:?}", h.status, h.message),
        Err(e) => format!("an error: {e}"),
    }
}

/// Runs `gitplane health`.
pub fn run(args: &HealthArgs) -> Result<ExitCode> {
    let HealthCommand::Test { dir } = &args.command;
    let report = run_health_tests(dir, LuaLimits::default())?;
    let mut failed = 0;
    for case in report.failures() {
        failed += 1;
        println!(
            "FAIL {}: {}: expected {}, got {}",
            case.file.display(),
            case.input,
            show(&Ok(case.expected.clone())),
            show(&case.actual)
        );
    }
    println!("{} passed, {failed} failed", report.passed());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
