#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! The sync engine end to end, against the embedded API server with its
//! workload simulation: waves, hooks, prune, CRDs, ignored differences.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitplane_apiserver::{Config, Server};
use gitplane_cluster::{ApplyOptions, Cluster, ConnectOptions};
use gitplane_diff::{IgnoreRule, UnboundedJq};
use gitplane_health::HealthChecker;
use gitplane_object::{LoadOptions, Object, Syntax, load_objects};
use gitplane_sync::{
    MemoryStore, OperationPhase, OperationState, Progress, ResultStatus, SyncOptions, SyncRequest,
};

struct Env {
    server: Option<Server>,
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Config::new(dir.path())).await.unwrap();
    let cluster = Cluster::connect(&ConnectOptions::for_kubeconfig(&server.kubeconfig))
        .await
        .unwrap();
    Env {
        server: Some(server),
        cluster,
        _dir: dir,
    }
}

impl Env {
    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

fn objects(yaml: &str) -> Vec<Object> {
    load_objects(
        yaml.as_bytes(),
        "test.yaml",
        Syntax::Yaml,
        &LoadOptions::default(),
    )
    .unwrap()
}

fn options() -> SyncOptions {
    SyncOptions {
        wave_timeout: Duration::from_secs(20),
        hook_timeout: Duration::from_secs(20),
        ..SyncOptions::default()
    }
}

/// Syncs and returns the result and the progress events, as text.
async fn run(
    env: &Env,
    app: &str,
    yaml: &str,
    options: SyncOptions,
    ignore: &[IgnoreRule],
) -> (OperationState, Vec<String>) {
    let health = HealthChecker::builtin();
    let request = SyncRequest {
        app,
        namespace: "shop",
        revision: "0123456789",
        desired: objects(yaml),
        options,
        ignore,
        jq: &UnboundedJq,
        health: &health,
        live: None,
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let progress = move |p: &Progress| sink.lock().unwrap().push(format!("{p:?}"));
    let result = gitplane_sync::run(
        &env.cluster,
        &request,
        &MemoryStore::default(),
        true,
        &progress,
    )
    .await
    .unwrap();
    let events = events.lock().unwrap().clone();
    (result, events)
}

fn status_of(result: &OperationState, name: &str) -> ResultStatus {
    result
        .resources
        .iter()
        .find(|r| r.key.name == name)
        .unwrap_or_else(|| panic!("{name} not in {:?}", result.resources))
        .status
}

/// Whether the object exists and is not being deleted (a foreground
/// deletion, pruning's default, finishes after the sync returns).
async fn exists(env: &Env, kind: &str, namespace: &str, name: &str) -> bool {
    let info = env
        .cluster
        .kinds()
        .into_iter()
        .find(|k| k.resource.kind == kind)
        .unwrap();
    env.cluster
        .get(&info.gvk(), namespace, name)
        .await
        .unwrap()
        .is_some_and(|o| o.get(&["metadata", "deletionTimestamp"]).is_none())
}

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_then_resyncs_without_writing() {
    let env = env().await;
    let yaml = format!(
        "{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{a: '1'}}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: 'nginx:1.27'}}]}}\n"
    );
    let (first, _) = run(&env, "shop", &yaml, options(), &[]).await;
    assert_eq!(first.phase, OperationPhase::Succeeded, "{}", first.message);
    assert_eq!(status_of(&first, "web"), ResultStatus::Synced);
    let deployment = env
        .cluster
        .get_key(&gitplane_object::ObjectKey::new(
            "apps",
            "Deployment",
            "shop",
            "web",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        deployment.annotation("argocd.argoproj.io/tracking-id"),
        Some("shop:apps/Deployment:shop/web")
    );
    let version = deployment
        .str_at(&["metadata", "resourceVersion"])
        .unwrap()
        .to_string();

    let (second, _) = run(&env, "shop", &yaml, options(), &[]).await;
    assert_eq!(second.phase, OperationPhase::Succeeded);
    for r in &second.resources {
        assert_eq!(r.status, ResultStatus::Unchanged, "{r:?}");
    }
    let again = env
        .cluster
        .get_key(&deployment.key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.str_at(&["metadata", "resourceVersion"]),
        Some(version.as_str()),
        "nothing was written"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_wait_for_health() {
    let env = env().await;
    let yaml = format!(
        "{NAMESPACE}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: db, annotations: {{argocd.argoproj.io/sync-wave: '-1'}}}}\nspec:\n  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec: {{containers: [{{name: db, image: 'postgres:16'}}]}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: after-db, annotations: {{argocd.argoproj.io/sync-wave: '1'}}}}\n"
    );
    let (result, events) = run(&env, "shop", &yaml, options(), &[]).await;
    assert_eq!(
        result.phase,
        OperationPhase::Succeeded,
        "{}",
        result.message
    );
    let position = |needle: &str| {
        events
            .iter()
            .position(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {events:?}"))
    };
    assert!(position("Wave { phase: Sync, wave: -1") < position("Wave { phase: Sync, wave: 1,"));
    let db = result
        .resources
        .iter()
        .find(|r| r.key.name == "db")
        .unwrap();
    // Wave -1 was waited for: its Deployment finished healthy before wave 1.
    assert_eq!(db.progress, OperationPhase::Succeeded);
    assert_eq!(
        db.health.as_ref().map(|h| h.status.as_str()),
        Some("Healthy")
    );

    // A wave that never gets healthy fails the sync, and later waves never run.
    let too_late = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: too-late, annotations: {argocd.argoproj.io/sync-wave: '5'}}\n";
    let stuck = format!(
        "{NAMESPACE}---\napiVersion: batch/v1\nkind: Job\nmetadata: {{name: slow}}\nspec:\n  template:\n    metadata: {{annotations: {{gitplane.dev/simulate-duration: '60'}}}}\n    spec: {{restartPolicy: Never, containers: [{{name: x, image: busybox}}]}}\n---\n{too_late}"
    );
    let short = SyncOptions {
        wave_timeout: Duration::from_secs(4),
        ..options()
    };
    let (result, _) = run(&env, "stuck", &stuck, short.clone(), &[]).await;
    assert_eq!(result.phase, OperationPhase::Failed);
    let message = &result.message;
    assert!(
        message.contains("batch/Job:shop/slow: did not become healthy within 4s"),
        "{message}"
    );
    assert!(!exists(&env, "ConfigMap", "shop", "too-late").await);

    // A degraded object fails its wave at once, as in Argo CD, naming it.
    let broken = format!(
        "{NAMESPACE}---\napiVersion: batch/v1\nkind: Job\nmetadata: {{name: broken, annotations: {{argocd.argoproj.io/sync-wave: '0'}}}}\nspec:\n  backoffLimit: 0\n  template:\n    metadata: {{annotations: {{gitplane.dev/simulate-exit-code: '1'}}}}\n    spec: {{restartPolicy: Never, containers: [{{name: x, image: busybox}}]}}\n---\n{too_late}"
    );
    let (result, _) = run(&env, "broken", &broken, short, &[]).await;
    assert_eq!(result.phase, OperationPhase::Failed);
    let message = &result.message;
    assert!(
        message.contains("batch/Job:shop/broken: Degraded"),
        "{message}"
    );
    assert!(!message.contains("within"), "not a timeout: {message}");
    assert!(!exists(&env, "ConfigMap", "shop", "too-late").await);
    env.stop().await;
}

fn job(name: &str, hook: &str, policy: Option<&str>, exit_code: u8) -> String {
    let policy = policy
        .map(|p| format!(", argocd.argoproj.io/hook-delete-policy: {p}"))
        .unwrap_or_default();
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}, annotations: {{argocd.argoproj.io/hook: {hook}{policy}}}}}\nspec:\n  backoffLimit: 0\n  template:\n    metadata: {{annotations: {{gitplane.dev/simulate-exit-code: '{exit_code}'}}}}\n    spec: {{restartPolicy: Never, containers: [{{name: x, image: busybox}}]}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_in_their_phases_with_their_delete_policies() {
    let env = env().await;
    let yaml = [
        NAMESPACE.to_string(),
        job("migrate", "PreSync", Some("HookSucceeded"), 0),
        job("smoke", "PostSync", None, 0),
        job("notify-failure", "SyncFail", None, 0),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n".into(),
    ]
    .join("---\n");
    let (result, events) = run(&env, "shop", &yaml, options(), &[]).await;
    assert_eq!(
        result.phase,
        OperationPhase::Succeeded,
        "{}",
        result.message
    );
    let position = |needle: &str| events.iter().position(|e| e.contains(needle)).unwrap();
    assert!(
        position("phase: PreSync") < position("phase: Sync")
            && position("phase: Sync") < position("phase: PostSync")
    );
    let hook = |name: &str| {
        result
            .resources
            .iter()
            .find(|r| r.key.name == name)
            .cloned()
    };
    assert_eq!(hook("migrate").unwrap().progress, OperationPhase::Succeeded);
    assert_eq!(hook("smoke").unwrap().progress, OperationPhase::Succeeded);
    assert!(
        hook("notify-failure").is_none(),
        "SyncFail hooks run only on failure"
    );
    assert!(
        !exists(&env, "Job", "shop", "migrate").await,
        "HookSucceeded deleted it"
    );
    assert!(
        exists(&env, "Job", "shop", "smoke").await,
        "BeforeHookCreation keeps it until next time"
    );

    // Again: BeforeHookCreation replaces the old run; hooks are not pruned.
    let (again, _) = run(
        &env,
        "shop",
        &yaml,
        SyncOptions {
            prune: true,
            ..options()
        },
        &[],
    )
    .await;
    assert_eq!(again.phase, OperationPhase::Succeeded, "{}", again.message);
    assert!(exists(&env, "Job", "shop", "smoke").await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_fails_the_sync_and_runs_sync_fail_hooks() {
    let env = env().await;
    let yaml = [
        NAMESPACE.to_string(),
        job("migrate", "PreSync", Some("HookFailed"), 1),
        job("notify-failure", "SyncFail", None, 0),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: never-applied}\n".into(),
    ]
    .join("---\n");
    let (result, _) = run(&env, "shop", &yaml, options(), &[]).await;
    assert_eq!(result.phase, OperationPhase::Failed);
    assert!(
        result.message.contains("reason: batch/Job:shop/migrate: "),
        "{}",
        result.message
    );
    let notify = result
        .resources
        .iter()
        .find(|r| r.key.name == "notify-failure")
        .unwrap();
    assert_eq!(notify.progress, OperationPhase::Succeeded);
    assert!(
        !exists(&env, "Job", "shop", "migrate").await,
        "HookFailed deleted it"
    );
    assert!(!exists(&env, "ConfigMap", "shop", "never-applied").await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_this_apps_objects() {
    let env = env().await;
    let two = format!(
        "{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keep, labels: {{team: a}}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: old, labels: {{team: a}}}}\n"
    );
    run(&env, "shop", &two, options(), &[]).await;
    // The same labels, but not tracked by this app: one untracked, one another app's.
    for (name, app) in [("untracked", None), ("blogs", Some("blog"))] {
        let mut cm = objects(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: shop, labels: {{team: a}}}}\n")).remove(0);
        if let Some(app) = app {
            let id = gitplane_cluster::tracking_id(app, &cm.key());
            cm.set_annotation(gitplane_cluster::TRACKING_ANNOTATION, &id);
        }
        env.cluster
            .apply(&cm, &ApplyOptions::default())
            .await
            .unwrap();
    }
    let one = format!(
        "{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keep, labels: {{team: a}}}}\n"
    );
    let (without_prune, _) = run(&env, "shop", &one, options(), &[]).await;
    assert_eq!(
        status_of(&without_prune, "old"),
        ResultStatus::RequiresPruning
    );
    assert!(exists(&env, "ConfigMap", "shop", "old").await);

    let (pruned, _) = run(
        &env,
        "shop",
        &one,
        SyncOptions {
            prune: true,
            ..options()
        },
        &[],
    )
    .await;
    assert_eq!(
        pruned.phase,
        OperationPhase::Succeeded,
        "{}",
        pruned.message
    );
    assert_eq!(status_of(&pruned, "old"), ResultStatus::Pruned);
    assert!(!exists(&env, "ConfigMap", "shop", "old").await);
    for survivor in ["keep", "untracked", "blogs"] {
        assert!(
            exists(&env, "ConfigMap", "shop", survivor).await,
            "{survivor}"
        );
    }

    // Another app's object with a desired name is reported, not taken over.
    let clash = format!(
        "{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: blogs}}\ndata: {{x: y}}\n"
    );
    let (shared, _) = run(&env, "shop", &clash, options(), &[]).await;
    assert_eq!(status_of(&shared, "blogs"), ResultStatus::Shared);
    let (strict, _) = run(
        &env,
        "shop",
        &clash,
        SyncOptions {
            fail_on_shared_resource: true,
            ..options()
        },
        &[],
    )
    .await;
    assert_eq!(strict.phase, OperationPhase::Failed);
    assert!(
        strict.message.contains("belongs to application \"blog\""),
        "{}",
        strict.message
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_and_its_custom_resources_in_one_sync() {
    let env = env().await;
    let yaml = format!(
        "{NAMESPACE}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w1}}\nspec: {{size: 3}}\n---\n\
         apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: widgets.example.com}}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {{plural: widgets, kind: Widget}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {{openAPIV3Schema: {{type: object, properties: {{spec: {{type: object, properties: {{size: {{type: integer}}}}}}}}}}}}\n"
    );
    let (result, _) = run(&env, "widgets", &yaml, options(), &[]).await;
    assert_eq!(
        result.phase,
        OperationPhase::Succeeded,
        "{}",
        result.message
    );
    assert!(exists(&env, "Widget", "shop", "w1").await);
    let (again, _) = run(&env, "widgets", &yaml, options(), &[]).await;
    assert_eq!(status_of(&again, "w1"), ResultStatus::Unchanged);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscalers_replicas_are_not_reverted() {
    let env = env().await;
    let yaml = format!(
        "{NAMESPACE}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: 'nginx:1.27'}}]}}\n"
    );
    run(&env, "shop", &yaml, options(), &[]).await;
    // An autoscaler scales it through the scale subresource, as the HPA does.
    let scaled = objects("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: 5}\n").remove(0);
    env.cluster
        .apply(
            &scaled,
            &ApplyOptions {
                field_manager: "hpa-controller".into(),
                ..ApplyOptions::default()
            },
        )
        .await
        .unwrap();
    let rules = [IgnoreRule {
        group: "apps".into(),
        kind: "Deployment".into(),
        managed_fields_managers: vec!["hpa-controller".into()],
        ..Default::default()
    }];
    let respect = SyncOptions {
        respect_ignore_differences: true,
        ..options()
    };
    let (result, _) = run(&env, "shop", &yaml, respect, &rules).await;
    assert_eq!(status_of(&result, "web"), ResultStatus::Unchanged);
    let live = env.cluster.get_key(&scaled.key()).await.unwrap().unwrap();
    assert_eq!(
        live.get(&["spec", "replicas"]).and_then(|v| v.as_i64()),
        Some(5)
    );

    // Without RespectIgnoreDifferences the diff ignores it, but a change
    // elsewhere applies Git's replicas again, as Argo CD does.
    let changed = yaml.replace("nginx:1.27", "nginx:1.28");
    let (result, _) = run(&env, "shop", &changed, options(), &rules).await;
    assert_eq!(status_of(&result, "web"), ResultStatus::Synced);
    let live = env.cluster.get_key(&scaled.key()).await.unwrap().unwrap();
    assert_eq!(
        live.get(&["spec", "replicas"]).and_then(|v| v.as_i64()),
        Some(2)
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_change_nothing() {
    let env = env().await;
    let yaml = format!(
        "{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: fine}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: bad}}\nspec: {{ports: [{{port: 'not-a-number'}}]}}\n"
    );
    let (result, _) = run(&env, "shop", &yaml, options(), &[]).await;
    assert_eq!(result.phase, OperationPhase::Failed);
    assert!(
        result
            .message
            .starts_with("nothing was changed: 1 object(s) cannot be synced: /Service:shop/bad"),
        "{}",
        result.message
    );
    assert!(!exists(&env, "ConfigMap", "shop", "fine").await);
    assert!(!exists(&env, "Namespace", "", "shop").await);

    let dry = SyncOptions {
        dry_run: true,
        ..options()
    };
    let ok = format!("{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: fine}}\n");
    let (result, _) = run(&env, "shop", &ok, dry, &[]).await;
    assert_eq!(status_of(&result, "fine"), ResultStatus::DryRun);
    assert!(
        !exists(&env, "ConfigMap", "shop", "fine").await,
        "a dry run changes nothing"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_finds_kinds_only_the_last_operation_had() {
    // With the state of a finished operation, only the desired kinds and the
    // recorded ones are searched: a Secret no longer desired is still found.
    let env = env().await;
    let health = HealthChecker::builtin();
    let store = MemoryStore::default();
    let quiet = |_: &Progress| {};
    let first = format!(
        "{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keep}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: gone}}\n"
    );
    let second =
        format!("{NAMESPACE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keep}}\n");
    for (yaml, prune) in [(first, false), (second, true)] {
        let request = SyncRequest {
            app: "shop",
            namespace: "shop",
            revision: "0123456789",
            desired: objects(&yaml),
            options: SyncOptions { prune, ..options() },
            ignore: &[],
            jq: &UnboundedJq,
            health: &health,
            live: None,
        };
        let result = gitplane_sync::run(&env.cluster, &request, &store, true, &quiet)
            .await
            .unwrap();
        assert_eq!(
            result.phase,
            OperationPhase::Succeeded,
            "{}",
            result.message
        );
    }
    assert!(!exists(&env, "Secret", "shop", "gone").await);
    assert!(exists(&env, "ConfigMap", "shop", "keep").await);
    env.stop().await;
}

/// Steps an operation until it is done or `limit` passes; returns the
/// messages it reported while waiting.
async fn step_until_done(
    env: &Env,
    request: &SyncRequest<'_>,
    state: &mut OperationState,
    limit: Duration,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + limit;
    let mut waited = Vec::new();
    loop {
        match gitplane_sync::step(&env.cluster, request, state, None, &|_| {})
            .await
            .unwrap()
        {
            gitplane_sync::Next::Done => return waited,
            gitplane_sync::Next::Again => {}
            gitplane_sync::Next::Wait { .. } => {
                waited.push(state.message.clone());
                assert!(std::time::Instant::now() < deadline, "{state:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn request_for<'a>(yaml: &str, health: &'a HealthChecker) -> SyncRequest<'a> {
    SyncRequest {
        app: "shop",
        namespace: "shop",
        revision: "0123456789",
        desired: objects(yaml),
        options: options(),
        ignore: &[],
        jq: &UnboundedJq,
        health,
        live: None,
    }
}

const SLOW_WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {simulate.gitplane.dev/pods: ready-after=2s}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: 'nginx:1.27'}]}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_wave_sync_succeeds_once_applied_whatever_health_does() {
    let env = env().await;
    let health = HealthChecker::builtin();
    let yaml = format!("{NAMESPACE}---\n{SLOW_WEB}");
    let request = request_for(&yaml, &health);
    let mut state = gitplane_sync::begin(&request, None);
    step_until_done(&env, &request, &mut state, Duration::from_secs(30)).await;
    assert_eq!(state.phase, OperationPhase::Succeeded, "{}", state.message);
    // The Deployment was applied, not waited for: its task still runs and
    // the object is still rolling out.
    let web = state
        .resources
        .iter()
        .find(|r| r.key.name == "web")
        .unwrap();
    assert_eq!(web.progress, OperationPhase::Running);
    let live = env.cluster.get_key(&web.key).await.unwrap().unwrap();
    assert_eq!(
        health.check(&live).map(|h| h.status.as_str()),
        Some("Progressing")
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sync_hook_waits_for_the_waves_health_and_a_restart_repeats_nothing() {
    let env = env().await;
    let health = HealthChecker::builtin();
    let yaml = [
        NAMESPACE.to_string(),
        SLOW_WEB.to_string(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: '1'}}\n".into(),
        job("smoke", "PostSync", None, 0),
    ]
    .join("---\n");
    let request = request_for(&yaml, &health);
    let mut state = gitplane_sync::begin(&request, None);
    // Step until the operation waits for wave 0's Deployment.
    loop {
        let next = gitplane_sync::step(&env.cluster, &request, &mut state, None, &|_| {})
            .await
            .unwrap();
        if matches!(next, gitplane_sync::Next::Wait { .. }) {
            break;
        }
    }
    assert_eq!(
        state.message,
        "waiting for healthy state of apps/Deployment/web"
    );
    assert!(!exists(&env, "ConfigMap", "shop", "later").await);
    assert!(
        !exists(&env, "Job", "shop", "smoke").await,
        "PostSync waits"
    );

    // The process "restarts": the saved state goes on, rewriting nothing.
    let saved = serde_json::to_string(&state).unwrap();
    let namespace = env
        .cluster
        .get_key(&gitplane_object::ObjectKey::new(
            "",
            "Namespace",
            "",
            "shop",
        ))
        .await
        .unwrap()
        .unwrap();
    let mut resumed: OperationState = serde_json::from_str(&saved).unwrap();
    let waited = step_until_done(&env, &request, &mut resumed, Duration::from_secs(60)).await;
    assert_eq!(
        resumed.phase,
        OperationPhase::Succeeded,
        "{}",
        resumed.message
    );
    assert!(
        waited
            .iter()
            .any(|m| m == "waiting for completion of hook batch/Job/smoke"),
        "{waited:?}"
    );
    let smoke = resumed
        .resources
        .iter()
        .find(|r| r.key.name == "smoke")
        .unwrap();
    assert_eq!(smoke.progress, OperationPhase::Succeeded);
    let again = env
        .cluster
        .get_key(&namespace.key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.str_at(&["metadata", "resourceVersion"]),
        namespace.str_at(&["metadata", "resourceVersion"]),
        "the finished wave was not applied again"
    );
    assert!(exists(&env, "ConfigMap", "shop", "later").await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_an_operation_deletes_its_running_hooks() {
    let env = env().await;
    let health = HealthChecker::builtin();
    let slow_hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    metadata: {annotations: {gitplane.dev/simulate-duration: '60'}}\n    spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}\n";
    let yaml = format!(
        "{NAMESPACE}---\n{slow_hook}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app}}\n"
    );
    let request = request_for(&yaml, &health);
    let mut state = gitplane_sync::begin(&request, None);
    loop {
        let next = gitplane_sync::step(&env.cluster, &request, &mut state, None, &|_| {})
            .await
            .unwrap();
        if matches!(next, gitplane_sync::Next::Wait { .. }) {
            break;
        }
    }
    assert_eq!(
        state.message,
        "waiting for completion of hook batch/Job/migrate"
    );
    state.phase = OperationPhase::Terminating;
    let next = gitplane_sync::step(&env.cluster, &request, &mut state, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(next, gitplane_sync::Next::Done);
    assert_eq!(state.phase, OperationPhase::Failed);
    assert_eq!(state.message, "Operation terminated");
    assert!(!exists(&env, "Job", "shop", "migrate").await);
    assert!(!exists(&env, "ConfigMap", "shop", "app").await);
    env.stop().await;
}
