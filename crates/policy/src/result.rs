//! What evaluating a policy rule on one object gives.

use std::collections::BTreeMap;

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Refuse the object (`enforce`, Kyverno `Enforce`, VAP `Deny`, `--pss`).
    Enforce,
    /// Let it through with a warning (`warn`, VAP `Warn`).
    Warn,
    /// Record it (`audit`, Kyverno `Audit`, VAP `Audit`).
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

/// The result of one rule on one object, as PolicyReports and the Kyverno
/// CLI name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The object satisfies the rule.
    Pass,
    /// The object violates the rule.
    Fail,
    /// The object violates a rule that only warns.
    Warn,
    /// The rule could not be evaluated (an expression failed).
    Error,
    /// The rule does not apply (a precondition or conditional anchor), or
    /// uses a feature gitplane does not evaluate: the message says which.
    Skip,
}

impl Verdict {
    /// `pass`, `fail`, `warn`, `error` or `skip`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Error => "error",
            Verdict::Skip => "skip",
        }
    }

    /// Parses what [`Verdict::as_str`] prints.
    pub fn parse(text: &str) -> Option<Verdict> {
        match text {
            "pass" => Some(Verdict::Pass),
            "fail" => Some(Verdict::Fail),
            "warn" => Some(Verdict::Warn),
            "error" => Some(Verdict::Error),
            "skip" => Some(Verdict::Skip),
            _ => None,
        }
    }
}

/// The kind of policy a result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Engine {
    /// A Pod Security Standard (`--pss` or namespace labels).
    PodSecurity,
    /// A ValidatingAdmissionPolicy with a binding.
    Vap,
    /// A Kyverno ClusterPolicy or Policy.
    Kyverno,
    /// An OPA Gatekeeper Constraint (its ConstraintTemplate's Rego).
    Gatekeeper,
}

/// One rule's result on one object.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleResult {
    /// Where the rule comes from.
    pub engine: Engine,
    /// The policy (`disallow-latest-tag`, `restricted:latest`).
    pub policy: String,
    /// The rule (Kyverno rule name, VAP binding name, PSS source).
    pub rule: String,
    /// The result.
    pub verdict: Verdict,
    /// What a failure does.
    pub mode: Mode,
    /// Why (empty on a pass).
    pub message: String,
    /// Extra facts: VAP audit annotations.
    pub properties: BTreeMap<String, String>,
    /// The status reason a refusal carries (a VAP validation's `reason`:
    /// `Invalid`, `Forbidden`…), when the policy gives one.
    pub reason: Option<String>,
}

impl RuleResult {
    /// A result without properties.
    pub fn new(
        engine: Engine,
        policy: &str,
        rule: &str,
        verdict: Verdict,
        mode: Mode,
        message: String,
    ) -> RuleResult {
        RuleResult {
            engine,
            policy: policy.to_string(),
            rule: rule.to_string(),
            verdict,
            mode,
            message,
            properties: BTreeMap::new(),
            reason: None,
        }
    }

    /// Whether this result refuses the object: an enforced failure, or an
    /// enforced rule that could not be evaluated (fail closed).
    pub fn blocks(&self) -> bool {
        matches!(self.verdict, Verdict::Fail | Verdict::Error) && self.mode == Mode::Enforce
    }

    /// Whether this result is a violation of any mode.
    pub fn is_violation(&self) -> bool {
        matches!(self.verdict, Verdict::Fail | Verdict::Warn | Verdict::Error)
    }
}
