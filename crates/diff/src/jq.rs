//! Argo CD's `jqPathExpressions`: jq expressions whose paths are ignored.
//!
//! jq is a full language: `until(false; [.] + [1])` runs until the machine is
//! out of memory (CVE-2024-32476). The evaluation itself ([`jq_paths`]) has
//! no budget, so it must run where one is enforced: the `gitplane` binary
//! runs it in a child process with memory and CPU limits and a timeout, and
//! passes that in as a [`JqEvaluator`]. [`UnboundedJq`] runs in-process, for
//! tests and trusted expressions only.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PathStep {
    /// A field of an object.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// A path into a JSON value.
pub type JsonPath = Vec<PathStep>;

/// One expression to evaluate on one value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JqJob {
    /// The jq expression.
    pub expression: String,
    /// The value it runs on.
    pub value: Value,
}

/// Something that evaluates jq path expressions, within whatever budget it
/// enforces. Jobs are given in batches so a sandbox pays its start-up once.
pub trait JqEvaluator: Send + Sync {
    /// The paths each job's expression selects, or why not.
    fn paths(&self, jobs: &[JqJob]) -> Vec<Result<Vec<JsonPath>, String>>;
}

/// In-process evaluation with no budget at all. Only for expressions you
/// wrote yourself; never for ones from a repository.
pub struct UnboundedJq;

impl JqEvaluator for UnboundedJq {
    fn paths(&self, jobs: &[JqJob]) -> Vec<Result<Vec<JsonPath>, String>> {
        jobs.iter()
            .map(|job| jq_paths(&job.expression, &job.value))
            .collect()
    }
}

/// The paths `expression` selects in `value` (jq's `path(expression)`).
/// Unbounded: see the module documentation.
pub fn jq_paths(expression: &str, value: &Value) -> Result<Vec<JsonPath>, String> {
    let code = format!("[path({expression})]");
    let program = File {
        code: code.as_str(),
        path: (),
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(&arena, program)
        .map_err(|_| format!("cannot parse the jq expression {expression:?}"))?;
    let filter = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|_| format!("cannot compile the jq expression {expression:?}"))?;
    let input: Val = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut outputs = filter.id.run((ctx, input)).map(unwrap_valr);
    let paths = match outputs.next() {
        Some(Ok(paths)) => paths,
        Some(Err(e)) => return Err(format!("jq expression {expression:?}: {e}")),
        None => return Ok(Vec::new()),
    };
    let paths: Value = serde_json::from_str(&paths.to_string()).map_err(|e| e.to_string())?;
    serde_json::from_value(paths).map_err(|e| format!("jq expression {expression:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_paths() {
        let deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a"}, {"name": "sidecar", "image": "b"}
        ]}}}});
        let paths = jq_paths(
            r#".spec.template.spec.containers[] | select(.name == "sidecar") | .image"#,
            &deployment,
        )
        .unwrap();
        use PathStep::{Index, Key};
        assert_eq!(
            paths,
            [vec![
                Key("spec".into()),
                Key("template".into()),
                Key("spec".into()),
                Key("containers".into()),
                Index(1),
                Key("image".into())
            ]]
        );
        assert!(jq_paths(".nothing.here", &deployment).unwrap().len() == 1);
        assert!(jq_paths("this is not jq", &deployment).is_err());
        assert!(
            jq_paths("1 + 1", &deployment).is_err(),
            "not a path expression"
        );
    }
}
