//! `wgpolicyk8s.io/v1alpha2` PolicyReports: one per object, as Kyverno
//! writes them (a `PolicyReport` in the object's namespace, a
//! `ClusterPolicyReport` for a cluster-scoped object).

use gitplane_object::{Map, Value, json};

use crate::result::{Engine, RuleResult, Verdict};

/// The label gitplane puts on the reports it writes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "gitplane");

/// The report of `results` on `object` (its JSON), as of `seconds` since
/// the epoch. `app` names the Application the object belongs to.
pub fn policy_report(object: &Value, results: &[RuleResult], app: &str, seconds: i64) -> Value {
    let metadata = &object["metadata"];
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = metadata["name"].as_str().unwrap_or_default();
    let namespace = metadata["namespace"].as_str().filter(|n| !n.is_empty());
    let mut scope = json!({
        "apiVersion": object["apiVersion"], "kind": kind, "name": name,
    });
    if let Some(ns) = namespace {
        scope["namespace"] = json!(ns);
    }
    if let Some(uid) = metadata["uid"].as_str() {
        scope["uid"] = json!(uid);
    }
    let mut summary = Map::new();
    for verdict in [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Warn,
        Verdict::Error,
        Verdict::Skip,
    ] {
        let count = results.iter().filter(|r| r.verdict == verdict).count();
        summary.insert(verdict.as_str().to_string(), json!(count));
    }
    let mut report = json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": if namespace.is_some() { "PolicyReport" } else { "ClusterPolicyReport" },
        "metadata": {
            "name": report_name(kind, name),
            "labels": {MANAGED_BY.0: MANAGED_BY.1, "gitplane.io/app": app},
        },
        "scope": scope,
        "results": results.iter().map(|r| result_entry(r, seconds)).collect::<Vec<_>>(),
        "summary": summary,
    });
    if let Some(ns) = namespace {
        report["metadata"]["namespace"] = json!(ns);
    }
    report
}

/// `gitplane-<kind>-<name>`, lowercase, at most 253 characters.
pub fn report_name(kind: &str, name: &str) -> String {
    let mut out = format!("gitplane-{}-{name}", kind.to_lowercase());
    out.truncate(253);
    out
}

fn result_entry(result: &RuleResult, seconds: i64) -> Value {
    let source = match result.engine {
        Engine::PodSecurity => "pod-security",
        Engine::Vap => "ValidatingAdmissionPolicy",
        Engine::Kyverno => "kyverno",
        Engine::Gatekeeper => "gatekeeper",
    };
    let mut entry = json!({
        "source": source,
        "policy": result.policy,
        "rule": result.rule,
        "result": result.verdict.as_str(),
        "scored": true,
        "timestamp": {"seconds": seconds, "nanos": 0},
    });
    if !result.message.is_empty() {
        entry["message"] = json!(result.message);
    }
    if !result.properties.is_empty() {
        entry["properties"] = json!(result.properties);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::Mode;

    #[test]
    fn namespaced_and_cluster_reports() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}});
        let results = vec![
            RuleResult::new(
                Engine::Kyverno,
                "require-labels",
                "check-team",
                Verdict::Fail,
                Mode::Audit,
                "team label missing".into(),
            ),
            RuleResult::new(
                Engine::Kyverno,
                "require-labels",
                "check-name",
                Verdict::Pass,
                Mode::Audit,
                String::new(),
            ),
        ];
        let report = policy_report(&deployment, &results, "shop-dev", 1_700_000_000);
        assert_eq!(report["kind"], "PolicyReport");
        assert_eq!(report["metadata"]["namespace"], "shop");
        assert_eq!(report["summary"]["fail"], 1);
        assert_eq!(report["summary"]["pass"], 1);
        assert_eq!(report["results"][0]["message"], "team label missing");
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        assert_eq!(
            policy_report(&namespace, &results, "x", 0)["kind"],
            "ClusterPolicyReport"
        );
    }
}
