//! Assertion trees, as the Kyverno CLI's `checks` use them (kyverno-json's
//! form): a tree holds when every field it names holds in the value, at any
//! depth. A key written `(expression)` is a JMESPath projection of the value
//! (`(length(spec.containers))`, `(status != 'pass')`) instead of a field; a
//! list holds element by element, at the same length; a scalar equals the
//! value (numbers by value). Not supported: kyverno-json's `~` iteration
//! keys and `$` bindings, which are refused rather than ignored.

use gitplane_object::Value;

use super::values::loosely_equal;
use super::vars::Vars;

/// Whether `tree` holds in `value`; `Err` says where it does not.
pub fn holds(tree: &Value, value: &Value) -> Result<(), String> {
    check(tree, value, "")
}

fn check(tree: &Value, value: &Value, path: &str) -> Result<(), String> {
    match tree {
        Value::Object(fields) => {
            for (key, subtree) in fields {
                let (projected, step) = project(key, value, path)?;
                check(subtree, &projected, &step)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let Value::Array(values) = value else {
                return Err(format!("{}: expected a list, found {value}", shown(path)));
            };
            if items.len() != values.len() {
                return Err(format!(
                    "{}: expected {} elements, found {}",
                    shown(path),
                    items.len(),
                    values.len()
                ));
            }
            for (i, (item, value)) in items.iter().zip(values).enumerate() {
                check(item, value, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        scalar if loosely_equal(value, scalar) => Ok(()),
        scalar => Err(format!("{}: expected {scalar}, found {value}", shown(path))),
    }
}

/// The value a key of the tree names, and its path for messages.
fn project(key: &str, value: &Value, path: &str) -> Result<(Value, String), String> {
    if let Some(expression) = key.strip_prefix('(').and_then(|k| k.strip_suffix(')')) {
        let projected =
            Vars::search_in(value, expression).map_err(|e| format!("{}: {e}", shown(path)))?;
        return Ok((projected, format!("{path}.({expression})")));
    }
    if key.starts_with('~') || key.starts_with('$') {
        return Err(format!(
            "{}: assertion key {key:?} (kyverno-json iteration or binding) is not supported",
            shown(path)
        ));
    }
    let field = value.get(key).cloned().unwrap_or(Value::Null);
    Ok((field, format!("{path}.{key}")))
}

fn shown(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_projections_lists_and_scalars() {
        let value = json!({"kind": "Pod", "metadata": {"name": "web", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "app"}, {"name": "proxy"}]}, "status": "fail"});
        assert!(holds(&json!({"kind": "Pod", "metadata": {"name": "web"}}), &value).is_ok());
        assert!(holds(&json!({"(length(spec.containers))": 2}), &value).is_ok());
        assert!(holds(&json!({"(status != 'pass')": true}), &value).is_ok());
        assert!(
            holds(
                &json!({"spec": {"containers": [{"name": "app"}, {}]}}),
                &value
            )
            .is_ok()
        );
        let err = holds(&json!({"metadata": {"name": "api"}}), &value).unwrap_err();
        assert!(err.contains(".metadata.name"), "{err}");
        assert!(holds(&json!({"spec": {"containers": [{"name": "app"}]}}), &value).is_err());
        assert!(holds(&json!({"missing": "x"}), &value).is_err());
        assert!(holds(&json!({"~.(spec.containers)": {"name": "app"}}), &value).is_err());
    }
}
