#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! Durability: writers hammer `gitplane apiserver`, the process is killed with
//! SIGKILL at a random moment, and after a restart on the same data directory
//! every acknowledged write is there and the resource version moves forward.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

use common::start_apiserver;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};

async fn client(data: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(data.join("kubeconfig")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A pseudo-random delay from the clock: the kill lands somewhere different
/// every run, which is the point.
fn random_millis(range: std::ops::Range<u64>) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    range.start + nanos % (range.end - range.start)
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"payload": name.repeat(20)}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let highest_acknowledged = Arc::new(AtomicU64::new(0));
    const KILLS: usize = 3;
    for round in 0..=KILLS {
        let mut server = start_apiserver(&data, false);
        let api: Api<ConfigMap> = Api::namespaced(client(&data).await, "default");

        // Everything acknowledged before is still there, intact.
        let listed = api.list(&ListParams::default()).await.unwrap();
        let present: BTreeSet<String> = listed.items.iter().map(|cm| cm.name_any()).collect();
        let missing: Vec<_> = acknowledged
            .lock()
            .unwrap()
            .difference(&present)
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged but lost: {missing:?}"
        );
        for cm in &listed.items {
            assert_eq!(
                cm.data.as_ref().unwrap()["payload"],
                cm.name_any().repeat(20)
            );
        }
        let revision: u64 = listed.metadata.resource_version.unwrap().parse().unwrap();
        let acknowledged_revision = highest_acknowledged.load(Ordering::SeqCst);
        assert!(
            revision >= acknowledged_revision,
            "round {round}: revision {revision} is behind an acknowledged write at {acknowledged_revision}"
        );
        if round == KILLS {
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            break;
        }

        // Eight concurrent writers (the store commits them in groups) until the kill.
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (api, acknowledged) = (api.clone(), acknowledged.clone());
                let highest = highest_acknowledged.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let name = format!("r{round}-w{w}-{i}");
                        match api.create(&PostParams::default(), &config_map(&name)).await {
                            Ok(created) => {
                                let rv: u64 = created.resource_version().unwrap().parse().unwrap();
                                highest.fetch_max(rv, Ordering::SeqCst);
                                acknowledged.lock().unwrap().insert(name);
                            }
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(random_millis(300..1500))).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        for writer in writers {
            writer.await.unwrap();
        }
        let count = acknowledged.lock().unwrap().len();
        eprintln!("killed after {count} acknowledged writes in total");
        assert!(count > round * 10, "the writers made progress");
    }
}
