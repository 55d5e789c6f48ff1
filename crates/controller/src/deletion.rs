//! Deleting an Application: with Argo CD's resources finalizer, its
//! resources go first (hooks and all), then the finalizer is removed;
//! without it, they stay.

use gitplane_cluster::Propagation;
use gitplane_object::Object;
use serde_json::{Value, json};

use crate::Controller;
use crate::spec::{AppSpec, RESOURCES_FINALIZER, app_spec};

impl Controller {
    pub(crate) async fn delete_application(&self, app: &Object) -> Result<(), String> {
        let finalizers: Vec<String> = app
            .get(&["metadata", "finalizers"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        if !finalizers.iter().any(|f| f == RESOURCES_FINALIZER) {
            return Ok(()); // the API server deletes it; resources stay
        }
        let spec = app_spec(app).unwrap_or_else(|_| AppSpec::default());
        let remaining = match self.destination(&spec).await {
            Ok((cluster, _)) => {
                let tracked = cluster
                    .tracked_objects(Some(app.name()), None)
                    .await
                    .map_err(|e| e.to_string())?;
                for object in &tracked {
                    if let Err(e) = cluster.delete(object, Propagation::Foreground, false).await
                        && !e.is_not_found()
                    {
                        return Err(format!("deleting {}: {e}", object.key()));
                    }
                }
                tracked.len()
            }
            // A destination that cannot be reached has nothing gitplane can delete.
            Err(_) => 0,
        };
        if remaining > 0 {
            // Foreground deletion takes a moment; look again soon.
            self.queue.add_at(
                app.name(),
                std::time::Instant::now() + std::time::Duration::from_millis(500),
            );
            return Ok(());
        }
        let kept: Vec<&String> = finalizers
            .iter()
            .filter(|f| *f != RESOURCES_FINALIZER)
            .collect();
        self.write_patch(app, json!({"metadata": {"finalizers": kept}}))
            .await
    }
}
