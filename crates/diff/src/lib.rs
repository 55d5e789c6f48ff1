//! Desired versus live, per object.
//!
//! The desired side is best given as the API server's answer to a
//! server-side dry-run apply of the desired object: exactly what it would
//! store, defaults included, so defaulting never shows up as drift. Where
//! there is no such answer (the kind is not served yet, the namespace does not
//! exist yet) the desired object is laid over the live one instead, which
//! keeps fields the server added. Then both sides lose what is always
//! ignored (status, server-owned metadata, the last-applied annotation) and
//! what the `ignoreDifferences` rules name, and are compared. Secret values
//! are masked in everything this crate returns.

mod ignore;
mod jq;
mod normalize;
mod paths;

use gitplane_object::{Object, ObjectKey, yaml::to_yaml};
use serde::Serialize;
use serde_json::Value;

pub use ignore::{IgnoreRule, keep_live_values};
pub use jq::{JqEvaluator, JqJob, JsonPath, PathStep, UnboundedJq, jq_paths};
pub use normalize::{LAST_APPLIED, normalize};

/// An object that cannot be compared.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}: {message}")]
pub struct DiffError {
    /// The object.
    pub key: ObjectKey,
    /// Why.
    pub message: String,
}

/// How to compare.
pub struct DiffOptions<'a> {
    /// `ignoreDifferences` rules (each applies to the objects it matches).
    pub rules: &'a [IgnoreRule],
    /// Evaluates `jqPathExpressions` within a budget.
    pub jq: &'a dyn JqEvaluator,
}

/// The comparison of one object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDiff {
    /// The object.
    pub key: ObjectKey,
    /// Whether desired and live differ (including one of them missing).
    pub modified: bool,
    /// The desired side, normalized and masked (`None`: to be pruned).
    pub target: Option<Value>,
    /// The live side, normalized and masked (`None`: missing).
    pub live: Option<Value>,
    /// A unified diff of the two as YAML, empty when they are equal.
    pub text: String,
}

/// The desired object laid over the live one: maps merge, arrays of equal
/// length merge element by element, anything else is the desired value.
/// What the server added (defaults) stays, so only real changes differ.
pub fn overlay(live: &Value, desired: &Value) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            let mut out = l.clone();
            for (k, v) in d {
                let merged = match l.get(k) {
                    Some(lv) => overlay(lv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(d)) if l.len() == d.len() => {
            Value::Array(l.iter().zip(d).map(|(l, d)| overlay(l, d)).collect())
        }
        (_, d) => d.clone(),
    }
}

/// Compares one object. `desired` is what Git says (`None`: the object is
/// no longer desired), `predicted` the server's dry-run answer for it if
/// there is one, `live` what the cluster has (`None`: missing).
pub fn diff(
    key: &ObjectKey,
    desired: Option<&Object>,
    predicted: Option<&Object>,
    live: Option<&Object>,
    options: &DiffOptions<'_>,
) -> Result<ObjectDiff, DiffError> {
    let fail = |message: String| DiffError {
        key: key.clone(),
        message,
    };
    let mut live_side = live.map(Object::to_value);
    let mut target = match (predicted, desired, &live_side) {
        (Some(p), _, _) => Some(p.to_value()),
        (None, Some(d), Some(l)) => {
            let mut d = d.to_value();
            normalize::fold_string_data(&mut d);
            Some(overlay(l, &d))
        }
        (None, Some(d), None) => {
            let mut d = d.to_value();
            normalize::fold_string_data(&mut d);
            Some(d)
        }
        (None, None, _) => None,
    };
    let rules: Vec<&IgnoreRule> = options.rules.iter().filter(|r| r.matches(key)).collect();
    // Ignore rules read the live object as it was; only they need a copy.
    let live_raw = if rules.is_empty() {
        None
    } else {
        live_side.clone()
    };
    for side in [target.as_mut(), live_side.as_mut()].into_iter().flatten() {
        if !rules.is_empty() {
            let ignored =
                ignore::ignored_paths(&rules, side, live_raw.as_ref(), options.jq).map_err(fail)?;
            paths::remove_all(side, ignored);
        }
        normalize(side);
    }
    let modified = target != live_side;
    normalize::mask_secrets([target.as_mut(), live_side.as_mut()]);
    let text = if modified {
        unified(key, live_side.as_ref(), target.as_ref())
    } else {
        String::new()
    };
    Ok(ObjectDiff {
        key: key.clone(),
        modified,
        target,
        live: live_side,
        text,
    })
}

/// A unified diff of the live and desired YAML.
fn unified(key: &ObjectKey, live: Option<&Value>, target: Option<&Value>) -> String {
    let yaml = |v: Option<&Value>| v.map(to_yaml).unwrap_or_default();
    let (before, after) = (yaml(live), yaml(target));
    let name = format!("{}.{}.{}.{}", key.group, key.kind, key.namespace, key.name);
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{name}"), &format!("desired/{name}"))
        .to_string()
}
