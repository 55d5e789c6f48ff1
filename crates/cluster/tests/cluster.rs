#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! `cluster` against the embedded API server.

use std::sync::Arc;
use std::time::Duration;

use gitplane_apiserver::{Config, Server};
use gitplane_cluster::{
    ApplyOptions, Cluster, ClusterError, ConnectOptions, LiveCache, Propagation,
    TRACKING_ANNOTATION, Tracking, tracking_id,
};
use gitplane_object::{Gvk, Object};
use serde_json::json;

async fn start() -> (Server, Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.simulate = false;
    let server = Server::start(config).await.unwrap();
    let cluster = Cluster::connect(&ConnectOptions::for_kubeconfig(&server.kubeconfig))
        .await
        .unwrap();
    (server, cluster, dir)
}

fn object(value: serde_json::Value) -> Object {
    Object::try_from(value).unwrap()
}

fn config_map(name: &str, app: Option<&str>) -> Object {
    let mut cm = object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"a": "1"}
    }));
    if let Some(app) = app {
        let id = tracking_id(app, &cm.key());
        cm.set_annotation(TRACKING_ANNOTATION, &id);
    }
    cm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_reads_and_deletes() {
    let (server, cluster, _dir) = start().await;
    let cm = config_map("one", None);
    let dry = cluster
        .apply(
            &cm,
            &ApplyOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.str_at(&["data", "a"]), Some("1"));
    let gvk = Gvk::new("", "v1", "ConfigMap");
    assert!(
        cluster.get(&gvk, "default", "one").await.unwrap().is_none(),
        "dry run stored nothing"
    );

    let applied = cluster.apply(&cm, &ApplyOptions::default()).await.unwrap();
    assert_eq!(applied.kind(), "ConfigMap");
    let managers = applied
        .get(&["metadata", "managedFields"])
        .unwrap()
        .to_string();
    assert!(managers.contains("\"manager\":\"gitplane\""), "{managers}");
    let live = cluster.get_key(&cm.key()).await.unwrap().unwrap();
    assert_eq!(
        live.str_at(&["metadata", "uid"]),
        applied.str_at(&["metadata", "uid"])
    );

    assert!(
        cluster
            .delete(&cm, Propagation::Background, false)
            .await
            .unwrap()
    );
    assert!(
        !cluster
            .delete(&cm, Propagation::Background, false)
            .await
            .unwrap(),
        "already gone"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_applied_moments_ago_is_found_by_refreshing_discovery() {
    let (server, cluster, _dir) = start().await;
    let widget = object(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"}, "spec": {"size": 1}
    }));
    match cluster.apply(&widget, &ApplyOptions::default()).await {
        Err(ClusterError::UnknownKind { kind, .. }) => assert_eq!(kind, "Widget"),
        other => panic!("expected UnknownKind, got {other:?}"),
    }
    let crd = object(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }));
    cluster.apply(&crd, &ApplyOptions::default()).await.unwrap();
    let stored = cluster
        .apply(&widget, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(stored.str_at(&["metadata", "name"]), Some("w"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_objects_need_a_namespace() {
    let (server, cluster, _dir) = start().await;
    let mut cm = config_map("nameless", None);
    cm.body_mut()
        .get_mut("metadata")
        .and_then(|m| m.as_object_mut())
        .unwrap()
        .remove("namespace");
    let error = cluster
        .apply(&cm, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("namespaced but has no namespace"),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_objects_belong_to_the_app_their_id_names() {
    let (server, cluster, _dir) = start().await;
    for cm in [
        config_map("mine", Some("shop")),
        config_map("theirs", Some("blog")),
        config_map("nobodys", None),
    ] {
        cluster.apply(&cm, &ApplyOptions::default()).await.unwrap();
    }
    // A copy whose id was written for another object is nobody's.
    let mut copied = config_map("copied", None);
    copied.set_annotation(TRACKING_ANNOTATION, "shop:/ConfigMap:default/mine");
    cluster
        .apply(&copied, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(Tracking::of(&copied).is_none());

    let names = |objects: Vec<Object>| {
        objects
            .iter()
            .map(|o| o.name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(cluster.tracked_objects(Some("shop"), None).await.unwrap()),
        ["mine"]
    );
    assert_eq!(
        names(cluster.tracked_objects(None, None).await.unwrap()),
        ["mine", "theirs"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_cache_follows_changes() {
    let (server, cluster, _dir) = start().await;
    cluster
        .apply(
            &config_map("before", Some("shop")),
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    let cluster = Arc::new(cluster);
    let cache = LiveCache::start(cluster.clone());
    cache.wait_listed(Duration::from_secs(10)).await.unwrap();
    assert_eq!(cache.objects_of("shop").len(), 1);

    let mut changes = cache.subscribe();
    let after = config_map("after", Some("shop"));
    cluster
        .apply(&after, &ApplyOptions::default())
        .await
        .unwrap();
    let change = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.key, after.key());
    assert_eq!(change.app, "shop");
    assert_eq!(cache.objects_of("shop").len(), 2);

    cluster
        .delete(&after, Propagation::Background, false)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cache.get(&after.key()).is_some() {
        assert!(tokio::time::Instant::now() < deadline, "deletion not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
