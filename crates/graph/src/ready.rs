//! Whether a resource's live objects are ready (`readyWhen`).

use gitplane_cel::{Activation, CelError};
use serde_json::Value as Json;

use crate::rgd::Resource;

/// Whether every `readyWhen` holds for the live objects of a resource (one
/// object, or every item of a collection, bound as `each`). A resource
/// without `readyWhen` is ready once it exists. A condition that reads a
/// field the object does not have yet is not ready; one that fails on data
/// that is there, or is not a bool, is an error (its message says which).
pub fn is_ready(resource: &Resource, live: &[Json]) -> Result<bool, String> {
    let name = if resource.is_collection() {
        "each"
    } else {
        resource.id.as_str()
    };
    for object in live {
        let activation = Activation::new().with_json(name, object);
        for (i, program) in resource.ready_when.iter().enumerate() {
            match program.evaluate_json(&activation) {
                Ok(Json::Bool(true)) => {}
                Ok(Json::Bool(false)) => return Ok(false),
                Ok(other) => {
                    return Err(format!(
                        "resource {:?}, readyWhen[{i}] `{}`: must be a bool, found {}",
                        resource.id,
                        program.source(),
                        crate::template::type_name(&other)
                    ));
                }
                Err(CelError::Evaluation(message)) if message.starts_with("no such key") => {
                    return Ok(false);
                }
                Err(e) => {
                    return Err(format!(
                        "resource {:?}, readyWhen[{i}] `{}`: {e}",
                        resource.id,
                        program.source()
                    ));
                }
            }
        }
    }
    Ok(true)
}
