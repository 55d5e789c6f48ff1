//! Controllers that run inside the API server, as kube-controller-manager runs
//! beside a real one: garbage collection, namespace deletion, Gatekeeper's
//! constraint CRDs, Kyverno's generate rules, and (unless turned off) the
//! workload simulator. They react to the store's change stream and
//! write through the same API verbs as every client.

pub mod cleanup;
pub mod gatekeeper;
pub mod gc;
pub mod generate;
pub mod namespace;
pub mod simulate;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::api::{Api, Target, WriteOptions};
use crate::store::Event;

/// The field manager of the built-in controllers' writes.
pub const MANAGER: &str = "gitplane-controller-manager";

/// Write options of controller writes.
pub fn options() -> WriteOptions {
    WriteOptions {
        manager: Some(MANAGER.to_string()),
        // What these controllers write they derive again after a crash: they
        // need not wait for the disk, write after write.
        queued: true,
        ..WriteOptions::default()
    }
}

/// The target (type and namespace) of a stored object.
pub fn target_of(api: &Api, object: &Value) -> Option<Target> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    api.target_for_kind(
        group,
        kind,
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str),
    )
}

/// Name of a stored object.
pub fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Starts every controller.
pub fn start(api: &Api, simulate: bool) {
    let (_, events) = api.store.watch("", api.store.revision());
    let gc = gc::GarbageCollector::new(api.clone());
    let namespaces = namespace::NamespaceController::new(api.clone());
    let policies = Policies {
        templates: gatekeeper::TemplateController::new(api.clone()),
        generate: generate::GenerateController::new(api.clone()),
        cleanup: cleanup::CleanupController::new(api.clone()),
    };
    let simulator = simulate.then(|| simulate::Simulator::new(api.clone()));
    tokio::spawn(run(events, gc, namespaces, policies, simulator));
    tokio::spawn(gatekeeper::Auditor::new(api.clone()).run());
}

/// The controllers that act on stored policies.
struct Policies {
    templates: gatekeeper::TemplateController,
    generate: generate::GenerateController,
    cleanup: cleanup::CleanupController,
}

async fn run(
    mut events: broadcast::Receiver<Arc<Event>>,
    mut gc: gc::GarbageCollector,
    namespaces: namespace::NamespaceController,
    policies: Policies,
    simulator: Option<simulate::Simulator>,
) {
    gc.resync().await;
    namespaces.resync().await;
    policies.templates.resync().await;
    if let Some(s) = &simulator {
        s.resync().await;
    }
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => {
                    gc.observe(&event).await;
                    namespaces.observe(&event).await;
                    policies.templates.observe(&event).await;
                    policies.generate.observe(&event).await;
                    if let Some(s) = &simulator {
                        s.observe(&event).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    gc.resync().await;
                    namespaces.resync().await;
                    policies.templates.resync().await;
                    if let Some(s) = &simulator {
                        s.resync().await;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick() => {
                namespaces.resync().await;
                policies.cleanup.tick(gitplane_object::time::now_unix()).await;
                if let Some(s) = &simulator {
                    s.tick().await;
                }
            }
        }
    }
}
