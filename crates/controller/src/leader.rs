//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go's
//! leader election does it: the holder renews the lease every couple of
//! seconds; another replica takes it over once it has seen the same lease
//! record unchanged for the whole lease duration (measured on its own
//! clock, so clocks need not agree). A holder that cannot renew before its
//! lease runs out stops acting, so two replicas never act at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gitplane_cluster::{Cluster, ClusterError};
use gitplane_object::{Gvk, Object};
use serde_json::json;

/// How leadership is held.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// The Lease's namespace (the control namespace).
    pub namespace: String,
    /// The Lease's name (one per shard).
    pub name: String,
    /// Who this replica is (host name and process id by default).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How often the holder renews, and others try to take over.
    pub retry: Duration,
}

impl LeaseOptions {
    /// A lease named `name` in `namespace`: 10 s, retried every 2 s (a
    /// standby takes over within about 12 s of the leader's death).
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaseOptions {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            duration: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// A replica's view of the lease.
pub struct LeaderElection {
    cluster: Arc<Cluster>,
    options: LeaseOptions,
}

/// The lease as last seen, and when this replica first saw it so.
struct Observed {
    record: String,
    holder: String,
    since: Instant,
}

fn lease_gvk() -> Gvk {
    Gvk::new("coordination.k8s.io", "v1", "Lease")
}

/// Now as a Kubernetes `MicroTime`.
fn micro_now() -> String {
    let now = std::time::SystemTime::now();
    let micros = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_micros())
        .unwrap_or(0);
    let seconds = gitplane_object::time::format_rfc3339(now);
    format!("{}.{micros:06}Z", seconds.trim_end_matches('Z'))
}

impl LeaderElection {
    /// Election for `options.name` on `cluster`.
    pub fn new(cluster: Arc<Cluster>, options: LeaseOptions) -> Self {
        LeaderElection { cluster, options }
    }

    /// Waits until this replica holds the lease. `waiting` is told who holds
    /// it while it is someone else.
    pub async fn acquire(&self, waiting: &(dyn Fn(&str) + Send + Sync)) {
        let mut observed = None;
        let mut told = String::new();
        loop {
            match self.try_acquire(&mut observed).await {
                Ok(true) => return,
                Ok(false) => {
                    if let Some(o) = &observed
                        && o.holder != told
                    {
                        waiting(&o.holder);
                        told = o.holder.clone();
                    }
                }
                Err(e) => tracing::warn!("leader election: {e}"),
            }
            tokio::time::sleep(self.options.retry).await;
        }
    }

    /// Renews the lease while this replica holds it; returns when it no
    /// longer does (another replica took it, or it could not be renewed
    /// before it ran out).
    pub async fn hold(&self) -> String {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.options.retry).await;
            match self.renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => return "another replica holds the lease".into(),
                Err(e) => {
                    tracing::warn!("renewing the lease: {e}");
                    // Stop before the lease can have run out for others.
                    if renewed.elapsed() + self.options.retry >= self.options.duration {
                        return format!("the lease could not be renewed: {e}");
                    }
                }
            }
        }
    }

    async fn get(&self) -> Result<Option<Object>, ClusterError> {
        self.cluster
            .get(&lease_gvk(), &self.options.namespace, &self.options.name)
            .await
    }

    fn spec(&self, acquired: &str, transitions: i64) -> serde_json::Value {
        json!({
            "holderIdentity": self.options.identity,
            "leaseDurationSeconds": self.options.duration.as_secs(),
            "acquireTime": acquired,
            "renewTime": micro_now(),
            "leaseTransitions": transitions,
        })
    }

    /// One attempt: creates the lease, renews it if held, or takes it over
    /// once it has stayed unchanged for a lease duration.
    async fn try_acquire(&self, observed: &mut Option<Observed>) -> Result<bool, ClusterError> {
        let Some(lease) = self.get().await? else {
            let mut lease =
                Object::with_type("coordination.k8s.io/v1", "Lease", &self.options.name);
            lease.set_namespace(&self.options.namespace);
            lease.set(&["spec"], self.spec(&micro_now(), 0));
            return match self.cluster.create(&lease, false).await {
                Ok(_) => Ok(true),
                Err(e) if matches!(e.code(), Some(409)) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let holder = lease
            .str_at(&["spec", "holderIdentity"])
            .unwrap_or_default()
            .to_string();
        if holder == self.options.identity {
            return self.renew().await;
        }
        let record = lease
            .get(&["spec"])
            .map(ToString::to_string)
            .unwrap_or_default();
        let unchanged_for = match observed {
            Some(o) if o.record == record => o.since.elapsed(),
            _ => {
                *observed = Some(Observed {
                    record,
                    holder: holder.clone(),
                    since: Instant::now(),
                });
                Duration::ZERO
            }
        };
        let duration = lease
            .get(&["spec", "leaseDurationSeconds"])
            .and_then(serde_json::Value::as_u64)
            .map_or(self.options.duration, Duration::from_secs);
        if !holder.is_empty() && unchanged_for < duration {
            return Ok(false);
        }
        let transitions = lease
            .get(&["spec", "leaseTransitions"])
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let mut taken = lease.clone();
        taken.set(&["spec"], self.spec(&micro_now(), transitions + 1));
        match self.cluster.replace(&taken, &lease, false).await {
            Ok(_) => {
                tracing::info!("took over the lease from {holder}");
                Ok(true)
            }
            Err(e) if matches!(e.code(), Some(409)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Renews the lease this replica holds (`false`: it does not hold it).
    async fn renew(&self) -> Result<bool, ClusterError> {
        let Some(lease) = self.get().await? else {
            return Ok(false);
        };
        if lease.str_at(&["spec", "holderIdentity"]) != Some(self.options.identity.as_str()) {
            return Ok(false);
        }
        let acquired = lease
            .str_at(&["spec", "acquireTime"])
            .unwrap_or_default()
            .to_string();
        let transitions = lease
            .get(&["spec", "leaseTransitions"])
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let mut renewed = lease.clone();
        renewed.set(&["spec"], self.spec(&acquired, transitions));
        match self.cluster.replace(&renewed, &lease, false).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.code(), Some(409)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (on a clean shutdown), so a standby takes over at
    /// once instead of after the lease runs out.
    pub async fn release(&self) {
        let Ok(Some(lease)) = self.get().await else {
            return;
        };
        if lease.str_at(&["spec", "holderIdentity"]) != Some(self.options.identity.as_str()) {
            return;
        }
        let patch = json!({"spec": {"holderIdentity": "", "renewTime": null}});
        if let Err(e) = self.cluster.merge_patch(&lease, patch, "gitplane").await {
            tracing::warn!("releasing the lease: {e}");
        }
    }
}

/// This replica's identity: host name and process id.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "gitplane".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_times_have_six_digits() {
        let now = micro_now();
        assert_eq!(now.len(), "2026-12-03T09:00:00.000000Z".len(), "{now}");
        assert!(now.ends_with('Z'));
    }
}
