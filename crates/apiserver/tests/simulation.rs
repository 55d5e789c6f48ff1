#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! The simulated cluster is complete for health: autoscalers, disruption
//! budgets, generations on every write path, and injected faults, driven
//! through kube-rs as any client would.

use std::time::{Duration, Instant};

use gitplane_apiserver::{Config, Server};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use proptest::prelude::*;
use serde_json::{Value, json};

async fn start(simulate: bool) -> (Server, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.simulate = simulate;
    let server = Server::start(config).await.unwrap();
    let kubeconfig = Kubeconfig::read_from(&server.kubeconfig).unwrap();
    let client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    (server, Client::try_from(client_config).unwrap(), dir)
}

fn api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

fn deployments(client: &Client) -> Api<DynamicObject> {
    api(client, "apps", "v1", "Deployment", "deployments")
}

fn deployment(name: &str, replicas: i64, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}
    })
}

async fn apply(api: &Api<DynamicObject>, object: Value) -> DynamicObject {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap()
}

/// Polls `api` for `name` until `check` holds (60 s at most).
async fn wait_until(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(object) = api.get(name).await {
            let value = serde_json::to_value(&object).unwrap();
            if check(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {value:#}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition<'v>(object: &'v Value, kind: &str) -> Option<&'v Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// The ways a client changes a Deployment's replicas.
#[derive(Debug, Clone, Copy)]
enum WritePath {
    Update,
    MergePatch,
    JsonPatch,
    StrategicPatch,
    ServerSideApply,
    Scale,
    Status,
}

async fn write(api: &Api<DynamicObject>, name: &str, path: WritePath, replicas: i64) {
    let params = PatchParams::default();
    match path {
        WritePath::Update => {
            let mut object = api.get(name).await.unwrap();
            object.data["spec"]["replicas"] = json!(replicas);
            api.replace(name, &Default::default(), &object)
                .await
                .unwrap();
        }
        WritePath::MergePatch => {
            let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
            api.patch(name, &params, &patch).await.unwrap();
        }
        WritePath::JsonPatch => {
            let ops: json_patch::Patch = serde_json::from_value(
                json!([{"op": "replace", "path": "/spec/replicas", "value": replicas}]),
            )
            .unwrap();
            api.patch(name, &params, &Patch::<Value>::Json(ops))
                .await
                .unwrap();
        }
        WritePath::StrategicPatch => {
            let patch = Patch::Strategic(json!({"spec": {"replicas": replicas}}));
            api.patch(name, &params, &patch).await.unwrap();
        }
        WritePath::ServerSideApply => {
            let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name}, "spec": {"replicas": replicas}});
            api.patch(
                name,
                &PatchParams::apply("scaler").force(),
                &Patch::Apply(config),
            )
            .await
            .unwrap();
        }
        WritePath::Scale => {
            let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
            api.patch_scale(name, &params, &patch).await.unwrap();
        }
        WritePath::Status => {
            let patch = Patch::Merge(json!({"status": {"replicas": replicas}}));
            api.patch_status(name, &params, &patch).await.unwrap();
        }
    }
}

fn write_path() -> impl Strategy<Value = WritePath> {
    prop_oneof![
        Just(WritePath::Update),
        Just(WritePath::MergePatch),
        Just(WritePath::JsonPatch),
        Just(WritePath::StrategicPatch),
        Just(WritePath::ServerSideApply),
        Just(WritePath::Scale),
        Just(WritePath::Status),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the write, `metadata.generation` goes up by one exactly when
    /// the spec changed (a status write never moves it).
    #[test]
    fn generation_counts_spec_changes_on_every_write_path(
        writes in prop::collection::vec((write_path(), 1i64..4), 1..8)
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let (server, client, _dir) = start(false).await;
            let api = deployments(&client);
            apply(&api, deployment("web", 1, json!({}))).await;
            let (mut expected, mut replicas) = (1, 1);
            for (path, value) in writes {
                write(&api, "web", path, value).await;
                let changes_spec = !matches!(path, WritePath::Status);
                if changes_spec && value != replicas {
                    expected += 1;
                    replicas = value;
                }
                let live = api.get("web").await.unwrap();
                assert_eq!(live.metadata.generation, Some(expected), "after {path:?} to {value}");
            }
            server.stop().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscalers_and_disruption_budgets_report_as_their_controllers_do() {
    let (server, client, _dir) = start(true).await;
    let deployments = deployments(&client);
    apply(&deployments, deployment("web", 1, json!({}))).await;
    let hpas = api(
        &client,
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    );
    apply(&hpas, json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}
    })).await;
    // Below its minimum, the target is scaled up, and the autoscaler says so.
    let hpa = wait_until(&hpas, "web", "the autoscaler's status", |h| {
        h["status"]["desiredReplicas"] == 2 && h["status"]["currentReplicas"] == 2
    })
    .await;
    assert_eq!(condition(&hpa, "AbleToScale").unwrap()["status"], "True");
    assert_eq!(
        condition(&hpa, "ScalingActive").unwrap()["reason"],
        "ValidMetricFound"
    );
    assert_eq!(
        hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        70
    );
    let web = deployments.get("web").await.unwrap();
    assert_eq!(web.data["spec"]["replicas"], 2);

    let orphan_hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "orphan", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "missing"}, "maxReplicas": 3}
    });
    apply(&hpas, orphan_hpa).await;
    wait_until(&hpas, "orphan", "FailedGetScale", |h| {
        condition(h, "AbleToScale").is_some_and(|c| c["reason"] == "FailedGetScale")
    })
    .await;

    let pdbs = api(
        &client,
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
    );
    apply(
        &pdbs,
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": "50%"}
        }),
    )
    .await;
    let pdb = wait_until(&pdbs, "web", "the budget's status", |p| {
        p["status"]["currentHealthy"] == 2
    })
    .await;
    assert_eq!(pdb["status"]["expectedPods"], 2);
    assert_eq!(pdb["status"]["desiredHealthy"], 1);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1);
    assert_eq!(
        condition(&pdb, "DisruptionAllowed").unwrap()["status"],
        "True"
    );
    assert!(pdb["status"]["observedGeneration"].is_i64());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_make_pods_and_rollouts_misbehave() {
    let (server, client, _dir) = start(true).await;
    let deployments = deployments(&client);
    let pods = api(&client, "", "v1", "Pod", "pods");
    let fault = |value: &str| json!({"simulate.gitplane.dev/pods": value});

    // A rollout that never gets ready misses its deadline: Degraded in Argo CD.
    let mut stuck = deployment("stuck", 1, fault("never-ready"));
    stuck["spec"]["progressDeadlineSeconds"] = json!(2);
    apply(&deployments, stuck).await;
    let stuck = wait_until(&deployments, "stuck", "ProgressDeadlineExceeded", |d| {
        condition(d, "Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
    })
    .await;
    assert_eq!(condition(&stuck, "Available").unwrap()["status"], "False");
    // It stays stuck (the controller does not flip back to progressing).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = serde_json::to_value(deployments.get("stuck").await.unwrap()).unwrap();
    assert_eq!(
        condition(&later, "Progressing").unwrap()["reason"],
        "ProgressDeadlineExceeded"
    );

    // Each fault shows on the pods as the kubelet would report it.
    apply(&deployments, deployment("crash", 1, fault("crashloop"))).await;
    apply(
        &deployments,
        deployment("pull", 1, fault("image-pull-error")),
    )
    .await;
    apply(&deployments, deployment("slow", 1, fault("ready-after=2s"))).await;
    let pod_of = |app: &'static str| {
        let pods = pods.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let list = pods
                    .list(&kube::api::ListParams::default().labels(&format!("app={app}")))
                    .await
                    .unwrap();
                if let Some(pod) = list
                    .items
                    .into_iter()
                    .find(|p| p.data["status"]["phase"].is_string())
                {
                    return pod;
                }
                assert!(Instant::now() < deadline, "no pod of {app}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let crash = pod_of("crash").await;
    let state = &crash.data["status"]["containerStatuses"][0];
    assert_eq!(
        state["state"]["waiting"]["reason"], "CrashLoopBackOff",
        "{state}"
    );
    assert_eq!(state["lastState"]["terminated"]["exitCode"], 1);
    let pull = pod_of("pull").await;
    assert_eq!(pull.data["status"]["phase"], "Pending");
    assert_eq!(
        pull.data["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ImagePullBackOff"
    );
    let slow = pod_of("slow").await;
    wait_until(&pods, &slow.name_any(), "the slow pod ready", |p| {
        condition(p, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    wait_until(&deployments, "slow", "the slow rollout complete", |d| {
        condition(d, "Available").is_some_and(|c| c["status"] == "True")
    })
    .await;
    // A crash loop keeps restarting.
    let restarts = |p: &Value| {
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
    };
    let first = restarts(&serde_json::to_value(&crash).unwrap());
    wait_until(&pods, &crash.name_any(), "another restart", |p| {
        restarts(p) > first
    })
    .await;
    server.stop().await;
}
