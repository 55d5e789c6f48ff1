//! Prometheus metrics of the controller (OpenMetrics text on `/metrics`).

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppSummary;

type Labels = Vec<(String, String)>;

/// The controller's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    apps: Family<Labels, Gauge>,
    operations: Family<Labels, Counter>,
    reconcile: Histogram,
    step: Histogram,
    queues: Family<Labels, Gauge>,
    fetch: Histogram,
    fetch_errors: Counter,
    render: Histogram,
    requests: Family<Labels, Counter>,
}

/// Requests one cluster handle made: its server, then (verb, code, count).
pub type RequestCounts = (String, Vec<(&'static str, String, u64)>);

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("gitplane")),
            apps: Family::default(),
            operations: Family::default(),
            reconcile: seconds_histogram(),
            step: seconds_histogram(),
            queues: Family::default(),
            fetch: seconds_histogram(),
            fetch_errors: Counter::default(),
            render: seconds_histogram(),
            requests: Family::default(),
        };
        {
            let mut r = metrics.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register(
                "apps",
                "Applications by sync and health status",
                metrics.apps.clone(),
            );
            r.register(
                "sync_operations",
                "Sync operations by final phase",
                metrics.operations.clone(),
            );
            r.register(
                "reconcile_duration_seconds",
                "Time to reconcile one application",
                metrics.reconcile.clone(),
            );
            r.register(
                "operation_step_duration_seconds",
                "Time of one step of a sync operation",
                metrics.step.clone(),
            );
            r.register(
                "queue_depth",
                "Applications queued or being worked on, by queue (status, operation)",
                metrics.queues.clone(),
            );
            r.register(
                "git_fetch_duration_seconds",
                "Time to resolve and snapshot a source",
                metrics.fetch.clone(),
            );
            r.register(
                "git_fetch_errors",
                "Failed or timed-out Git fetches",
                metrics.fetch_errors.clone(),
            );
            r.register(
                "render_duration_seconds",
                "Time to render one source at one commit",
                metrics.render.clone(),
            );
            r.register(
                "cluster_requests",
                "Kubernetes API requests by cluster, verb and status code (2xx: success; error: no response)",
                metrics.requests.clone(),
            );
        }
        metrics
    }
}

impl Metrics {
    pub(crate) fn reconciled(&self, took: Duration) {
        self.reconcile.observe(took.as_secs_f64());
    }

    pub(crate) fn stepped(&self, took: Duration) {
        self.step.observe(took.as_secs_f64());
    }

    /// Records how busy a queue is.
    pub(crate) fn queue_depth(&self, queue: &str, depth: usize) {
        self.queues
            .get_or_create(&vec![("queue".into(), queue.into())])
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub(crate) fn synced(&self, phase: &str) {
        self.operations
            .get_or_create(&vec![("phase".into(), phase.into())])
            .inc();
    }

    pub(crate) fn fetched(&self, took: Duration, failed: bool) {
        self.fetch.observe(took.as_secs_f64());
        if failed {
            self.fetch_errors.inc();
        }
    }

    pub(crate) fn rendered(&self, took: Duration) {
        self.render.observe(took.as_secs_f64());
    }

    /// The metrics as OpenMetrics text, with application counts from `apps`
    /// and request counts from the cluster handles.
    pub fn encode(&self, apps: &[AppSummary], requests: &[RequestCounts]) -> String {
        for (server, counts) in requests {
            for (verb, code, total) in counts {
                let labels = vec![
                    ("server".into(), server.clone()),
                    ("verb".into(), (*verb).into()),
                    ("code".into(), code.clone()),
                ];
                let counter = self.requests.get_or_create(&labels);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
        self.apps.clear();
        for app in apps {
            self.apps
                .get_or_create(&vec![
                    ("sync_status".into(), app.sync.clone()),
                    ("health_status".into(), app.health.clone()),
                ])
                .inc();
        }
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if encode(&mut text, &registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_apps_and_operations() {
        let metrics = Metrics::default();
        metrics.synced("Succeeded");
        metrics.fetched(Duration::from_millis(5), true);
        let app = AppSummary {
            name: "a".into(),
            sync: "Synced".into(),
            health: "Healthy".into(),
            ..AppSummary::default()
        };
        let requests = vec![("https://x".to_string(), vec![("get", "2xx".to_string(), 3)])];
        let text = metrics.encode(&[app.clone(), app], &requests);
        assert!(
            text.contains("gitplane_apps{sync_status=\"Synced\",health_status=\"Healthy\"} 2"),
            "{text}"
        );
        assert!(text.contains("gitplane_sync_operations_total{phase=\"Succeeded\"} 1"));
        assert!(text.contains("gitplane_git_fetch_errors_total 1"));
        assert!(text.contains(
            "gitplane_cluster_requests_total{server=\"https://x\",verb=\"get\",code=\"2xx\"} 3"
        ));
    }
}
