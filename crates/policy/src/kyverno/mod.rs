//! Kyverno `ClusterPolicy` and `Policy` (`kyverno.io/v1`, `v2beta1`):
//! validate (`pattern`, `anyPattern`, `deny`, `foreach`, `cel`,
//! `podSecurity`) and mutate (`patchStrategicMerge`, `patchesJson6902`,
//! `foreach`) rules with match/exclude, preconditions, variables and
//! context, per-rule failure actions, and autogen for pod controllers.
//!
//! What needs a cluster or a registry (generate, verifyImages, mutating
//! existing resources, `apiCall`/`configMap` context without supplied
//! values) is reported as `skip` with the reason, never as `pass`.

pub mod assertion;
pub mod autogen;
mod conditions;
pub mod deleting_policy;
pub mod exception;
mod functions;
pub mod generating_policy;
pub(crate) mod images;
mod matching;
mod mutate;
pub mod mutating_policy;
pub mod pattern;
pub mod validating_policy;
mod values;
pub mod vars;

use gitplane_cel::Env;
use gitplane_object::{LabelSelector, Map, Object, Value, json};

use crate::pss::{self, Standard};
use crate::request::{Lookup, Request};
use crate::result::{Engine, Mode, RuleResult, Verdict};
use crate::shared::Shared;
use crate::vap::{CelOutcome, CelValidator};
use matching::Match;
use pattern::Mismatch;
use vars::Vars;

pub use values::wildcard_match;

/// Which PolicyException, if any, exempts a rule (by name) of the policy
/// being evaluated from the request at hand.
pub type Exempt<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The result of a rule a PolicyException exempts.
fn exempted_message(exception: &str) -> String {
    format!("rule skipped due to policy exception {exception}")
}

/// Values supplied from outside (a Kyverno CLI `Values` file): for
/// variables and for context entries that would need a cluster.
#[derive(Debug, Clone, Default)]
pub struct Supplied {
    /// `globalValues`.
    pub global: Map<String, Value>,
    /// Per policy and rule: (policy, rule, values).
    pub rules: Vec<(String, String, Map<String, Value>)>,
    /// Per policy and resource name: (policy, resource, values).
    pub resources: Vec<(String, String, Map<String, Value>)>,
    /// CEL variables that answer Kyverno's cluster libraries from supplied
    /// data (a test's `Context` file): `resource`, `image`, `time` (see
    /// [`gitplane_cel::supplied`]).
    pub cel_variables: Vec<(String, Value)>,
}

impl Supplied {
    fn for_rule(&self, policy: &str, rule: &str, resource: &str) -> Map<String, Value> {
        let mut out = self.global.clone();
        for (p, r, values) in &self.rules {
            if p == policy
                && (r == rule
                    || rule
                        .strip_prefix("autogen-")
                        .is_some_and(|x| x == r || x.strip_prefix("cronjob-") == Some(r)))
            {
                out.extend(values.clone());
            }
        }
        for (p, name, values) in &self.resources {
            if p == policy && name == resource {
                out.extend(values.clone());
            }
        }
        out
    }
}

/// An object a generate rule makes for a trigger.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The policy.
    pub policy: String,
    /// The rule.
    pub rule: String,
    /// The object to create.
    pub object: Object,
    /// `synchronize`: keep the object as the rule says (recreate, update,
    /// delete with the trigger).
    pub synchronize: bool,
    /// What a `clone` rule copies from (a change to it changes the copy,
    /// when synchronized).
    pub clone_source: Option<gitplane_object::ObjectKey>,
}

/// A compiled Kyverno policy.
#[derive(Debug)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    /// The namespace of a `Policy` (a `ClusterPolicy` has none).
    pub namespace: Option<String>,
    /// `spec.background` (default true): whether reports cover existing
    /// resources.
    pub background: bool,
    rules: Vec<Rule>,
    /// What its synchronized `clone` rules copy, by rule (see
    /// [`Policy::clone_sources`]), found once when read.
    clone_sources: Vec<(String, gitplane_object::ObjectKey)>,
}

#[derive(Debug)]
struct Rule {
    name: String,
    matching: Match,
    exclude: Option<Match>,
    preconditions: Option<Value>,
    /// `celPreconditions`: named CEL expressions that must all hold.
    cel_preconditions: Vec<(String, std::sync::Arc<gitplane_cel::Program>)>,
    context: Vec<Value>,
    mode: Mode,
    overrides: Vec<(Mode, Vec<String>)>,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Validate {
        message: Option<String>,
        check: Check,
    },
    Mutate {
        smp: Option<Value>,
        json6902: Option<Value>,
        foreach: Vec<Value>,
    },
    /// A `generate` rule with `data` or `clone`: the object it creates.
    Generate(Value),
    Unsupported(String),
}

#[derive(Debug)]
enum Check {
    Pattern(Value),
    AnyPattern(Vec<Value>),
    Deny(Value),
    Foreach(Vec<Value>),
    Cel(Box<CelValidator>, Option<Value>),
    PodSecurity(Standard, Vec<Exclusion>),
}

#[derive(Debug)]
struct Exclusion {
    checks: Vec<&'static str>,
    images: Vec<String>,
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    match text {
        "Enforce" | "enforce" => Ok(Mode::Enforce),
        "Audit" | "audit" => Ok(Mode::Audit),
        other => Err(format!(
            "failure action {other:?}: must be Enforce or Audit"
        )),
    }
}

impl Policy {
    /// Compiles a ClusterPolicy or Policy, with its autogen rules.
    pub fn parse(env: &Env, object: &Object) -> Result<Policy, String> {
        let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
        let default_mode = match spec["validationFailureAction"].as_str() {
            Some(action) => parse_mode(action)?,
            None => Mode::Audit,
        };
        let controllers = object.annotation(autogen::CONTROLLERS_ANNOTATION);
        let mut raw_rules = Vec::new();
        for rule in spec["rules"].as_array().into_iter().flatten() {
            raw_rules.push(rule.clone());
            raw_rules.extend(autogen::generate(rule, controllers));
        }
        if raw_rules.is_empty() {
            return Err("spec.rules: at least one rule is required".into());
        }
        let mut rules = Vec::new();
        for raw in &raw_rules {
            let name = raw["name"].as_str().unwrap_or_default();
            rules.push(
                Rule::parse(env, raw, default_mode).map_err(|e| format!("rule {name:?}: {e}"))?,
            );
        }
        Ok(Policy {
            name: object.name().to_string(),
            namespace: (object.kind() == "Policy")
                .then(|| object.namespace().unwrap_or("default").to_string()),
            background: spec["background"].as_bool().unwrap_or(true),
            clone_sources: literal_clone_sources(&rules),
            rules,
        })
    }

    /// The names of its rules, autogen ones included.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    fn applies_to(&self, request: &Request) -> bool {
        match &self.namespace {
            Some(ns) => request.namespace() == Some(ns.as_str()),
            None => true,
        }
    }

    /// Evaluates the validate rules (and reports unsupported rules as
    /// skipped) on a request. Returns the CEL cost spent.
    pub fn validate(
        &self,
        shared: &Shared,
        supplied: &Supplied,
        lookup: &dyn Lookup,
        exempt: Exempt,
        out: &mut Vec<RuleResult>,
    ) -> u64 {
        let request = &shared.request;
        if !self.applies_to(request) {
            return 0;
        }
        let mut cost = 0;
        for rule in &self.rules {
            if matches!(rule.body, Body::Mutate { .. } | Body::Generate(_))
                || !rule.selects(request)
            {
                continue;
            }
            let mut result = |verdict: Verdict, message: String| {
                out.push(RuleResult::new(
                    Engine::Kyverno,
                    &self.name,
                    &rule.name,
                    verdict,
                    rule.mode_for(request),
                    message,
                ));
            };
            if let Some(exception) = exempt(&rule.name) {
                result(Verdict::Skip, exempted_message(&exception));
                continue;
            }
            let vars = match rule.vars(&self.name, shared, supplied) {
                Ok(vars) => vars,
                Err((verdict, message)) => {
                    result(verdict, message);
                    continue;
                }
            };
            let (verdict, message, spent) = rule.validate(shared, &vars, lookup);
            cost += spent;
            result(verdict, message);
        }
        cost
    }

    /// The objects the generate rules that select a request would create
    /// (as `(rule, object)`), with a result per rule: computed offline from
    /// `generate.data`, variables substituted.
    pub fn generate(
        &self,
        shared: &Shared,
        supplied: &Supplied,
        lookup: &dyn Lookup,
        exempt: Exempt,
        out: &mut Vec<RuleResult>,
    ) -> Vec<Generated> {
        let request = &shared.request;
        let mut generated = Vec::new();
        if !self.applies_to(request) {
            return generated;
        }
        for rule in &self.rules {
            let Body::Generate(spec) = &rule.body else {
                continue;
            };
            if !rule.selects(request) {
                continue;
            }
            if let Some(exception) = exempt(&rule.name) {
                out.push(self.audit_result(rule, Verdict::Skip, exempted_message(&exception)));
                continue;
            }
            let outcome = rule.vars(&self.name, shared, supplied).and_then(|vars| {
                let made = if spec.get("cloneList").is_some() {
                    cloned_list(spec, &vars, lookup)
                } else {
                    generated_object(spec, &vars, lookup)
                        .map(|object| vec![(object, clone_source(spec, &vars))])
                };
                made.map_err(|e| (Verdict::Error, e))
            });
            let (verdict, message) = match outcome {
                Ok(objects) => {
                    for (object, clone_source) in objects {
                        generated.push(Generated {
                            policy: self.name.clone(),
                            rule: rule.name.clone(),
                            object,
                            synchronize: spec["synchronize"].as_bool().unwrap_or(false),
                            clone_source,
                        });
                    }
                    (Verdict::Pass, String::new())
                }
                Err((verdict, message)) => (verdict, message),
            };
            out.push(self.audit_result(rule, verdict, message));
        }
        generated
    }

    /// A result of a rule that does not enforce anything (mutate, generate).
    fn audit_result(&self, rule: &Rule, verdict: Verdict, message: String) -> RuleResult {
        RuleResult::new(
            Engine::Kyverno,
            &self.name,
            &rule.name,
            verdict,
            Mode::Audit,
            message,
        )
    }

    /// Applies the mutate rules in order; returns the mutated object and a
    /// result per rule that matched.
    pub fn mutate(
        &self,
        request: &Request,
        supplied: &Supplied,
        exempt: Exempt,
        out: &mut Vec<RuleResult>,
    ) -> Value {
        let mut current = request.object.clone();
        if !self.applies_to(request) {
            return current;
        }
        for rule in &self.rules {
            let Body::Mutate {
                smp,
                json6902,
                foreach,
            } = &rule.body
            else {
                continue;
            };
            let step = Request {
                object: &current,
                ..*request
            };
            if !rule.selects(&step) {
                continue;
            }
            if let Some(exception) = exempt(&rule.name) {
                out.push(self.audit_result(rule, Verdict::Skip, exempted_message(&exception)));
                continue;
            }
            // Unmet preconditions skip the rule; a failed context, an error.
            let outcome = rule
                .vars(&self.name, &Shared::new(step), supplied)
                .and_then(|vars| {
                    mutate_once(&current, smp.as_ref(), json6902.as_ref(), foreach, &vars)
                        .map_err(|message| (Verdict::Error, message))
                });
            let (verdict, message) = match outcome {
                // As Kyverno: a patch that changes nothing is skipped (a
                // foreach that ran on its elements passes).
                Ok(Some(patched)) if patched == current && foreach.is_empty() => {
                    (Verdict::Skip, "the patch changes nothing".to_string())
                }
                Ok(Some(patched)) => {
                    current = patched;
                    (Verdict::Pass, String::new())
                }
                Ok(None) => (
                    Verdict::Skip,
                    "the patch's conditions do not hold".to_string(),
                ),
                Err(failed) => failed,
            };
            out.push(self.audit_result(rule, verdict, message));
        }
        current
    }

    /// Whether any rule generates.
    pub fn has_generations(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.body, Body::Generate(_)))
    }

    /// The sources synchronized `clone` rules copy, by rule, where the
    /// rule names them without variables (a change to one changes every
    /// copy).
    pub fn clone_sources(&self) -> &[(String, gitplane_object::ObjectKey)] {
        &self.clone_sources
    }

    /// Whether any rule mutates.
    pub fn has_mutations(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.body, Body::Mutate { .. }))
    }
}

fn mutate_once(
    resource: &Value,
    smp: Option<&Value>,
    json6902: Option<&Value>,
    foreach: &[Value],
    vars: &Vars,
) -> Result<Option<Value>, String> {
    let mut current = resource.clone();
    let mut applied = false;
    if let Some(patch) = smp {
        let patch = vars.substitute(patch)?;
        if let mutate::Prepared::Patch(prepared) = mutate::prepare(&patch, &current)? {
            current = mutate::apply_strategic_merge(&current, &prepared)?;
            applied = true;
        }
    }
    if let Some(ops) = json6902 {
        current = mutate::apply_json6902(&current, &vars.substitute(ops)?)?;
        applied = true;
    }
    for entry in foreach {
        for (_, _, scoped) in foreach_scopes(entry, vars)? {
            if let Some(applied_now) = mutate_once(
                &current,
                entry.get("patchStrategicMerge"),
                entry.get("patchesJson6902"),
                &[],
                &scoped,
            )? {
                current = applied_now;
                applied = true;
            }
        }
    }
    Ok(applied.then_some(current))
}

impl Rule {
    fn parse(env: &Env, raw: &Value, default_mode: Mode) -> Result<Rule, String> {
        let name = raw["name"].as_str().ok_or("name is required")?.to_string();
        let matching = Match::parse(&raw["match"]).map_err(|e| format!("match: {e}"))?;
        if matching.is_empty() {
            return Err("match: at least one resource filter is required".into());
        }
        let exclude = match raw.get("exclude") {
            None | Some(Value::Null) => None,
            Some(e) => Some(Match::parse(e).map_err(|e| format!("exclude: {e}"))?),
        };
        let validate = &raw["validate"];
        let mode = match validate["failureAction"].as_str() {
            Some(action) => parse_mode(action)?,
            None => default_mode,
        };
        let mut overrides = Vec::new();
        for o in validate["failureActionOverrides"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let action = parse_mode(o["action"].as_str().unwrap_or_default())?;
            overrides.push((action, crate::source::strings(&o["namespaces"])));
        }
        Ok(Rule {
            name,
            matching,
            exclude,
            preconditions: raw.get("preconditions").cloned(),
            cel_preconditions: crate::vap::named_programs(
                env,
                raw,
                "celPreconditions",
                "expression",
            )?,
            context: raw["context"].as_array().cloned().unwrap_or_default(),
            mode,
            overrides,
            body: Body::parse(env, raw)?,
        })
    }

    fn selects(&self, request: &Request) -> bool {
        self.matching.matches(request) && !self.exclude.as_ref().is_some_and(|e| e.matches(request))
    }

    fn mode_for(&self, request: &Request) -> Mode {
        let namespace = request.namespace().unwrap_or_default();
        self.overrides
            .iter()
            .find(|(_, namespaces)| namespaces.iter().any(|n| wildcard_match(n, namespace)))
            .map_or(self.mode, |(mode, _)| *mode)
    }

    /// The rule's variables: the request, images, supplied values, context
    /// entries; then the preconditions. `Err` is the result to report
    /// instead of evaluating (skip or error).
    fn vars(
        &self,
        policy: &str,
        shared: &Shared,
        supplied: &Supplied,
    ) -> Result<Vars, (Verdict, String)> {
        let request = &shared.request;
        for (name, program) in &self.cel_preconditions {
            match program.evaluate_json(shared.activation()) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => {
                    return Err((Verdict::Skip, format!("celPreconditions {name:?} not met")));
                }
                Ok(other) => {
                    return Err((
                        Verdict::Error,
                        format!("celPreconditions {name:?}: returned {other}, not a boolean"),
                    ));
                }
                Err(e) => return Err((Verdict::Error, format!("celPreconditions {name:?}: {e}"))),
            }
        }
        let mut vars = shared.vars().clone();
        let given = supplied.for_rule(policy, &self.name, request.name());
        for (key, value) in &given {
            vars.set(key, value);
        }
        for entry in &self.context {
            let name = entry["name"].as_str().unwrap_or_default();
            // Supplied whole (`name`) or field by field (`name.data.key`).
            let prefix = format!("{name}.");
            if given.keys().any(|k| k == name || k.starts_with(&prefix)) {
                continue;
            }
            let value = context_entry(entry, &vars)
                .map_err(|e| (Verdict::Skip, format!("context {name:?}: {e}")))?;
            vars.set(name, &value);
        }
        if let Some(pre) = &self.preconditions {
            match conditions::holds(pre, &vars) {
                Ok((true, _)) => {}
                Ok((false, _)) => return Err((Verdict::Skip, "preconditions not met".into())),
                Err(e) => return Err((Verdict::Error, format!("preconditions: {e}"))),
            }
        }
        Ok(vars)
    }

    fn validate(
        &self,
        shared: &Shared,
        vars: &Vars,
        lookup: &dyn Lookup,
    ) -> (Verdict, String, u64) {
        let request = &shared.request;
        let Body::Validate { message, check } = &self.body else {
            if let Body::Unsupported(reason) = &self.body {
                return (Verdict::Skip, reason.clone(), 0);
            }
            return (Verdict::Skip, String::new(), 0);
        };
        // As Kyverno: the message is substituted only when it is needed (a
        // variable it reads may not exist on an object that passes).
        let message = || match message.as_deref().map(|m| vars.substitute_text(m)) {
            None => Ok(String::new()),
            Some(Ok(Value::String(m))) => Ok(m),
            Some(Ok(other)) => Ok(other.to_string()),
            Some(Err(e)) => Err(format!("message: {e}")),
        };
        let outcome = match check {
            Check::Pattern(p) => {
                check_patterns(request.object, std::slice::from_ref(p), vars, false)
            }
            Check::AnyPattern(ps) => check_patterns(request.object, ps, vars, true),
            Check::Deny(conditions) => check_deny(conditions, vars),
            Check::Foreach(entries) => check_foreach(entries, vars),
            Check::PodSecurity(standard, exclusions) => {
                check_pod_security(request.object, *standard, exclusions)
            }
            Check::Cel(validator, param_ref) => {
                let message = match message() {
                    Ok(message) => message,
                    Err(e) => return (Verdict::Error, e, 0),
                };
                return self.check_cel(validator, param_ref.as_ref(), shared, lookup, &message);
            }
        };
        match outcome {
            Ok(Outcome::Pass) => (Verdict::Pass, String::new(), 0),
            Ok(Outcome::Skip(why)) => (Verdict::Skip, why, 0),
            Ok(Outcome::Fail(detail)) => match message() {
                Ok(message) => (Verdict::Fail, self.failure_message(&message, &detail), 0),
                Err(e) => (Verdict::Error, e, 0),
            },
            Err(e) => (Verdict::Error, e, 0),
        }
    }

    fn failure_message(&self, message: &str, detail: &str) -> String {
        match (message.is_empty(), detail.is_empty()) {
            (_, true) => message.to_string(),
            (true, false) => format!("rule {} failed: {detail}", self.name),
            (false, false) => format!("validation error: {message}. rule {} {detail}", self.name),
        }
    }

    fn check_cel(
        &self,
        validator: &CelValidator,
        param_ref: Option<&Value>,
        shared: &Shared,
        lookup: &dyn Lookup,
        message: &str,
    ) -> (Verdict, String, u64) {
        let request = &shared.request;
        let params = match param_ref {
            None => None,
            Some(r) => {
                let (api_version, kind) = (
                    r["apiVersion"].as_str().unwrap_or_default(),
                    r["kind"].as_str().unwrap_or_default(),
                );
                let name = r["name"].as_str().unwrap_or_default();
                let namespace = r["namespace"].as_str().or(request.namespace());
                match lookup.get_object(api_version, kind, namespace, name) {
                    Some(p) => Some(p),
                    None => return (Verdict::Error, format!("params {kind} {name} not found"), 0),
                }
            }
        };
        match validator.run(shared, params.as_ref()) {
            Ok(CelOutcome::NotMatched) => (Verdict::Skip, "match conditions not met".into(), 0),
            Ok(CelOutcome::Passed { cost, .. }) => (Verdict::Pass, String::new(), cost),
            Ok(CelOutcome::Failed { messages, cost, .. }) => {
                let detail = messages.join("; ");
                let text = if message.is_empty() {
                    detail
                } else {
                    format!("{message}: {detail}")
                };
                (Verdict::Fail, text, cost)
            }
            Err(e) => (Verdict::Error, e, 0),
        }
    }
}

impl Body {
    fn parse(env: &Env, raw: &Value) -> Result<Body, String> {
        if let Some(generate) = raw.get("generate") {
            if generate.get("data").is_none()
                && !generate["clone"].is_object()
                && !generate["cloneList"].is_object()
            {
                return Ok(Body::Unsupported(
                    "foreach generate is not evaluated by gitplane; generate.data, clone and cloneList are"
                        .into(),
                ));
            }
            return Ok(Body::Generate(generate.clone()));
        }
        if raw.get("verifyImages").is_some() {
            return Ok(Body::Unsupported(
                "verifyImages needs the image registry; gitplane does not verify signatures".into(),
            ));
        }
        if let Some(mutate) = raw.get("mutate") {
            if mutate.get("targets").is_some() {
                return Ok(Body::Unsupported(
                    "mutate with targets changes existing resources in a cluster; gitplane does not run it".into(),
                ));
            }
            if mutate
                .get("mutateExistingOnPolicyUpdate")
                .is_some_and(|v| v == true)
            {
                return Ok(Body::Unsupported(
                    "mutateExistingOnPolicyUpdate needs a cluster".into(),
                ));
            }
            return Ok(Body::Mutate {
                smp: mutate.get("patchStrategicMerge").cloned(),
                json6902: mutate.get("patchesJson6902").cloned(),
                foreach: mutate["foreach"].as_array().cloned().unwrap_or_default(),
            });
        }
        let Some(validate) = raw.get("validate") else {
            return Err("one of validate, mutate, generate or verifyImages is required".into());
        };
        let message = validate["message"].as_str().map(str::to_string);
        let check = if let Some(p) = validate.get("pattern") {
            Check::Pattern(p.clone())
        } else if let Some(ps) = validate.get("anyPattern") {
            Check::AnyPattern(ps.as_array().cloned().ok_or("anyPattern must be a list")?)
        } else if let Some(deny) = validate.get("deny") {
            Check::Deny(deny.get("conditions").cloned().unwrap_or(Value::Null))
        } else if let Some(entries) = validate.get("foreach") {
            Check::Foreach(
                entries
                    .as_array()
                    .cloned()
                    .ok_or("foreach must be a list")?,
            )
        } else if let Some(cel) = validate.get("cel") {
            let validator =
                CelValidator::parse(env, cel, "expressions").map_err(|e| format!("cel: {e}"))?;
            let param_ref = cel.get("paramRef").map(|r| {
                let mut r = r.clone();
                if let Some(kind) = cel.get("paramKind") {
                    r["apiVersion"] = kind["apiVersion"].clone();
                    r["kind"] = kind["kind"].clone();
                }
                r
            });
            Check::Cel(Box::new(validator), param_ref)
        } else if let Some(ps) = validate.get("podSecurity") {
            parse_pod_security(ps)?
        } else if validate.get("manifests").is_some() {
            return Ok(Body::Unsupported(
                "validate.manifests (signed manifests) is not supported".into(),
            ));
        } else {
            return Err(
                "validate needs pattern, anyPattern, deny, foreach, cel or podSecurity".into(),
            );
        };
        Ok(Body::Validate { message, check })
    }
}

fn parse_pod_security(ps: &Value) -> Result<Check, String> {
    let level = ps["level"]
        .as_str()
        .ok_or("podSecurity.level is required")?;
    let version = ps["version"].as_str().unwrap_or("latest");
    let standard =
        Standard::parse(&format!("{level}:{version}")).map_err(|e| format!("podSecurity: {e}"))?;
    let mut exclusions = Vec::new();
    for e in ps["exclude"].as_array().into_iter().flatten() {
        if e.get("restrictedField").is_some() || e.get("values").is_some() {
            return Err("podSecurity.exclude with restrictedField/values is not supported".into());
        }
        let control = e["controlName"]
            .as_str()
            .ok_or("podSecurity.exclude: controlName is required")?;
        let checks = pss::checks_of_control(control)
            .ok_or_else(|| format!("podSecurity.exclude: unknown controlName {control:?}"))?;
        exclusions.push(Exclusion {
            checks,
            images: crate::source::strings(&e["images"]),
        });
    }
    Ok(Check::PodSecurity(standard, exclusions))
}

/// A context entry's value: `variable` entries are evaluated; entries that
/// read the cluster or a registry need supplied values.
fn context_entry(entry: &Value, vars: &Vars) -> Result<Value, String> {
    let Some(variable) = entry.get("variable") else {
        let kind = ["apiCall", "configMap", "imageRegistry", "globalReference"]
            .into_iter()
            .find(|k| entry.get(k).is_some())
            .unwrap_or("this kind of");
        return Err(format!(
            "a {kind} context entry needs a cluster: supply its value (a Values file's rule values)"
        ));
    };
    let mut value = match variable.get("value") {
        Some(v) => vars.substitute(v)?,
        None => Value::Null,
    };
    if let Some(path) = variable["jmesPath"].as_str() {
        let path = match vars.substitute_text(path)? {
            Value::String(p) => p,
            other => other.to_string(),
        };
        value = if variable.get("value").is_some() {
            let mut scoped = Map::new();
            scoped.insert("value".into(), value);
            Vars::new(&scoped)
                .search(&format!("value.{path}"))
                .or_else(|_| vars.search(&path))?
        } else {
            vars.search(&path)?
        };
    }
    if value.is_null()
        && let Some(default) = variable.get("default")
    {
        value = vars.substitute(default)?;
    }
    Ok(value)
}

/// A check's result before messages are added.
enum Outcome {
    Pass,
    Skip(String),
    Fail(String),
}

fn check_patterns(
    resource: &Value,
    patterns: &[Value],
    vars: &Vars,
    any: bool,
) -> Result<Outcome, String> {
    let mut failures = Vec::new();
    let mut skipped = 0;
    for (i, pattern) in patterns.iter().enumerate() {
        let pattern = vars.substitute(pattern)?;
        match pattern::validate(resource, &pattern) {
            Ok(()) => {
                if any {
                    return Ok(Outcome::Pass);
                }
            }
            Err(Mismatch::GlobalSkip { path }) => {
                return Ok(Outcome::Skip(format!(
                    "global anchor at {path} does not match"
                )));
            }
            Err(Mismatch::Skip { path }) => {
                skipped += 1;
                if !any {
                    return Ok(Outcome::Skip(format!(
                        "conditional anchor at {path} does not match"
                    )));
                }
            }
            Err(Mismatch::Fail { path, message }) => {
                let which = if any { format!("[{i}]") } else { String::new() };
                failures.push(format!("{which}failed at path {path}: {message}"));
            }
        }
    }
    if failures.is_empty() {
        return Ok(if any && skipped == patterns.len() {
            Outcome::Skip("no pattern applies".into())
        } else {
            Outcome::Pass
        });
    }
    Ok(Outcome::Fail(failures.join("; ")))
}

fn check_deny(conditions: &Value, vars: &Vars) -> Result<Outcome, String> {
    let (denied, messages) = conditions::holds(conditions, vars)?;
    Ok(if denied {
        Outcome::Fail(messages.join("; "))
    } else {
        Outcome::Pass
    })
}

/// The elements of a `foreach` entry's `list`, each with the variables it
/// is checked with (`element`, `elementIndex`, the entry's context), those
/// its preconditions leave out dropped.
fn foreach_scopes(entry: &Value, vars: &Vars) -> Result<Vec<(usize, Value, Vars)>, String> {
    let list = entry["list"].as_str().ok_or("foreach: list is required")?;
    let elements = match vars.search(list)? {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let mut scopes = Vec::new();
    for (i, element) in elements.into_iter().enumerate() {
        let mut scoped = vars.clone();
        scoped.set("element", &element);
        scoped.set("elementIndex", &Value::from(i));
        for c in entry["context"].as_array().into_iter().flatten() {
            let value = context_entry(c, &scoped)?;
            scoped.set(c["name"].as_str().unwrap_or_default(), &value);
        }
        if let Some(pre) = entry.get("preconditions")
            && !conditions::holds(pre, &scoped)?.0
        {
            continue;
        }
        scopes.push((i, element, scoped));
    }
    Ok(scopes)
}

fn check_foreach(entries: &[Value], vars: &Vars) -> Result<Outcome, String> {
    let mut applied = false;
    for entry in entries {
        let list = entry["list"].as_str().unwrap_or_default();
        for (i, element, scoped) in foreach_scopes(entry, vars)? {
            let outcome = if let Some(p) = entry.get("pattern") {
                check_patterns(&element, std::slice::from_ref(p), &scoped, false)?
            } else if let Some(ps) = entry.get("anyPattern").and_then(Value::as_array) {
                check_patterns(&element, ps, &scoped, true)?
            } else if let Some(deny) = entry.get("deny") {
                check_deny(deny.get("conditions").unwrap_or(&Value::Null), &scoped)?
            } else if let Some(nested) = entry.get("foreach").and_then(Value::as_array) {
                check_foreach(nested, &scoped)?
            } else {
                return Err("foreach needs pattern, anyPattern, deny or foreach".into());
            };
            match outcome {
                Outcome::Fail(detail) => {
                    let detail = if detail.is_empty() {
                        detail
                    } else {
                        format!(": {detail}")
                    };
                    return Ok(Outcome::Fail(format!(
                        "failed at element {i} of {list}{detail}"
                    )));
                }
                Outcome::Pass => applied = true,
                Outcome::Skip(_) => {}
            }
        }
    }
    Ok(if applied {
        Outcome::Pass
    } else {
        Outcome::Skip("no element to check".into())
    })
}

/// The object a `generate` rule with `data` creates: its kind, name and
/// namespace, and the data's fields, variables substituted.
fn generated_object(spec: &Value, vars: &Vars, lookup: &dyn Lookup) -> Result<Object, String> {
    let spec = vars.substitute(spec)?;
    let text = |key: &str| spec[key].as_str().unwrap_or_default().to_string();
    let (kind, name) = (text("kind"), text("name"));
    if kind.is_empty() || name.is_empty() {
        return Err("generate: kind and name are required".to_string());
    }
    let mut body = match (spec.get("data"), spec.get("clone")) {
        (Some(Value::Object(data)), _) => data.clone(),
        (_, Some(clone)) => cloned_body(&text("apiVersion"), &kind, clone, lookup)?,
        _ => Map::new(),
    };
    let mut metadata = match body.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    metadata.insert("name".into(), Value::String(name));
    let namespace = text("namespace");
    if !namespace.is_empty() {
        metadata.insert("namespace".into(), Value::String(namespace));
    }
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(text("apiVersion")));
    object.insert("kind".into(), Value::String(kind));
    object.insert("metadata".into(), Value::Object(metadata));
    object.extend(body);
    Ok(Object::new(object))
}

/// What `generate.cloneList` makes: a copy, in the rule's namespace and
/// under its own name, of every object of `kinds` (`v1/Secret`,
/// `apps/v1/Deployment`) in the source namespace that `selector` selects.
fn cloned_list(
    spec: &Value,
    vars: &Vars,
    lookup: &dyn Lookup,
) -> Result<Vec<(Object, Option<gitplane_object::ObjectKey>)>, String> {
    let spec = vars.substitute(spec)?;
    let list = &spec["cloneList"];
    let source_namespace = list["namespace"].as_str().filter(|ns| !ns.is_empty());
    let selector = match list.get("selector").filter(|s| !s.is_null()) {
        Some(s) => LabelSelector::from_json(s).map_err(|e| format!("cloneList.selector: {e}"))?,
        None => LabelSelector::default(),
    };
    let target_namespace = spec["namespace"].as_str().unwrap_or_default();
    let mut made = Vec::new();
    for kind in crate::source::strings(&list["kinds"]) {
        let (api_version, kind) = kind
            .rsplit_once('/')
            .ok_or_else(|| format!("cloneList.kinds: {kind:?} is not apiVersion/Kind"))?;
        for source in lookup.list_objects(api_version, kind, source_namespace, &selector) {
            let name = source["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let one = json!({
                "apiVersion": api_version,
                "kind": kind,
                "name": name,
                "namespace": target_namespace,
                "clone": {"namespace": source_namespace.unwrap_or_default(), "name": name},
            });
            let object = generated_object(&one, &Vars::new(&Map::new()), lookup)?;
            made.push((object, None));
        }
    }
    Ok(made)
}

/// The sources of the synchronized `clone` rules that name them without
/// variables, by rule.
fn literal_clone_sources(rules: &[Rule]) -> Vec<(String, gitplane_object::ObjectKey)> {
    rules
        .iter()
        .filter_map(|rule| {
            let Body::Generate(spec) = &rule.body else {
                return None;
            };
            let literal = !spec["clone"].to_string().contains("{{");
            (spec["synchronize"].as_bool() == Some(true) && literal)
                .then(|| clone_source(spec, &Vars::new(&Map::new())))
                .flatten()
                .map(|source| (rule.name.clone(), source))
        })
        .collect()
}

/// The object a `clone` rule copies from, variables substituted.
fn clone_source(spec: &Value, vars: &Vars) -> Option<gitplane_object::ObjectKey> {
    let clone = spec.get("clone").filter(|c| c.is_object())?;
    let clone = vars.substitute(clone).ok()?;
    let (group, _) =
        gitplane_object::split_api_version(spec["apiVersion"].as_str().unwrap_or_default());
    Some(gitplane_object::ObjectKey::new(
        group,
        spec["kind"].as_str().unwrap_or_default(),
        clone["namespace"].as_str().unwrap_or_default(),
        clone["name"].as_str().unwrap_or_default(),
    ))
}

/// What `generate.clone` copies: the source object without what the API
/// server owns (identity, versions, managed fields, owners, status); its
/// labels, annotations and data stay, as Kyverno's clone keeps them.
fn cloned_body(
    api_version: &str,
    kind: &str,
    clone: &Value,
    lookup: &dyn Lookup,
) -> Result<Map<String, Value>, String> {
    let name = clone["name"].as_str().unwrap_or_default();
    let namespace = clone["namespace"].as_str().filter(|ns| !ns.is_empty());
    let source = lookup
        .get_object(api_version, kind, namespace, name)
        .ok_or_else(|| {
            format!(
                "generate.clone: source {kind} {}{name} not found",
                namespace.map(|ns| format!("{ns}/")).unwrap_or_default()
            )
        })?;
    let Value::Object(mut body) = source else {
        return Err("generate.clone: the source is not an object".into());
    };
    body.remove("status");
    if let Some(Value::Object(metadata)) = body.get_mut("metadata") {
        metadata.retain(|key, _| matches!(key.as_str(), "labels" | "annotations"));
    }
    Ok(body)
}

fn check_pod_security(
    object: &Value,
    standard: Standard,
    exclusions: &[Exclusion],
) -> Result<Outcome, String> {
    let Some((metadata, spec)) = pss::pod_of(object) else {
        return Ok(Outcome::Skip("not a pod or pod controller".into()));
    };
    let mut failures = pss::check_pod(metadata, spec, standard);
    // An exclusion without images exempts its controls entirely; one with
    // images exempts the containers running them. Several exclusions of one
    // control add up, whatever their order.
    let whole: Vec<&str> = exclusions
        .iter()
        .filter(|e| e.images.is_empty())
        .flat_map(|e| e.checks.iter().copied())
        .collect();
    failures.retain(|f| !whole.contains(&f.check));
    let mut by_images: Vec<(&str, Vec<String>)> = Vec::new();
    for exclusion in exclusions.iter().filter(|e| !e.images.is_empty()) {
        for check in exclusion.checks.iter().filter(|c| !whole.contains(c)) {
            match by_images.iter_mut().find(|(c, _)| c == check) {
                Some((_, images)) => images.extend(exclusion.images.iter().cloned()),
                None => by_images.push((check, exclusion.images.clone())),
            }
        }
    }
    for (check, images) in by_images {
        // Recheck the control without the exempt images' containers.
        let pruned = without_images(spec, &images);
        let kept: Vec<pss::Failure> = pss::check_pod(metadata, &pruned, standard)
            .into_iter()
            .filter(|f| f.check == check)
            .collect();
        failures.retain(|f| f.check != check);
        failures.extend(kept);
    }
    Ok(if failures.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(pss::summary(standard, &failures))
    })
}

fn without_images(spec: &Value, images: &[String]) -> Value {
    let mut pruned = spec.clone();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::Array(items)) = pruned.get_mut(list) {
            items.retain(|c| {
                let image = c["image"].as_str().unwrap_or_default();
                !images.iter().any(|p| wildcard_match(p, image))
            });
        }
    }
    pruned
}
