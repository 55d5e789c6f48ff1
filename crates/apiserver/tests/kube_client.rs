#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! kube-rs, the client gitplane manages real clusters with, against the
//! embedded server: discovery, server-side apply, watches and the relist after
//! an expired resource version.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gitplane_apiserver::{Config, Server};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, verbs};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

/// A server in a temporary directory and a client for it.
async fn start(event_log: usize) -> (Server, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.event_log = event_log;
    let server = Server::start(config).await.unwrap();
    let kubeconfig = Kubeconfig::read_from(&server.kubeconfig).unwrap();
    let client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    let client = Client::try_from(client_config).unwrap();
    (server, client, dir)
}

fn config_map(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": data
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_builtin_and_custom_types_both_ways() {
    let (server, client, _dir) = start(1000).await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let crds: Api<kube::api::DynamicObject> = Api::all_with(
        client.clone(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
            ),
            "customresourcedefinitions",
        ),
    );
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();

    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let (deployments, caps) = discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .find(|(r, _)| r.kind == "Deployment")
            .expect("Deployment discovered");
        assert_eq!(deployments.group, "apps");
        assert!(caps.supports_operation(verbs::PATCH));
        assert!(caps.subresources.iter().any(|(r, _)| r.plural == "scale"));
        assert!(
            discovery.has_group("example.com"),
            "the new CRD is served at once"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_tracks_owners_and_conflicts() {
    let (server, client, _dir) = start(1000).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let ours = PatchParams::apply("gitplane-test");
    let applied = api
        .patch(
            "settings",
            &ours,
            &Patch::Apply(config_map("settings", json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    let managers: Vec<_> = applied
        .managed_fields()
        .iter()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert_eq!(
        managers,
        [("gitplane-test".to_string(), "Apply".to_string())]
    );
    // Owned fields are served as the JSON object FieldsV1 is, from every
    // read path (the store keeps them as compact text).
    let owned = json!({"f:data": {"f:a": {}, "f:b": {}}});
    let fields_v1 = |cm: &ConfigMap| cm.managed_fields()[0].fields_v1.clone().unwrap().0;
    assert_eq!(fields_v1(&applied), owned, "a write's response");
    assert_eq!(fields_v1(&api.get("settings").await.unwrap()), owned, "get");
    let listed = api.list(&Default::default()).await.unwrap();
    assert_eq!(fields_v1(&listed.items[0]), owned, "list");

    let theirs = PatchParams::apply("someone-else");
    let error = api
        .patch(
            "settings",
            &theirs,
            &Patch::Apply(config_map("settings", json!({"a": "9"}))),
        )
        .await
        .unwrap_err();
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert!(
                status.message.contains("conflict with \"gitplane-test\""),
                "{}",
                status.message
            );
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let forced = api
        .patch(
            "settings",
            &theirs.clone().force(),
            &Patch::Apply(config_map("settings", json!({"a": "9"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "9");

    // Applying again without `b` gives it up: nobody else owns it, so it goes.
    let shrunk = api
        .patch(
            "settings",
            &ours,
            &Patch::Apply(config_map("settings", json!({}))),
        )
        .await
        .unwrap();
    let data = shrunk.data.unwrap();
    assert_eq!(
        data.get("a").map(String::as_str),
        Some("9"),
        "kept: owned by someone-else"
    );
    assert!(!data.contains_key("b"), "removed: no manager left");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_a_merge_patch() {
    let (server, client, _dir) = start(1000).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(
        &PostParams::default(),
        &config_map("watched", json!({"a": "1"})),
    )
    .await
    .unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    // The initial list: Init, InitApply(watched), InitDone.
    loop {
        if let watcher::Event::InitDone = events.try_next().await.unwrap().unwrap() {
            break;
        }
    }
    api.patch(
        "watched",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .expect("an event within 10s")
        .unwrap()
        .unwrap();
    match event {
        watcher::Event::Apply(cm) => {
            let owned = cm.managed_fields()[0].fields_v1.clone().unwrap().0;
            assert!(owned["f:data"].is_object(), "served as an object: {owned}");
            assert_eq!(cm.data.unwrap()["a"], "2")
        }
        other => panic!("expected Apply, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_revision_gets_410_in_stream() {
    let (server, client, _dir) = start(5).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = api
        .create(&PostParams::default(), &config_map("c0", json!({})))
        .await
        .unwrap();
    let old = first.resource_version().unwrap();
    for i in 1..20 {
        api.create(
            &PostParams::default(),
            &config_map(&format!("c{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    let event = stream.try_next().await.unwrap().expect("one event");
    match event {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected an in-stream 410, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_its_revision_is_compacted() {
    let (server, client, _dir) = start(5).await;
    let watched: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    watched
        .create(&PostParams::default(), &config_map("steady", json!({})))
        .await
        .unwrap();
    // Short watch timeouts make the watcher reconnect from its last revision,
    // which writes elsewhere keep pushing out of the small change log.
    let config = watcher::Config::default().timeout(1);
    let mut events = watcher(watched, config).boxed();
    let (mut lists, mut expired) = (0, false);
    let noise: Api<ConfigMap> = Api::namespaced(client, "kube-system");
    let mut i = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while lists < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no relist within 60s"
        );
        tokio::select! {
            event = events.try_next() => match event {
                Ok(Some(watcher::Event::InitDone)) => lists += 1,
                Ok(_) => {}
                // The watcher reports the expiry, then lists again on the next poll.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => expired = true,
                Err(other) => panic!("unexpected watcher error: {other}"),
            },
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                i += 1;
                let name = format!("noise{i}");
                noise.create(&PostParams::default(), &config_map(&name, json!({}))).await.unwrap();
                noise.delete(&name, &DeleteParams::default()).await.unwrap();
            }
        }
    }
    assert!(expired, "the second list followed a 410");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_watches_see_objects_enter_and_leave() {
    let (server, client, _dir) = start(1000).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let version = api
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let params = WatchParams::default().labels("tier=front");
    let mut stream = api.watch(&params, &version).await.unwrap().boxed();
    let label = |tier: &str| Patch::Merge(json!({"metadata": {"labels": {"tier": tier}}}));
    api.create(&PostParams::default(), &config_map("moving", json!({})))
        .await
        .unwrap();
    for tier in ["back", "front", "front", "back", "front"] {
        api.patch("moving", &PatchParams::default(), &label(tier))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("an event within 10s")
            .unwrap()
            .unwrap();
        let (kind, cm) = match event {
            WatchEvent::Added(cm) => ("ADDED", cm),
            WatchEvent::Modified(cm) => ("MODIFIED", cm),
            WatchEvent::Deleted(cm) => ("DELETED", cm),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("{e:?}"),
        };
        seen.push((kind, cm.labels()["tier"].clone()));
    }
    // Created unlabelled and moved to "back": invisible. Into "front": ADDED.
    // A no-op patch: nothing. Out to "back": DELETED, showing it as it was.
    // Back into "front": ADDED again.
    let front = || "front".to_string();
    assert_eq!(
        seen,
        [("ADDED", front()), ("DELETED", front()), ("ADDED", front())]
    );
    server.stop().await;
}

/// Sends a raw request and returns the status code.
async fn raw_status(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> u16 {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    client
        .send(request.map(kube::client::Body::from))
        .await
        .map_or_else(
            |e| match e {
                kube::Error::Api(status) => status.code,
                other => panic!("transport error: {other}"),
            },
            |response| response.status().as_u16(),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_not_crashed_on() {
    let (server, client, dir) = start(1000).await;
    // A wrong token: 401.
    let mut kubeconfig = Kubeconfig::read_from(dir.path().join("kubeconfig")).unwrap();
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.token = Some("not-the-token".to_string().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let intruder = Client::try_from(config).unwrap();
    let path = "/api/v1/namespaces/default/configmaps";
    assert_eq!(
        raw_status(&intruder, "GET", path, "application/json", vec![]).await,
        401
    );

    // Malformed and oversized bodies: 400 and 413.
    assert_eq!(
        raw_status(
            &client,
            "POST",
            path,
            "application/json",
            b"{not json".to_vec()
        )
        .await,
        400
    );
    let huge = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 << 20)
    );
    assert_eq!(
        raw_status(&client, "POST", path, "application/json", huge.into_bytes()).await,
        413
    );

    // Garbage of every media type: always a 4xx, and the server keeps serving.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for content_type in [
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "application/apply-patch+yaml",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
    ] {
        for len in [0usize, 1, 7, 64, 900] {
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            for (method, target) in [
                ("POST", path.to_string()),
                ("PATCH", format!("{path}/some")),
            ] {
                let code = raw_status(&client, method, &target, content_type, body.clone()).await;
                assert!(
                    (400..500).contains(&code),
                    "{method} {content_type} {len} bytes: {code}"
                );
            }
        }
    }
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(
        &PostParams::default(),
        &config_map("still-serving", json!({})),
    )
    .await
    .unwrap();
    server.stop().await;
}
