//! Pod Security Standards, checked as Kubernetes' pod-security admission
//! plugin checks them: the `baseline` and `restricted` levels, per version,
//! on Pods and on the pod templates of the workload kinds.
//!
//! Each failing check reads like PSA's: a reason and what to change,
//! `allowPrivilegeEscalation != false (container "app" must set
//! securityContext.allowPrivilegeEscalation=false)`.

mod checks;
mod pod;

use std::fmt;

use serde_json::Value;

pub use pod::{PodTemplate, pod_of, pod_spec_of, pod_template, pod_template_of_value};

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Anything goes.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl Level {
    /// Parses `privileged`, `baseline` or `restricted`.
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

/// The newest Kubernetes minor version whose checks gitplane knows; `latest`
/// means this one.
pub const LATEST_MINOR: u32 = 37;

/// A version of the standards: `latest` or `v1.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest checks.
    Latest,
    /// The checks as Kubernetes 1.N had them.
    Minor(u32),
}

impl Version {
    /// Parses `latest`, `v1.30` or `1.30`.
    pub fn parse(text: &str) -> Option<Version> {
        if text == "latest" {
            return Some(Version::Latest);
        }
        let minor = text.trim_start_matches('v').strip_prefix("1.")?;
        minor.parse().ok().map(Version::Minor)
    }

    /// The minor version the checks follow.
    pub fn minor(&self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::Minor(m) => (*m).min(LATEST_MINOR),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(m) => write!(f, "v1.{m}"),
        }
    }
}

/// A level at a version: `restricted:latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Standard {
    /// The level.
    pub level: Level,
    /// The version.
    pub version: Version,
}

impl Standard {
    /// Parses `LEVEL[:VERSION]` (version `latest` when left out).
    pub fn parse(text: &str) -> Result<Standard, String> {
        let (level, version) = text.split_once(':').unwrap_or((text, "latest"));
        let level = Level::parse(level).ok_or_else(|| {
            format!("{level:?} is not a Pod Security level (privileged, baseline or restricted)")
        })?;
        let version = Version::parse(version)
            .ok_or_else(|| format!("{version:?} is not a Pod Security version (latest or v1.N)"))?;
        Ok(Standard { level, version })
    }
}

impl fmt::Display for Standard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The check's id (`allowPrivilegeEscalation`, `hostNamespaces`…).
    pub check: &'static str,
    /// PSA's reason (`allowPrivilegeEscalation != false`).
    pub reason: String,
    /// What to change (`container "app" must set …`).
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.detail)
    }
}

/// Every check a pod (its metadata and spec) fails at a standard, in PSA's
/// order: baseline checks first, then restricted ones.
pub fn check_pod(metadata: &Value, spec: &Value, standard: Standard) -> Vec<Failure> {
    if standard.level == Level::Privileged {
        return Vec::new();
    }
    let pod = checks::Pod::new(metadata, spec);
    let minor = standard.version.minor();
    let mut failures: Vec<Failure> = checks::BASELINE
        .iter()
        .filter_map(|check| check(&pod, minor))
        .collect();
    if standard.level == Level::Restricted {
        failures.extend(
            checks::RESTRICTED
                .iter()
                .filter_map(|check| check(&pod, minor)),
        );
    }
    failures
}

/// PSA's one-line summary: `violates PodSecurity "restricted:latest": …`.
pub fn summary(standard: Standard, failures: &[Failure]) -> String {
    let parts: Vec<String> = failures.iter().map(ToString::to_string).collect();
    format!("violates PodSecurity \"{standard}\": {}", parts.join(", "))
}

/// The checks behind one of the Pod Security Standards' control names (as
/// Kyverno's `podSecurity.exclude[].controlName` spells them).
pub fn checks_of_control(control: &str) -> Option<Vec<&'static str>> {
    let checks: &[&'static str] = match control {
        "HostProcess" => &["windowsHostProcess"],
        "Host Namespaces" => &["hostNamespaces"],
        "Privileged Containers" => &["privileged"],
        "Capabilities" => &["capabilities_baseline", "capabilities_restricted"],
        "HostPath Volumes" => &["hostPathVolumes"],
        "Host Ports" => &["hostPorts"],
        "AppArmor" => &["appArmorProfile"],
        "SELinux" => &["seLinuxOptions"],
        "/proc Mount Type" => &["procMount", "procMount_restricted"],
        "Seccomp" => &["seccompProfile_baseline", "seccompProfile_restricted"],
        "Sysctls" => &["sysctls"],
        "Volume Types" => &["restrictedVolumes"],
        "Privilege Escalation" => &["allowPrivilegeEscalation"],
        "Running as Non-root" => &["runAsNonRoot"],
        "Running as Non-root user" => &["runAsUser"],
        "Host Probes / Lifecycle Hooks" => &["hostProbesAndHostLifecycle"],
        _ => return None,
    };
    Some(checks.to_vec())
}
