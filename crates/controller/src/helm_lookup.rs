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
    let read = move |api_version: &str, kind: &str, namespace: &str, name: &str| {
        handle
            .block_on(lookup(&cluster, api_version, kind, namespace, name))
            .map_err(|e| format!("lookup {api_version} {kind} {namespace}/{name}: {e}"))
    };
    gitplane_render::Callback(Arc::new(at_most(MAX_LOOKUPS, read)))
}

/// `lookup` answered by `read` at most `max` times; then an error.
fn at_most(
    max: usize,
    read: impl Fn(&str, &str, &str, &str) -> Result<Option<Value>, String> + Send + Sync,
) -> impl Fn(&str, &str, &str, &str) -> Result<Option<Value>, String> + Send + Sync {
    let calls = AtomicUsize::new(0);
    move |api_version, kind, namespace, name| {
        if calls.fetch_add(1, Ordering::Relaxed) >= max {
            return Err(format!("lookup: more than {max} calls in one render"));
        }
        read(api_version, kind, namespace, name)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_gets_at_most_its_share_of_lookups() {
        let answered = std::sync::Mutex::new(0);
        let lookup = at_most(3, |_: &str, _: &str, _: &str, name: &str| {
            *answered.lock().unwrap() += 1;
            Ok(Some(json!({"name": name})))
        });
        for _ in 0..3 {
            assert!(lookup("v1", "Secret", "db", "keep").is_ok());
        }
        let refused = lookup("v1", "Secret", "db", "keep").unwrap_err();
        assert_eq!(refused, "lookup: more than 3 calls in one render");
        assert_eq!(
            *answered.lock().unwrap(),
            3,
            "the fourth never reached the cluster"
        );
    }
}
