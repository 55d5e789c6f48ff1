//! Kyverno's CEL `GeneratingPolicy` (`policies.kyverno.io`): for a request
//! `matchConstraints` select, `variables` and then `matchConditions` are
//! evaluated as a MutatingPolicy's are, then each `generate` expression;
//! what `generator.Apply(namespace, objects)` is given is what the policy
//! creates. `evaluation.synchronize.enabled` keeps the objects as a
//! synchronized generate rule keeps them.
//!
//! A request the policy generates for gives a `pass`; a false match
//! condition, no result (Kyverno's CLI reports `skip`); an expression that
//! fails, an `error`. Objects read with `resource.Get` come from a test's
//! Context file (see [`gitplane_cel::supplied`]).

use std::cell::Cell;
use std::sync::Arc;

use gitplane_cel::{Env, Program};
use gitplane_object::{Object, Value};

use super::Generated;
use crate::result::{Engine, Mode, RuleResult, Verdict};
use crate::shared::Shared;
use crate::vap::{CelPrelude, FailurePolicy, MatchResources, Prepared};

/// A compiled GeneratingPolicy.
#[derive(Debug)]
pub struct GeneratingPolicy {
    /// `metadata.name`.
    pub name: String,
    matcher: MatchResources,
    prelude: CelPrelude,
    generate: Vec<Arc<Program>>,
    synchronize: bool,
}

impl GeneratingPolicy {
    /// Compiles a GeneratingPolicy.
    pub fn parse(env: &Env, object: &Object) -> Result<GeneratingPolicy, String> {
        let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
        let mut generate = Vec::new();
        for (i, entry) in spec["generate"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let source = entry["expression"]
                .as_str()
                .ok_or_else(|| format!("generate[{i}]: expression is required"))?;
            generate.push(
                env.compile(source)
                    .map_err(|e| format!("generate[{i}]: {e}"))?,
            );
        }
        if generate.is_empty() {
            return Err("spec.generate is required".into());
        }
        Ok(GeneratingPolicy {
            name: object.name().to_string(),
            matcher: MatchResources::parse(&spec["matchConstraints"])?,
            prelude: CelPrelude::parse(env, &spec)?.with_variables_in_conditions(),
            generate,
            synchronize: spec["evaluation"]["synchronize"]["enabled"].as_bool() == Some(true),
        })
    }

    /// What the policy creates for the request, and its result.
    pub fn generate(&self, shared: &Shared, results: &mut Vec<RuleResult>) -> Vec<Generated> {
        if !self.matcher.matches(&shared.request) {
            return Vec::new();
        }
        let cost = Cell::new(0);
        let outcome =
            self.prelude
                .prepare(shared, None, &cost)
                .and_then(|prepared| match prepared {
                    None => Ok(None),
                    Some(prepared) => self.objects(prepared).map(Some),
                });
        let result = |verdict, message: String| {
            RuleResult::new(
                Engine::Kyverno,
                &self.name,
                "",
                verdict,
                Mode::Enforce,
                message,
            )
        };
        match outcome {
            Ok(Some(objects)) => {
                results.push(result(
                    Verdict::Pass,
                    format!("{} to create", objects.len()),
                ));
                objects
                    .into_iter()
                    .map(|object| Generated {
                        policy: self.name.clone(),
                        rule: String::new(),
                        object,
                        synchronize: self.synchronize,
                        clone_source: None,
                    })
                    .collect()
            }
            Ok(None) => Vec::new(),
            Err(message) => {
                if self.prelude.failure_policy == FailurePolicy::Fail {
                    results.push(result(Verdict::Error, message));
                }
                Vec::new()
            }
        }
    }

    /// The objects the `generate` expressions give to `generator.Apply`.
    fn objects(&self, mut prepared: Prepared) -> Result<Vec<Object>, String> {
        prepared
            .activation
            .set_json("generator", &gitplane_cel::supplied::generator_variable());
        let mut objects = Vec::new();
        for (i, program) in self.generate.iter().enumerate() {
            if let Some((name, e)) = prepared.broken_variable(program) {
                return Err(format!("generate[{i}]: variable {name:?} failed: {e}"));
            }
            let produced = program
                .evaluate_json(&prepared.activation)
                .map_err(|e| format!("generate[{i}]: {e}"))?;
            for object in produced.as_array().into_iter().flatten() {
                let Value::Object(body) = object else {
                    return Err(format!("generate[{i}]: {object} is not an object"));
                };
                objects.push(Object::new(body.clone()));
            }
        }
        Ok(objects)
    }
}
