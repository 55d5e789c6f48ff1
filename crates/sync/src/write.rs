//! Writing one object as the sync options say: server-side apply (the
//! default), `Replace=true`, or a client-side-style three-way update when
//! server-side apply is off; `Force=true` re-creates an object whose
//! immutable fields changed.

use std::time::{Duration, Instant};

use gitplane_cluster::{ApplyOptions, Cluster, Propagation};
use gitplane_object::Object;
use serde_json::{Map, Value};

use crate::SyncOptions;
use crate::options::ResourceOptions;

/// How long a forced re-creation waits for the old object to go. A
/// background deletion of an object without finalizers is immediate, so
/// this is rarely reached; it bounds the rare case that is not.
const FORCE_DELETE_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// Writes `object` (the desired state) and returns it as stored.
pub(crate) async fn write(
    cluster: &Cluster,
    options: &SyncOptions,
    object: &Object,
) -> Result<Object, String> {
    let resource = ResourceOptions::of(object);
    let replace = options.replace || resource.replace;
    let force = options.force || resource.force;
    let ssa = options.server_side_apply && resource.server_side_apply != Some(false);
    let live = if replace || !ssa {
        cluster
            .get_key(&object.key())
            .await
            .map_err(|e| e.to_string())?
    } else {
        None
    };
    let result = if replace {
        match &live {
            Some(live) => cluster.replace(object, live, false).await,
            None => cluster.create(object, false).await,
        }
    } else if ssa {
        cluster.apply(object, &ApplyOptions::default()).await
    } else {
        let patched = client_side_apply(object, live.as_ref());
        match &live {
            Some(live) => cluster.replace(&patched, live, false).await,
            None => cluster.create(&patched, false).await,
        }
    };
    match result {
        // An immutable field changed: `Force=true` deletes and re-creates.
        Err(e) if force && e.code() == Some(422) => {
            cluster
                .delete(object, Propagation::Background, false)
                .await
                .map_err(|e| e.to_string())?;
            wait_gone(cluster, object).await?;
            cluster
                .create(object, false)
                .await
                .map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

async fn wait_gone(cluster: &Cluster, object: &Object) -> Result<(), String> {
    let deadline = Instant::now() + FORCE_DELETE_WAIT;
    while cluster
        .get_key(&object.key())
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        if Instant::now() > deadline {
            return Err(format!(
                "{} was not deleted within {FORCE_DELETE_WAIT:?} for Force=true",
                object.key()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// `ServerSideApply=false`: the desired object laid over the live one, with
/// fields the last applied configuration had but the desired one dropped
/// removed (client-side apply's three-way merge), and the new last-applied
/// annotation. Lists are replaced whole.
fn client_side_apply(desired: &Object, live: Option<&Object>) -> Object {
    let mut config = desired.to_value();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(Value::Object(annotations)) = meta.get_mut("annotations")
    {
        annotations.shift_remove(gitplane_diff::LAST_APPLIED);
    }
    let mut result = match live {
        Some(live) => {
            let last: Value = live
                .annotation(gitplane_diff::LAST_APPLIED)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null);
            let mut merged = live.to_value();
            three_way(&mut merged, &last, &config);
            merged
        }
        None => config.clone(),
    };
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(annotations) = annotations {
            annotations.insert(
                gitplane_diff::LAST_APPLIED.into(),
                Value::String(config.to_string()),
            );
        }
    }
    Object::try_from(result).unwrap_or_else(|_| desired.clone())
}

/// Sets `desired`'s fields in `live` and removes those only `last` had.
fn three_way(live: &mut Value, last: &Value, desired: &Value) {
    let (Value::Object(live_map), Value::Object(desired_map)) = (&mut *live, desired) else {
        *live = desired.clone();
        return;
    };
    if let Value::Object(last_map) = last {
        for key in last_map.keys() {
            if !desired_map.contains_key(key) {
                live_map.shift_remove(key);
            }
        }
    }
    for (key, value) in desired_map {
        let previous = last.get(key).unwrap_or(&Value::Null);
        match live_map.get_mut(key) {
            Some(current) if value.is_object() && current.is_object() => {
                three_way(current, previous, value)
            }
            _ => {
                live_map.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn three_way_removes_only_what_the_last_apply_set() {
        let mut live = json!({"a": 1, "b": 2, "c": {"x": 1, "y": 2}, "server": true});
        let last = json!({"a": 1, "b": 2, "c": {"x": 1, "y": 2}});
        let desired = json!({"a": 5, "c": {"x": 1}});
        three_way(&mut live, &last, &desired);
        assert_eq!(live, json!({"a": 5, "c": {"x": 1}, "server": true}));
    }
}
