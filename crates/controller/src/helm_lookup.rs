//! Helm's `lookup`, answered read-only from the destination cluster for
//! applications that opt in (annotation `gitplane.dev/helm-lookup: "true"`,
//! allowed by their project with `gitplane.dev/allow-helm-lookup: "true"`),
//! so a chart that keeps an existing Secret's password finds it, as
//! `helm install` would, instead of drawing a new one (argo-cd#5202).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gitplane_cluster::Cluster;
use gitplane_object::Gvk;
use gitplane_render::helm::Lookup;
use serde_json::{Value, json};

/// The Application annotation that asks for `lookup` from the cluster.
pub const APP_ANNOTATION: &str = "gitplane.dev/helm-lookup";
/// The AppProject annotation that allows its applications to ask.
pub const PROJECT_ANNOTATION: &str = "gitplane.dev/allow-helm-lookup";

/// The most `lookup` calls one render may make: each is a request to the
/// cluster, and a template can loop.
pub const MAX_LOOKUPS: usize = 1_000;

/// A [`Lookup`] reading `cluster`, for one render; called from a blocking
/// render task.
pub(crate) fn cluster_lookup(cluster: Arc<Cluster>) -> Lookup {
    let handle = tokio::runtime::Handle::current();
    let calls = AtomicUsize::new(0);
    gitplane_render::Callback(Arc::new(move |api_version, kind, namespace, name| {
        if calls.fetch_add(1, Ordering::Relaxed) >= MAX_LOOKUPS {
            return Err(format!(
                "lookup: more than {MAX_LOOKUPS} calls in one render"
            ));
        }
        handle
            .block_on(lookup(&cluster, api_version, kind, namespace, name))
            .map_err(|e| format!("lookup {api_version} {kind} {namespace}/{name}: {e}"))
    }))
}

/// One object by name, or, for an empty name, the list of the kind in the
/// namespace (every namespace when it is empty), as Helm's `lookup` gives.
async fn lookup(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, String> {
    let gvk = Gvk::from_api_version(api_version, kind);
    let info = cluster.resolve(&gvk).await.map_err(|e| e.to_string())?;
    let namespace = if info.namespaced { namespace } else { "" };
    if !name.is_empty() {
        let found = cluster
            .get(&gvk, namespace, name)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(found.map(gitplane_object::Object::into_value));
    }
    let items = cluster
        .list(&info, (!namespace.is_empty()).then_some(namespace), None)
        .await
        .map_err(|e| e.to_string())?;
    let items: Vec<Value> = items.into_iter().map(|o| o.into_value()).collect();
    Ok(Some(json!({
        "apiVersion": api_version,
        "kind": format!("{kind}List"),
        "metadata": {},
        "items": items,
    })))
}
