//! `gitplane-policy`: policy on rendered objects, before anything reaches a
//! cluster.
//!
//! Today: the Pod Security Standards ([`pss`]), on Pods and the pod
//! templates of workloads, at a level given by the caller and at the levels
//! the rendered Namespaces' `pod-security.kubernetes.io/*` labels ask for.
//! Start with [`check_pod_security`].

pub mod pss;

use gitplane_object::Object;

use pss::{Failure, Standard, check_pod, pod_template};

/// What a failed check does, as the namespace label that asked for it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Refuse the object (`enforce`, or the level the caller gave).
    Enforce,
    /// Let it through with a warning (`warn`).
    Warn,
    /// Record it (`audit`).
    Audit,
}

impl Mode {
    /// `Enforce`, `Warn` or `Audit`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Enforce => "Enforce",
            Mode::Warn => "Warn",
            Mode::Audit => "Audit",
        }
    }
}

/// One object failing one standard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The object (`Deployment shop-prod/shop`).
    pub object: String,
    /// Where it was read from (`apps/shop/deploy.yaml:3`), when known.
    pub origin: Option<String>,
    /// The standard it fails.
    pub standard: Standard,
    /// What the failure does.
    pub mode: Mode,
    /// The path of the pod spec in the object.
    pub path: &'static str,
    /// The checks it fails.
    pub failures: Vec<Failure>,
    /// Why this standard applies (`--pss`, or `namespace shop-prod`).
    pub source: String,
}

/// The standards a namespace's labels ask for, with their modes.
fn namespace_standards(namespace: &Object) -> Result<Vec<(Mode, Standard)>, String> {
    let mut out = Vec::new();
    for (mode, key) in [
        (Mode::Enforce, "enforce"),
        (Mode::Warn, "warn"),
        (Mode::Audit, "audit"),
    ] {
        let Some(level) = namespace.label(&format!("pod-security.kubernetes.io/{key}")) else {
            continue;
        };
        let version = namespace
            .label(&format!("pod-security.kubernetes.io/{key}-version"))
            .unwrap_or("latest");
        let standard = Standard::parse(&format!("{level}:{version}")).map_err(|e| {
            format!(
                "Namespace {}: label pod-security.kubernetes.io/{key}: {e}",
                namespace.name()
            )
        })?;
        out.push((mode, standard));
    }
    Ok(out)
}

/// Checks every pod-bearing object: against `enforce` (the caller's level,
/// if any) and against what the rendered Namespace of its namespace labels
/// ask for. Errors are malformed namespace labels.
pub fn check_pod_security(
    objects: &[Object],
    enforce: Option<Standard>,
) -> Result<Vec<Finding>, String> {
    let mut by_namespace: Vec<(&str, Vec<(Mode, Standard)>)> = Vec::new();
    for namespace in objects
        .iter()
        .filter(|o| o.kind() == "Namespace" && o.api_version() == "v1")
    {
        by_namespace.push((namespace.name(), namespace_standards(namespace)?));
    }
    let mut findings = Vec::new();
    for object in objects {
        let Some(pod) = pod_template(object) else {
            continue;
        };
        let mut standards: Vec<(Mode, Standard, String)> = Vec::new();
        if let Some(standard) = enforce {
            standards.push((Mode::Enforce, standard, "--pss".to_string()));
        }
        if let Some((name, labelled)) = object
            .namespace()
            .and_then(|ns| by_namespace.iter().find(|(name, _)| *name == ns))
        {
            for (mode, standard) in labelled {
                if !standards.iter().any(|(m, s, _)| m == mode && s == standard) {
                    standards.push((*mode, *standard, format!("namespace {name}")));
                }
            }
        }
        for (mode, standard, source) in standards {
            let failures = check_pod(pod.metadata, pod.spec, standard);
            if failures.is_empty() {
                continue;
            }
            findings.push(Finding {
                object: describe(object),
                origin: object.origin().map(|o| format!("{}:{}", o.file, o.line)),
                standard,
                mode,
                path: pod.path,
                failures,
                source,
            });
        }
    }
    Ok(findings)
}

fn describe(object: &Object) -> String {
    match object.namespace() {
        Some(ns) => format!("{} {ns}/{}", object.kind(), object.name()),
        None => format!("{} {}", object.kind(), object.name()),
    }
}
