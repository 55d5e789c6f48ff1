//! The workload simulator, in the spirit of kubernetes-sigs/kwok: no container
//! runs, but objects move through their status as on a cluster, so health
//! checks, `kubectl rollout status`, `kubectl wait` and sync hooks behave.
//!
//! - Deployments own a ReplicaSet per pod-template revision; ReplicaSets own
//!   Pods; StatefulSets own ordinal Pods (and PersistentVolumeClaims from their
//!   claim templates); DaemonSets own one Pod (the one simulated node); Jobs own
//!   Pods that run for a while (`gitplane.dev/simulate-duration`, seconds,
//!   default 1) and exit with `gitplane.dev/simulate-exit-code` (default 0).
//! - Pods become Running and Ready at once (Job pods until they finish); every
//!   simulated pod carries the annotation `gitplane.dev/simulated: "true"`.
//! - Services get Endpoints and an EndpointSlice of their ready pods;
//!   LoadBalancer Services and Ingresses get an address; PersistentVolumeClaims
//!   are Bound.
//! - HorizontalPodAutoscalers and PodDisruptionBudgets get their controllers'
//!   status ([`autoscaling`]); CronJobs record their schedule's times
//!   ([`cron`]).
//! - `metadata.generation` and `status.observedGeneration` move as on a
//!   cluster; a Deployment that makes no progress for its
//!   `progressDeadlineSeconds` reports `ProgressDeadlineExceeded`.
//! - Faults can be injected per workload ([`faults`]).

mod autoscaling;
pub mod cron;
pub mod faults;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use gitplane_object::LabelSelector;
use serde_json::{Value, json};

use super::{name_of, options, target_of};
use crate::api::{Api, DeleteOptions, PatchKind, Target};
use crate::semantics;
use crate::store::{Event, EventKind};
use gitplane_object::time::{civil, now_rfc3339, parse_rfc3339};

use faults::{FAULT_ANNOTATION, Fault};

/// The annotation on every pod the simulator runs.
pub const SIMULATED: &str = "gitplane.dev/simulated";
const DURATION: &str = "gitplane.dev/simulate-duration";
const EXIT_CODE: &str = "gitplane.dev/simulate-exit-code";
const NODE: &str = "gitplane-node";

/// The simulator.
pub struct Simulator {
    api: Api,
}

fn text<'v>(o: &'v Value, pointer: &str) -> &'v str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int(o: &Value, pointer: &str, default: i64) -> i64 {
    o.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn uid(o: &Value) -> &str {
    text(o, "/metadata/uid")
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

fn controlled_by(object: &Value) -> Option<(&str, &str)> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller") == Some(&json!(true)))
        .map(|r| (text(r, "/kind"), text(r, "/uid")))
}

fn short_hash(value: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut h);
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = h.finish();
    (0..10)
        .map(|_| {
            let c = alphabet[(n % alphabet.len() as u64) as usize] as char;
            n /= alphabet.len() as u64;
            c
        })
        .collect()
}

fn random_suffix() -> String {
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True")
}

impl Simulator {
    /// A simulator for the API's objects.
    pub fn new(api: Api) -> Self {
        Simulator { api }
    }

    fn target(&self, group: &str, kind: &str, namespace: &str) -> Option<Target> {
        self.api.target_for_kind(group, kind, Some(namespace))
    }

    fn in_namespace(&self, group: &str, kind: &str, namespace: &str) -> Vec<Arc<Value>> {
        let Some(t) = self.api.registry.by_kind(group, kind) else {
            return Vec::new();
        };
        let prefix = if t.namespaced {
            format!("{}{namespace}/", t.key_prefix())
        } else {
            t.key_prefix()
        };
        self.api
            .store
            .list(&prefix)
            .0
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    fn all_of(&self, group: &str, kind: &str) -> Vec<Arc<Value>> {
        let Some(t) = self.api.registry.by_kind(group, kind) else {
            return Vec::new();
        };
        self.api
            .store
            .list(&t.key_prefix())
            .0
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    fn owned(&self, group: &str, kind: &str, owner: &Value) -> Vec<Arc<Value>> {
        let namespace = text(owner, "/metadata/namespace");
        self.in_namespace(group, kind, namespace)
            .into_iter()
            .filter(|o| {
                controlled_by(o).is_some_and(|(_, u)| u == uid(owner)) && !semantics::is_deleting(o)
            })
            .collect()
    }

    async fn create(&self, group: &str, kind: &str, namespace: &str, object: Value) {
        if let Some(t) = self.target(group, kind, namespace) {
            let _ = self.api.create(&t, object, &options()).await;
        }
    }

    async fn patch(&self, object: &Value, patch: Value, status: bool) {
        if let Some(t) = target_of(&self.api, object) {
            let _ = self
                .api
                .patch(
                    &t,
                    name_of(object),
                    PatchKind::Merge,
                    patch,
                    status.then_some("status"),
                    &options(),
                )
                .await;
        }
    }

    async fn delete(&self, object: &Value) {
        if let Some(t) = target_of(&self.api, object) {
            let _ = self
                .api
                .delete(&t, name_of(object), &DeleteOptions::default())
                .await;
        }
    }

    /// Reconciles everything.
    pub async fn resync(&self) {
        self.ensure_node().await;
        for (group, kind) in [
            ("", "Pod"),
            ("", "PersistentVolumeClaim"),
            ("apps", "ReplicaSet"),
            ("apps", "Deployment"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("", "Service"),
            ("networking.k8s.io", "Ingress"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("policy", "PodDisruptionBudget"),
        ] {
            for object in self.all_of(group, kind) {
                self.reconcile(&object).await;
            }
        }
    }

    /// Reacts to a change.
    pub async fn observe(&self, event: &Event) {
        if event.kind == EventKind::Deleted {
            // A deleted pod may need replacing and changes its owner's status.
            if event.object.get("kind") == Some(&json!("Pod")) {
                self.reconcile_owner(&event.object).await;
                self.reconcile_services(&event.object).await;
                self.reconcile_budgets(&event.object).await;
            }
            return;
        }
        if let Some(current) = self.api.store.get(&event.key) {
            self.reconcile(&current).await;
        }
    }

    /// Time passes: job pods finish, faulty pods move on (a crash loop
    /// restarts, a slow pod gets ready), rollouts miss their deadline,
    /// CronJobs reach their schedule.
    pub async fn tick(&self) {
        let now = gitplane_object::time::now_unix();
        self.schedule_cron_jobs(now).await;
        for deployment in self.all_of("apps", "Deployment") {
            if missed_deadline(&deployment, now) {
                self.deployment(&deployment).await;
            }
        }
        for pod in self.all_of("", "Pod") {
            if Fault::of(&pod).is_some() && !runs_to_completion(&pod) {
                self.refresh_faulty_pod(&pod, now).await;
                continue;
            }
            if text(&pod, "/status/phase") != "Running" || !runs_to_completion(&pod) {
                continue;
            }
            let started = parse_rfc3339(text(&pod, "/status/startTime")).unwrap_or(now);
            let duration = pod
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    DURATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .and_then(|d| d.trim_end_matches('s').parse::<i64>().ok())
                .unwrap_or(1);
            if now - started >= duration {
                self.finish_pod(&pod).await;
            }
        }
    }

    /// A faulty pod's status as time has moved it.
    async fn refresh_faulty_pod(&self, pod: &Value, now: i64) {
        let phase = text(pod, "/status/phase");
        if semantics::is_deleting(pod)
            || phase.is_empty()
            || phase == "Succeeded"
            || phase == "Failed"
        {
            return;
        }
        let started = parse_rfc3339(text(pod, "/status/startTime")).unwrap_or(now);
        let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
        let image = containers
            .and_then(|c| c.first())
            .map(|c| text(c, "/image"))
            .unwrap_or_default();
        let view = faults::view(Fault::of(pod), now - started, image);
        if !faults::shows(pod, &view) {
            let status = pod_status(pod, started, now);
            self.patch(pod, json!({"status": status}), true).await;
        }
    }

    /// Each CronJob not suspended records the minute its schedule fired.
    async fn schedule_cron_jobs(&self, now: i64) {
        let minute = now - now.rem_euclid(60);
        let at = civil(minute);
        for job in self.all_of("batch", "CronJob") {
            if semantics::is_deleting(&job)
                || job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true)
            {
                continue;
            }
            let created = parse_rfc3339(text(&job, "/metadata/creationTimestamp")).unwrap_or(now);
            let time = gitplane_object::time::format_unix(minute);
            let due = minute > created
                && text(&job, "/status/lastScheduleTime") != time
                && cron::Schedule::parse(text(&job, "/spec/schedule"))
                    .is_ok_and(|s| s.matches(&at));
            if due {
                let status = json!({"status": {"lastScheduleTime": time, "lastSuccessfulTime": time, "active": null}});
                self.patch(&job, status, true).await;
            }
        }
    }

    async fn reconcile(&self, object: &Value) {
        let api_version = text(object, "/apiVersion");
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        match (group, text(object, "/kind")) {
            ("", "Pod") => {
                self.pod(object).await;
                self.reconcile_owner(object).await;
                self.reconcile_services(object).await;
                self.reconcile_budgets(object).await;
            }
            ("apps", "Deployment") => {
                self.deployment(object).await;
                self.reconcile_autoscalers(object).await;
            }
            ("apps", "ReplicaSet") => {
                self.replica_set(object).await;
                self.reconcile_owner(object).await;
            }
            ("apps", "StatefulSet") => {
                self.stateful_set(object).await;
                self.reconcile_autoscalers(object).await;
            }
            ("autoscaling", "HorizontalPodAutoscaler") => self.autoscaler(object).await,
            ("policy", "PodDisruptionBudget") => self.disruption_budget(object).await,
            ("apps", "DaemonSet") => self.daemon_set(object).await,
            ("batch", "Job") => self.job(object).await,
            ("", "Service") => self.service(object).await,
            ("", "PersistentVolumeClaim") => self.claim(object).await,
            ("networking.k8s.io", "Ingress") => self.ingress(object).await,
            _ => {}
        }
    }

    async fn reconcile_owner(&self, object: &Value) {
        let Some((kind, owner_uid)) = controlled_by(object) else {
            return;
        };
        let namespace = text(object, "/metadata/namespace");
        let group = match kind {
            "ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet" => "apps",
            "Job" => "batch",
            _ => return,
        };
        let owner = self
            .in_namespace(group, kind, namespace)
            .into_iter()
            .find(|o| uid(o) == owner_uid);
        if let Some(owner) = owner {
            Box::pin(self.reconcile(&owner)).await;
        }
    }

    async fn ensure_node(&self) {
        let Some(t) = self.api.target_for_kind("", "Node", None) else {
            return;
        };
        if self.api.get(&t, NODE).is_ok() {
            return;
        }
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": ""}, "annotations": {SIMULATED: "true"}},
            "spec": {},
        });
        if let Ok(written) = self.api.create(&t, node, &options()).await {
            let status = json!({"status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated by gitplane", "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": NODE}],
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "250"},
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "250"},
                "nodeInfo": {"kubeletVersion": "v1.32.0-gitplane-simulated", "containerRuntimeVersion": "simulated://gitplane", "operatingSystem": "linux", "architecture": "amd64"},
            }});
            self.patch(&written.object, status, true).await;
        }
    }

    fn pod_from_template(
        &self,
        owner: &Value,
        template: &Value,
        name: &str,
        extra_labels: &[(&str, String)],
    ) -> Value {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template.get("metadata").cloned().unwrap_or(json!({})), "spec": template.get("spec").cloned().unwrap_or(json!({}))});
        pod["metadata"]["name"] = json!(name);
        pod["metadata"]["namespace"] = owner["metadata"]["namespace"].clone();
        pod["metadata"]["ownerReferences"] = json!([owner_ref(owner)]);
        for (k, v) in extra_labels {
            pod["metadata"]["labels"][*k] = json!(v);
        }
        pod["metadata"]["annotations"][SIMULATED] = json!("true");
        if let Some(fault) = faults::annotation(owner) {
            pod["metadata"]["annotations"][FAULT_ANNOTATION] = json!(fault);
        }
        pod["spec"]["nodeName"] = json!(NODE);
        pod
    }

    async fn pod(&self, pod: &Value) {
        if semantics::is_deleting(pod) || !text(pod, "/status/phase").is_empty() {
            return;
        }
        if pod
            .pointer(&format!(
                "/metadata/annotations/{}",
                SIMULATED.replace('/', "~1")
            ))
            .is_none()
        {
            self.patch(
                pod,
                json!({"metadata": {"annotations": {SIMULATED: "true"}}}),
                false,
            )
            .await;
        }
        let now = gitplane_object::time::parse_rfc3339(&now_rfc3339()).unwrap_or(0);
        let status = pod_status(pod, now, now);
        self.patch(pod, json!({"status": status}), true).await;
    }

    async fn finish_pod(&self, pod: &Value) {
        let code: i64 = pod
            .pointer(&format!(
                "/metadata/annotations/{}",
                EXIT_CODE.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let now = now_rfc3339();
        let phase = if code == 0 { "Succeeded" } else { "Failed" };
        let reason = if code == 0 { "Completed" } else { "Error" };
        let statuses: Vec<Value> = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| {
                let mut s = s.clone();
                s["ready"] = json!(false);
                s["started"] = json!(false);
                s["state"] = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": text(pod, "/status/startTime"), "finishedAt": now}});
                s
            })
            .collect();
        let condition = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": now, "lastProbeTime": null});
        let status = json!({"status": {
            "phase": phase,
            "conditions": [condition("Initialized", "True"), condition("Ready", "False"), condition("ContainersReady", "False"), condition("PodScheduled", "True")],
            "containerStatuses": statuses,
        }});
        self.patch(pod, status, true).await;
    }

    async fn deployment(&self, d: &Value) {
        if semantics::is_deleting(d) {
            return;
        }
        let namespace = text(d, "/metadata/namespace").to_string();
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = short_hash(&template);
        let rs_name = format!("{}-{hash}", name_of(d));
        let desired = int(d, "/spec/replicas", 1);
        let replica_sets = self.owned("apps", "ReplicaSet", d);
        let current = replica_sets
            .iter()
            .find(|rs| name_of(rs) == rs_name)
            .cloned();
        let revision = replica_sets
            .iter()
            .filter_map(|rs| {
                text(
                    rs,
                    "/metadata/annotations/deployment.kubernetes.io~1revision",
                )
                .parse::<i64>()
                .ok()
            })
            .max()
            .unwrap_or(0);
        match &current {
            None => {
                let mut labels = template
                    .pointer("/metadata/labels")
                    .cloned()
                    .unwrap_or(json!({}));
                labels["pod-template-hash"] = json!(hash);
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let mut rs_template = template.clone();
                rs_template["metadata"]["labels"] = labels.clone();
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": rs_name, "namespace": namespace, "labels": labels, "ownerReferences": [owner_ref(d)],
                                 "annotations": rs_annotations(d, revision + 1, desired)},
                    "spec": {"replicas": desired, "selector": selector, "template": rs_template},
                });
                self.create("apps", "ReplicaSet", &namespace, rs).await;
            }
            Some(rs) if int(rs, "/spec/replicas", 1) != desired => {
                self.patch(rs, json!({"spec": {"replicas": desired}}), false)
                    .await
            }
            Some(_) => {}
        }
        for old in replica_sets
            .iter()
            .filter(|rs| name_of(rs) != rs_name && int(rs, "/spec/replicas", 0) != 0)
        {
            self.patch(old, json!({"spec": {"replicas": 0}}), false)
                .await;
        }
        let replica_sets = self.owned("apps", "ReplicaSet", d);
        let sum = |p: &str| replica_sets.iter().map(|rs| int(rs, p, 0)).sum::<i64>();
        let updated = replica_sets
            .iter()
            .find(|rs| name_of(rs) == rs_name)
            .map_or(0, |rs| int(rs, "/status/replicas", 0));
        let (replicas, ready, available) = (
            sum("/status/replicas"),
            sum("/status/readyReplicas"),
            sum("/status/availableReplicas"),
        );
        let now = now_rfc3339();
        let complete = updated == desired && available == desired && replicas == desired;
        let stalled = !complete && rollout_stalled(d, &rs_name, parse_rfc3339(&now).unwrap_or(0));
        let mut status = json!({
            "observedGeneration": int(d, "/metadata/generation", 1), "replicas": replicas, "updatedReplicas": updated,
            "readyReplicas": ready, "availableReplicas": available,
            "conditions": [
                {"type": "Available", "status": if available >= desired { "True" } else { "False" },
                 "reason": if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                 "message": if available >= desired { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                 "lastUpdateTime": now, "lastTransitionTime": now},
                progressing_condition(&rs_name, complete, stalled, &now),
            ],
        });
        if replicas > available {
            status["unavailableReplicas"] = json!(replicas - available);
        }
        self.set_status(d, status).await;
    }

    /// Writes a status if it changed (condition times aside).
    async fn set_status(&self, object: &Value, mut status: Value) {
        let current = object.get("status").cloned().unwrap_or(json!({}));
        if let (Some(new), Some(old)) = (
            status.get_mut("conditions").and_then(Value::as_array_mut),
            current.get("conditions").and_then(Value::as_array),
        ) {
            for c in new.iter_mut() {
                let same = old.iter().find(|o| o.get("type") == c.get("type"));
                if let Some(same) = same {
                    for field in ["lastUpdateTime", "lastTransitionTime"] {
                        if let Some(v) = same.get(field) {
                            if field == "lastTransitionTime"
                                && same.get("status") != c.get("status")
                            {
                                continue;
                            }
                            if field == "lastUpdateTime"
                                && (same.get("reason") != c.get("reason")
                                    || same.get("message") != c.get("message"))
                            {
                                continue;
                            }
                            c[field] = v.clone();
                        }
                    }
                }
            }
        }
        if current != status {
            let mut patch_status = status.clone();
            if let (Some(old), Some(new)) = (current.as_object(), patch_status.as_object_mut()) {
                for key in old.keys() {
                    new.entry(key.clone()).or_insert(Value::Null);
                }
            }
            self.patch(object, json!({"status": patch_status}), true)
                .await;
        }
    }

    async fn replica_set(&self, rs: &Value) {
        if semantics::is_deleting(rs) {
            return;
        }
        let namespace = text(rs, "/metadata/namespace").to_string();
        let desired = int(rs, "/spec/replicas", 1);
        let pods: Vec<Arc<Value>> = self
            .owned("", "Pod", rs)
            .into_iter()
            .filter(|p| text(p, "/status/phase") != "Failed")
            .collect();
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        for _ in pods.len() as i64..desired {
            let pod = self.pod_from_template(
                rs,
                &template,
                &format!("{}-{}", name_of(rs), random_suffix()),
                &[],
            );
            self.create("", "Pod", &namespace, pod).await;
        }
        for extra in pods.iter().skip(desired.max(0) as usize) {
            self.delete(extra).await;
        }
        let pods = self.owned("", "Pod", rs);
        let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
        let status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": int(rs, "/metadata/generation", 1)});
        self.set_status(rs, status).await;
    }

    async fn stateful_set(&self, sts: &Value) {
        if semantics::is_deleting(sts) {
            return;
        }
        let namespace = text(sts, "/metadata/namespace").to_string();
        let name = name_of(sts).to_string();
        let desired = int(sts, "/spec/replicas", 1);
        let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let revision = format!("{name}-{}", short_hash(&template));
        let pods = self.owned("", "Pod", sts);
        let claims = self.in_namespace("", "PersistentVolumeClaim", &namespace);
        for i in 0..desired {
            let pod_name = format!("{name}-{i}");
            for claim in sts
                .pointer("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let claim_name = format!("{}-{pod_name}", text(claim, "/metadata/name"));
                if !claims.iter().any(|c| name_of(c) == claim_name) {
                    let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": claim.get("metadata").cloned().unwrap_or(json!({})), "spec": claim.get("spec").cloned().unwrap_or(json!({}))});
                    pvc["metadata"]["name"] = json!(claim_name);
                    pvc["metadata"]["namespace"] = json!(namespace);
                    self.create("", "PersistentVolumeClaim", &namespace, pvc)
                        .await;
                }
            }
            if !pods.iter().any(|p| name_of(p) == pod_name) {
                let labels = [
                    ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                    ("controller-revision-hash", revision.clone()),
                ];
                let pod = self.pod_from_template(sts, &template, &pod_name, &labels);
                self.create("", "Pod", &namespace, pod).await;
            }
        }
        for pod in &pods {
            let ordinal: i64 = name_of(pod)
                .rsplit('-')
                .next()
                .and_then(|o| o.parse().ok())
                .unwrap_or(i64::MAX);
            if ordinal >= desired {
                self.delete(pod).await;
            }
        }
        let pods = self.owned("", "Pod", sts);
        let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
        let status = json!({
            "observedGeneration": int(sts, "/metadata/generation", 1), "replicas": pods.len(), "readyReplicas": ready,
            "currentReplicas": pods.len(), "updatedReplicas": pods.len(), "availableReplicas": ready,
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
        });
        self.set_status(sts, status).await;
    }

    async fn daemon_set(&self, ds: &Value) {
        if semantics::is_deleting(ds) {
            return;
        }
        let namespace = text(ds, "/metadata/namespace").to_string();
        let pods = self.owned("", "Pod", ds);
        if pods.is_empty() {
            let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let pod = self.pod_from_template(
                ds,
                &template,
                &format!("{}-{}", name_of(ds), random_suffix()),
                &[],
            );
            self.create("", "Pod", &namespace, pod).await;
        }
        let pods = self.owned("", "Pod", ds);
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        let status = json!({
            "observedGeneration": int(ds, "/metadata/generation", 1), "desiredNumberScheduled": 1, "currentNumberScheduled": pods.len(),
            "numberReady": ready, "updatedNumberScheduled": pods.len(), "numberAvailable": ready, "numberMisscheduled": 0,
        });
        self.set_status(ds, status).await;
    }

    async fn job(&self, job: &Value) {
        if semantics::is_deleting(job) {
            return;
        }
        let conditions = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if conditions.iter().any(|c| {
            matches!(text(c, "/type"), "Complete" | "Failed") && text(c, "/status") == "True"
        }) {
            return;
        }
        let namespace = text(job, "/metadata/namespace").to_string();
        let pods = self.owned("", "Pod", job);
        let succeeded = pods
            .iter()
            .filter(|p| text(p, "/status/phase") == "Succeeded")
            .count() as i64;
        let failed = pods
            .iter()
            .filter(|p| text(p, "/status/phase") == "Failed")
            .count() as i64;
        let active = pods.len() as i64 - succeeded - failed;
        let completions = int(job, "/spec/completions", 1);
        let backoff = int(job, "/spec/backoffLimit", 6);
        let now = now_rfc3339();
        let start = job
            .pointer("/status/startTime")
            .cloned()
            .unwrap_or(json!(now));
        let mut status = json!({"startTime": start, "active": active, "succeeded": succeeded, "failed": failed, "ready": active, "terminating": 0});
        if succeeded >= completions {
            status["completionTime"] = json!(now);
            status["active"] = json!(0);
            status["conditions"] = json!([
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
            ]);
        } else if failed > backoff {
            status["active"] = json!(0);
            status["conditions"] = json!([
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
            ]);
        } else if active == 0 {
            let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let labels = [
                ("job-name", name_of(job).to_string()),
                ("batch.kubernetes.io/job-name", name_of(job).to_string()),
                ("batch.kubernetes.io/controller-uid", uid(job).to_string()),
            ];
            let pod = self.pod_from_template(
                job,
                &template,
                &format!("{}-{}", name_of(job), random_suffix()),
                &labels,
            );
            self.create("", "Pod", &namespace, pod).await;
            status["active"] = json!(1);
            status["ready"] = json!(1);
        }
        self.set_status(job, status).await;
    }

    /// The Services whose selector picks `pod` follow its change.
    async fn reconcile_services(&self, pod: &Value) {
        let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
        let namespace = text(pod, "/metadata/namespace");
        for service in self.in_namespace("", "Service", namespace) {
            let selects = service
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .filter(|s| !s.is_empty())
                .is_some_and(|selector| {
                    selector
                        .iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                });
            if selects {
                self.service(&service).await;
            }
        }
    }

    async fn service(&self, service: &Value) {
        if semantics::is_deleting(service) {
            return;
        }
        let namespace = text(service, "/metadata/namespace").to_string();
        let name = name_of(service).to_string();
        if text(service, "/spec/type") == "LoadBalancer"
            && service.pointer("/status/loadBalancer/ingress").is_none()
        {
            self.patch(service, json!({"status": {"loadBalancer": {"ingress": [{"ip": load_balancer_ip(service), "ipMode": "VIP"}]}}}), true).await;
        }
        let Some(selector) = service
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
        else {
            return;
        };
        let selector =
            LabelSelector::from_json(&json!({"matchLabels": selector})).unwrap_or_default();
        let pods: Vec<Arc<Value>> = self
            .in_namespace("", "Pod", &namespace)
            .into_iter()
            .filter(|p| {
                selector.matches(p.pointer("/metadata/labels").and_then(Value::as_object))
                    && is_ready(p)
                    && !semantics::is_deleting(p)
            })
            .collect();
        let ports: Vec<Value> = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let target = resolve_target_port(p, pods.first().map(|p| p.as_ref()));
                let mut port = json!({"port": target, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
                if let Some(n) = p.get("name") {
                    port["name"] = n.clone();
                }
                port
            })
            .collect();
        let addresses: Vec<Value> = pods
            .iter()
            .map(|p| json!({"ip": text(p, "/status/podIP"), "nodeName": NODE, "targetRef": {"kind": "Pod", "namespace": namespace, "name": name_of(p), "uid": uid(p)}}))
            .collect();
        let subsets = if addresses.is_empty() {
            json!([])
        } else {
            json!([{"addresses": addresses, "ports": ports}])
        };
        let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace, "labels": service.pointer("/metadata/labels").cloned().unwrap_or(json!({})), "ownerReferences": [owner_ref(service)]}, "subsets": subsets});
        self.upsert("", "Endpoints", &namespace, &name, endpoints, "subsets")
            .await;
        let slice_name = format!("{name}-simulated");
        let slice_endpoints: Vec<Value> = pods
            .iter()
            .map(|p| json!({"addresses": [text(p, "/status/podIP")], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": NODE, "targetRef": {"kind": "Pod", "namespace": namespace, "name": name_of(p), "uid": uid(p)}}))
            .collect();
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": namespace, "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "gitplane-simulator"}, "ownerReferences": [owner_ref(service)]},
            "addressType": "IPv4", "endpoints": slice_endpoints, "ports": ports,
        });
        self.upsert(
            "discovery.k8s.io",
            "EndpointSlice",
            &namespace,
            &slice_name,
            slice,
            "endpoints",
        )
        .await;
    }

    /// Creates an object, or updates the field that the simulator manages.
    async fn upsert(
        &self,
        group: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        desired: Value,
        field: &str,
    ) {
        let Some(t) = self.target(group, kind, namespace) else {
            return;
        };
        match self.api.get(&t, name) {
            Ok(current) => {
                if current.get(field) != desired.get(field)
                    || (field == "endpoints" && current.get("ports") != desired.get("ports"))
                {
                    let mut patch =
                        json!({field: desired.get(field).cloned().unwrap_or(Value::Null)});
                    if field == "endpoints" {
                        patch["ports"] = desired.get("ports").cloned().unwrap_or(Value::Null);
                    }
                    let _ = self
                        .api
                        .patch(&t, name, PatchKind::Merge, patch, None, &options())
                        .await;
                }
            }
            Err(_) => {
                let _ = self.api.create(&t, desired, &options()).await;
            }
        }
    }

    async fn claim(&self, pvc: &Value) {
        if semantics::is_deleting(pvc) || text(pvc, "/status/phase") == "Bound" {
            return;
        }
        if text(pvc, "/spec/volumeName").is_empty() {
            self.patch(
                pvc,
                json!({"spec": {"volumeName": format!("pvc-{}", uid(pvc))}}),
                false,
            )
            .await;
        }
        let capacity = pvc
            .pointer("/spec/resources/requests/storage")
            .cloned()
            .unwrap_or(json!("1Gi"));
        let modes = pvc
            .pointer("/spec/accessModes")
            .cloned()
            .unwrap_or(json!(["ReadWriteOnce"]));
        self.patch(pvc, json!({"status": {"phase": "Bound", "accessModes": modes, "capacity": {"storage": capacity}}}), true).await;
    }

    async fn ingress(&self, ingress: &Value) {
        if semantics::is_deleting(ingress)
            || ingress.pointer("/status/loadBalancer/ingress").is_some()
        {
            return;
        }
        self.patch(
            ingress,
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.1"}]}}}),
            true,
        )
        .await;
    }
}

/// A pod's status at `now` (Unix seconds) when it started at `started`:
/// Running and Ready, unless a fault ([`faults`]) says otherwise.
fn pod_status(pod: &Value, started: i64, now: i64) -> Value {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let image = containers
        .first()
        .map(|c| text(c, "/image"))
        .unwrap_or_default();
    let fault = Fault::of(pod);
    let view = faults::view(fault, now - started, image);
    let started_at = gitplane_object::time::format_unix(started);
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| faults::container_status(&view, c, uid(pod), &started_at))
        .collect();
    let changed_at = if fault.is_some() {
        gitplane_object::time::format_unix(now)
    } else {
        started_at.clone()
    };
    let flag = |b: bool| if b { "True" } else { "False" };
    let condition = |t: &str, status: &str, at: &str| json!({"type": t, "status": status, "lastTransitionTime": at, "lastProbeTime": null});
    let mut ready = condition("Ready", flag(view.ready), &changed_at);
    let mut containers_ready = condition("ContainersReady", flag(view.ready), &changed_at);
    if !view.ready {
        let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
        let message = format!("containers with unready status: [{}]", names.join(" "));
        for c in [&mut ready, &mut containers_ready] {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(message);
        }
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid(pod).hash(&mut hasher);
    let n = hasher.finish();
    let ip = format!("10.244.{}.{}", (n >> 8) % 256, 2 + n % 250);
    json!({
        "phase": view.phase,
        "conditions": [
            condition("PodReadyToStartContainers", flag(view.phase == "Running"), &started_at),
            condition("Initialized", "True", &started_at), ready, containers_ready,
            condition("PodScheduled", "True", &started_at),
        ],
        "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": started_at, "qosClass": "BestEffort", "containerStatuses": statuses,
    })
}

/// The annotations of a Deployment's ReplicaSet: its revision, and the
/// Deployment's injected fault, which its pods inherit.
fn rs_annotations(deployment: &Value, revision: i64, desired: i64) -> Value {
    let mut annotations = json!({
        "deployment.kubernetes.io/revision": revision.to_string(),
        "deployment.kubernetes.io/desired-replicas": desired.to_string(),
    });
    if let Some(fault) = faults::annotation(deployment) {
        annotations[FAULT_ANNOTATION] = json!(fault);
    }
    annotations
}

/// The Deployment's `Progressing` condition: done, under way, or stuck past
/// its progress deadline.
fn progressing_condition(rs_name: &str, complete: bool, stalled: bool, now: &str) -> Value {
    let (status, reason, message) = if complete {
        (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else if stalled {
        (
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
        )
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    json!({"type": "Progressing", "status": status, "reason": reason, "message": message,
           "lastUpdateTime": now, "lastTransitionTime": now})
}

/// The Deployment's recorded `Progressing` condition.
fn progressing(deployment: &Value) -> Option<&Value> {
    deployment
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| text(c, "/type") == "Progressing")
}

/// A rollout under way for longer than `progressDeadlineSeconds` (default
/// 600), counted from when its `Progressing` condition was last updated.
fn missed_deadline(deployment: &Value, now: i64) -> bool {
    let Some(progressing) = progressing(deployment) else {
        return false;
    };
    if text(progressing, "/reason") != "ReplicaSetUpdated" {
        return false;
    }
    let deadline = int(deployment, "/spec/progressDeadlineSeconds", 600);
    parse_rfc3339(text(progressing, "/lastUpdateTime")).is_some_and(|at| now - at > deadline)
}

/// Whether the rollout to ReplicaSet `rs_name` is stuck: it missed its
/// deadline now, or was already reported stuck (until it completes or a
/// new rollout starts, as the deployment controller keeps it).
fn rollout_stalled(deployment: &Value, rs_name: &str, now: i64) -> bool {
    let Some(condition) = progressing(deployment) else {
        return false;
    };
    let same_rollout = text(condition, "/message").contains(&format!("\"{rs_name}\""));
    same_rollout
        && (text(condition, "/reason") == "ProgressDeadlineExceeded"
            || missed_deadline(deployment, now))
}

fn runs_to_completion(pod: &Value) -> bool {
    controlled_by(pod).is_some_and(|(kind, _)| kind == "Job")
        || matches!(text(pod, "/spec/restartPolicy"), "Never" | "OnFailure")
}

fn load_balancer_ip(service: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid(service).hash(&mut h);
    let n = h.finish();
    format!("172.18.{}.{}", 1 + (n >> 8) % 254, 1 + n % 254)
}

/// A Service port's target: a number, or a named container port of a backing pod.
fn resolve_target_port(port: &Value, pod: Option<&Value>) -> Value {
    match port.get("targetPort") {
        Some(Value::String(name)) => {
            let found = pod
                .and_then(|p| p.pointer("/spec/containers"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| {
                    c.get("ports")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|p| p.get("containerPort").cloned());
            found.unwrap_or_else(|| port.get("port").cloned().unwrap_or(json!(0)))
        }
        Some(n) => n.clone(),
        None => port.get("port").cloned().unwrap_or(json!(0)),
    }
}
