//! Policy at sync time: the policies in the application's repository (at
//! [`crate::ControllerOptions::policy_path`], at the commit being synced)
//! are evaluated on the rendered objects before anything is applied.
//! Enforced violations block the sync (a condition lists them); every
//! result is recorded as a `wgpolicyk8s.io/v1alpha2` PolicyReport beside
//! the object it is about.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gitplane_cluster::{ApplyOptions, Cluster, Propagation};
use gitplane_object::{Gvk, Object, Value};
use gitplane_policy::report::{MANAGED_BY, policy_report};
use gitplane_policy::{PolicySet, Report, RuleResult};
use gitplane_render::{RelPath, RenderOptions, Root};

use crate::ControllerError;

/// The report CRDs, installed where reports are written.
pub const REPORT_CRDS: &str = include_str!("../crds/policyreports.yaml");
/// The field manager of written reports.
const MANAGER: &str = "gitplane-policy";
/// Violations listed in a blocked app's condition before "and N more".
const LISTED: usize = 10;
/// Files larger than this are refused when reading policies.
const MAX_FILE_BYTES: u64 = 8 << 20;

/// Policies by commit, and what was last reported per application.
#[derive(Default)]
pub(crate) struct PolicyGate {
    sets: Mutex<HashMap<String, Result<Arc<PolicySet>, String>>>,
    reported: Mutex<HashMap<String, u64>>,
    report_crds: tokio::sync::Mutex<HashSet<String>>,
}

/// Reads the policies at `path` of a checkout: none if the path does not
/// exist there, an error naming every policy that does not compile.
fn read_policies(dir: PathBuf, path: &str) -> Result<PolicySet, String> {
    let root = Root::open(&dir, MAX_FILE_BYTES).map_err(|e| e.to_string())?;
    let Ok(rel) = root.resolve(&RelPath::root(), path) else {
        return Ok(PolicySet::default());
    };
    if root.kind(&rel).map_err(|e| e.to_string())?.is_none() {
        return Ok(PolicySet::default());
    }
    let objects = gitplane_render::render(&root, &rel, &RenderOptions::default())
        .map_err(|e| format!("policies at {path}: {e}"))?;
    PolicySet::load(objects).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("policies at {path} do not compile: {}", lines.join("; "))
    })
}

impl PolicyGate {
    /// The policies at `path` in the checkout of `commit` (cached per commit).
    pub(crate) async fn policies(
        &self,
        commit: &str,
        dir: PathBuf,
        path: &str,
    ) -> Result<Arc<PolicySet>, String> {
        let key = format!("{commit}\0{path}");
        if let Some(cached) = self
            .sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return cached.clone();
        }
        let owned = path.to_string();
        let loaded = tokio::task::spawn_blocking(move || read_policies(dir, &owned))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map(Arc::new);
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if sets.len() > 1_000 {
            sets.clear();
        }
        sets.insert(key, loaded.clone());
        loaded
    }

    /// Writes the PolicyReports of an application's objects, if they changed
    /// since the last write: one per object with results; reports of objects
    /// that no longer have any are deleted.
    pub(crate) async fn write_reports(
        &self,
        cluster: &Cluster,
        app: &str,
        objects: &[Object],
        report: &Report,
    ) -> Result<(), ControllerError> {
        let hash = results_hash(&report.results);
        if self
            .reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(app)
            == Some(&hash)
        {
            return Ok(());
        }
        self.install_report_crds(cluster).await?;
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let options = ApplyOptions {
            field_manager: MANAGER.into(),
            ..ApplyOptions::default()
        };
        let mut written = HashSet::new();
        for (index, results) in &report.results {
            let Some(object) = objects.get(*index) else {
                continue;
            };
            let body = policy_report(&object.to_value(), results, app, seconds);
            let Value::Object(map) = body else {
                continue;
            };
            let report_object = Object::new(map);
            written.insert((
                report_object.kind().to_string(),
                report_object.namespace().map(str::to_string),
                report_object.name().to_string(),
            ));
            cluster.apply(&report_object, &options).await?;
        }
        self.delete_stale(cluster, app, &written).await?;
        self.reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(app.to_string(), hash);
        Ok(())
    }

    async fn delete_stale(
        &self,
        cluster: &Cluster,
        app: &str,
        written: &HashSet<(String, Option<String>, String)>,
    ) -> Result<(), ControllerError> {
        let selector = format!("{}={},gitplane.io/app={app}", MANAGED_BY.0, MANAGED_BY.1);
        for kind in ["PolicyReport", "ClusterPolicyReport"] {
            let info = cluster
                .resolve(&Gvk::new("wgpolicyk8s.io", "v1alpha2", kind))
                .await?;
            for existing in cluster.list(&info, None, Some(&selector)).await? {
                let key = (
                    kind.to_string(),
                    existing.namespace().map(str::to_string),
                    existing.name().to_string(),
                );
                if !written.contains(&key) {
                    cluster
                        .delete(&existing, Propagation::Background, false)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn install_report_crds(&self, cluster: &Cluster) -> Result<(), ControllerError> {
        let mut installed = self.report_crds.lock().await;
        if installed.contains(cluster.server()) {
            return Ok(());
        }
        crate::apply_manifests(cluster, REPORT_CRDS, "policyreports.yaml").await?;
        crate::graphs::wait_for_kind(cluster, "wgpolicyk8s.io", "ClusterPolicyReport").await?;
        installed.insert(cluster.server().to_string());
        Ok(())
    }
}

/// The objects as the sync will write them: a namespaced object without a
/// namespace goes to the application's destination namespace (so
/// namespace rules and selectors see where it lands).
pub(crate) fn in_namespace(cluster: &Cluster, objects: &[Object], namespace: &str) -> Vec<Object> {
    objects
        .iter()
        .map(|object| {
            let namespaced = cluster
                .preferred(object.group(), object.kind())
                .map_or(object.namespace().is_some(), |info| info.namespaced);
            let mut placed = object.clone();
            if namespaced && object.namespace().is_none() {
                placed.set_namespace(namespace);
            }
            placed
        })
        .collect()
}

/// The objects with every resource-graph instance among them expanded by
/// the graphs the cluster serves. Without graphs, or if an instance does
/// not expand (the API server will refuse it), the objects as they are.
pub(crate) async fn expand_instances(cluster: &Cluster, objects: &[Object]) -> Vec<Object> {
    let Some(info) = cluster.preferred(gitplane_graph::KRO_GROUP, gitplane_graph::RGD_KIND) else {
        return objects.to_vec();
    };
    let graphs = match cluster.list(&info, None, None).await {
        Ok(graphs) => graphs,
        Err(e) => {
            tracing::warn!("listing resource graphs for policy checks: {e}");
            return objects.to_vec();
        }
    };
    match gitplane_graph::expand_offline(
        objects.to_vec(),
        &graphs,
        &gitplane_graph::cel_env(),
        "default",
    ) {
        Ok(expansion) => expansion.objects,
        Err(e) => {
            tracing::debug!("expanding instances for policy checks: {e}");
            objects.to_vec()
        }
    }
}

/// A hash of the results, without their messages' timestamps.
fn results_hash(results: &[(usize, Vec<RuleResult>)]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for (index, list) in results {
        index.hash(&mut hasher);
        for r in list {
            (&r.policy, &r.rule, r.verdict, r.mode, &r.message).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The condition message of a sync that enforced violations block, or
/// `None` if nothing blocks it.
pub(crate) fn blocking_message(report: &Report, path: &str) -> Option<String> {
    let blocking: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.result.blocks())
        .map(|f| {
            format!(
                "{}: {}/{}: {}",
                f.object, f.result.policy, f.result.rule, f.result.message
            )
        })
        .collect();
    if blocking.is_empty() {
        return None;
    }
    let mut message = format!(
        "sync blocked by policy ({path}): {} enforced violation(s), nothing applied: {}",
        blocking.len(),
        blocking
            .iter()
            .take(LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if blocking.len() > LISTED {
        message.push_str(&format!("; and {} more", blocking.len() - LISTED));
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_policy::{Engine, Finding, Mode, Verdict};

    #[test]
    fn only_enforced_failures_block_and_long_lists_are_cut() {
        let finding = |mode: Mode, n: usize| Finding {
            object: format!("Deployment shop/web-{n}"),
            origin: None,
            result: RuleResult::new(Engine::Kyverno, "p", "r", Verdict::Fail, mode, "bad".into()),
            source: "policies".into(),
            pod_security: None,
        };
        let mut report = Report::default();
        report.findings.push(finding(Mode::Audit, 0));
        assert_eq!(blocking_message(&report, "platform/policies"), None);
        report
            .findings
            .extend((1..=12).map(|n| finding(Mode::Enforce, n)));
        let message = blocking_message(&report, "platform/policies").unwrap();
        assert!(message.starts_with("sync blocked by policy (platform/policies): 12 enforced violation(s), nothing applied: Deployment shop/web-1: p/r: bad;"));
        assert!(message.ends_with("; and 2 more"));
        assert!(!message.contains("web-0"));
    }
}
