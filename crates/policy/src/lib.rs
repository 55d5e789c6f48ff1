//! `gitplane-policy`: policy on rendered objects, before anything reaches a
//! cluster.
//!
//! Four kinds of policy, one result model ([`RuleResult`]):
//! - the Pod Security Standards ([`pss`]), at a level the caller gives and
//!   at the levels rendered Namespaces' `pod-security.kubernetes.io/*`
//!   labels ask for;
//! - ValidatingAdmissionPolicies with their bindings ([`vap`]);
//! - Kyverno ClusterPolicies and Policies ([`kyverno`]);
//! - OPA Gatekeeper ConstraintTemplates and Constraints ([`gatekeeper`]).
//!
//! Read policies with [`PolicySet::load`], evaluate one write with
//! [`PolicySet::validate`], or check a whole render with [`check`].
//! [`report`] turns results into `wgpolicyk8s.io` PolicyReports.

pub mod gatekeeper;
pub mod kyverno;
pub mod pss;
pub mod report;
mod request;
mod result;
mod shared;
mod source;
pub mod vap;

use gitplane_object::{Object, Value};

pub use kyverno::Supplied;
pub use request::{Lookup, Operation, Request, UserInfo};
pub use result::{Engine, Mode, RuleResult, Verdict};
pub use source::{Evaluation, LoadError, PolicySet, describe, is_policy, origin, strings};

use pss::{Failure, Standard, check_pod, pod_template};

/// One result on one rendered object.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The object (`Deployment shop-prod/shop`).
    pub object: String,
    /// Where it was read from (`apps/shop/deploy.yaml:3`), when known.
    pub origin: Option<String>,
    /// The result.
    pub result: RuleResult,
    /// Why the policy applies (`--pss`, `namespace shop-prod`, `policies`).
    pub source: String,
    /// For a Pod Security Standard: which, and the checks failed.
    pub pod_security: Option<PodSecurityFinding>,
}

/// The details of a Pod Security Standard failure.
#[derive(Debug, Clone)]
pub struct PodSecurityFinding {
    /// The standard failed.
    pub standard: Standard,
    /// The path of the pod spec in the object.
    pub path: &'static str,
    /// The checks failed.
    pub failures: Vec<Failure>,
}

/// Everything [`check`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// Results that are not passes, by object in render order.
    pub findings: Vec<Finding>,
    /// Objects checked.
    pub objects: usize,
    /// Results that passed.
    pub passed: usize,
    /// Results skipped (preconditions, conditional anchors, unsupported).
    pub skipped: usize,
    /// CEL cost units spent.
    pub cost: u64,
    /// Every policy result (not Pod Security labels), by the index of the
    /// object in the checked list: what PolicyReports record.
    pub results: Vec<(usize, Vec<RuleResult>)>,
}

impl Report {
    /// Whether any finding refuses its object.
    pub fn blocks(&self) -> bool {
        self.findings.iter().any(|f| f.result.blocks())
    }
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

/// A rendered Namespace: its name, its JSON, and the standards its labels
/// ask for.
type RenderedNamespace<'a> = (&'a str, Value, Vec<(Mode, Standard)>);

/// Checks rendered objects: Pod Security at `enforce` (if given) and at
/// what the rendered Namespaces' labels ask for, and every policy of
/// `policies` (each object treated as a creation, its rendered Namespace
/// as `namespaceObject`, parameters looked up among the policies' objects
/// and the render). Policy objects in `objects` are not themselves checked.
/// Errors are malformed namespace labels.
pub fn check(
    objects: &[Object],
    enforce: Option<Standard>,
    policies: &PolicySet,
) -> Result<Report, String> {
    let namespaces: Vec<RenderedNamespace> = objects
        .iter()
        .filter(|o| o.kind() == "Namespace" && o.api_version() == "v1")
        .map(|ns| Ok((ns.name(), ns.to_value(), namespace_standards(ns)?)))
        .collect::<Result<_, String>>()?;
    let mut report = Report::default();
    let supplied = Supplied::default();
    for (index, object) in objects.iter().enumerate().filter(|(_, o)| !is_policy(o)) {
        report.objects += 1;
        let namespace = object
            .namespace()
            .and_then(|ns| namespaces.iter().find(|(name, _, _)| *name == ns));
        check_object_pod_security(
            object,
            enforce,
            namespace.map(|(n, _, s)| (*n, s.as_slice())),
            &mut report,
        );
        if policies.is_empty() {
            continue;
        }
        let body = object.to_value();
        let request = Request {
            namespace_object: namespace.map(|(_, v, _)| v),
            ..Request::create(&body)
        };
        let evaluation = policies.validate(&request, &objects, &supplied);
        report.cost += evaluation.cost;
        for result in &evaluation.results {
            match result.verdict {
                Verdict::Pass => report.passed += 1,
                Verdict::Skip => report.skipped += 1,
                _ => report.findings.push(Finding {
                    object: describe(object),
                    origin: origin(object),
                    result: result.clone(),
                    source: "policies".into(),
                    pod_security: None,
                }),
            }
        }
        if !evaluation.results.is_empty() {
            report.results.push((index, evaluation.results));
        }
    }
    Ok(report)
}

fn check_object_pod_security(
    object: &Object,
    enforce: Option<Standard>,
    namespace: Option<(&str, &[(Mode, Standard)])>,
    report: &mut Report,
) {
    let Some(pod) = pod_template(object) else {
        return;
    };
    let mut standards: Vec<(Mode, Standard, String)> = Vec::new();
    if let Some(standard) = enforce {
        standards.push((Mode::Enforce, standard, "--pss".to_string()));
    }
    if let Some((name, labelled)) = namespace {
        for (mode, standard) in labelled {
            if !standards.iter().any(|(m, s, _)| m == mode && s == standard) {
                standards.push((*mode, *standard, format!("namespace {name}")));
            }
        }
    }
    for (mode, standard, source) in standards {
        let failures = check_pod(pod.metadata, pod.spec, standard);
        if failures.is_empty() {
            report.passed += 1;
            continue;
        }
        let verdict = if mode == Mode::Warn {
            Verdict::Warn
        } else {
            Verdict::Fail
        };
        let result = RuleResult::new(
            Engine::PodSecurity,
            "pod-security",
            &standard.to_string(),
            verdict,
            mode,
            pss::summary(standard, &failures),
        );
        report.findings.push(Finding {
            object: describe(object),
            origin: origin(object),
            result,
            source,
            pod_security: Some(PodSecurityFinding {
                standard,
                path: pod.path,
                failures,
            }),
        });
    }
}
