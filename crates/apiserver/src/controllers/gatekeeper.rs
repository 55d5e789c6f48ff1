//! Gatekeeper's template controller: each stored ConstraintTemplate gets the
//! CustomResourceDefinition of its constraint kind, as Gatekeeper creates it
//! (`<kind in lower case>.constraints.gatekeeper.sh`, cluster-scoped,
//! `v1beta1` stored and `v1alpha1` served, `spec.parameters` typed by the
//! template's schema), so constraints can be stored and are validated; the
//! CRD goes when its template does. The template's `status.created` says so.
//!
//! It also runs Gatekeeper's audit: every [`AUDIT_INTERVAL`], and when a
//! constraint's spec changes, every constraint is evaluated against every
//! stored object it selects, and its `status` gets `auditTimestamp`,
//! `totalViolations` and the first [`AUDIT_LIMIT`] `violations`, as
//! Gatekeeper writes them (`kubectl get constraints` shows the count).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gitplane_object::Object;
use serde_json::{Value, json};

use super::{name_of, options};
use crate::api::{Api, DeleteOptions, PatchKind, WriteOptions};
use crate::store::{Event, EventKind};

const TEMPLATES: &str = "templates.gatekeeper.sh/constrainttemplates/";
const CONSTRAINTS_GROUP: &str = "constraints.gatekeeper.sh";
const CONSTRAINTS: &str = "constraints.gatekeeper.sh/";
/// How often the audit runs (Gatekeeper's default `--audit-interval`).
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(60);
/// Violations kept in a constraint's status (Gatekeeper's default
/// `--constraint-violations-limit`).
pub const AUDIT_LIMIT: usize = 20;
/// The field manager of audit results.
const AUDIT_MANAGER: &str = "gatekeeper-audit";

/// The controller.
pub struct TemplateController {
    api: Api,
    /// The generation of each constraint when last audited.
    audited: Mutex<HashMap<String, i64>>,
    auditor: Auditor,
}

/// Gatekeeper's audit, run on its own task every [`AUDIT_INTERVAL`] (so a
/// long audit never holds up the other in-server controllers) and by the
/// template controller when a constraint changes.
pub struct Auditor {
    api: Api,
}

impl Auditor {
    /// An auditor of the API's constraints.
    pub fn new(api: Api) -> Self {
        Auditor { api }
    }

    /// Audits every [`AUDIT_INTERVAL`], for ever.
    pub async fn run(self) {
        let mut every = tokio::time::interval(AUDIT_INTERVAL);
        loop {
            every.tick().await;
            self.audit().await;
        }
    }

    /// Gatekeeper's audit of every stored object, written in each
    /// constraint's status.
    pub async fn audit(&self) {
        let set = self.api.policies.get(&self.api.store);
        if !set.has_constraints() {
            return;
        }
        let (stored, _) = self.api.store.list("");
        let objects: Vec<&Value> = stored.iter().map(|(_, o)| o.as_ref()).collect();
        let namespaces: HashMap<&str, &Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Namespace" && o["apiVersion"] == "v1")
            .filter_map(|o| Some((o["metadata"]["name"].as_str()?, *o)))
            .collect();
        let params = crate::admission::param_objects(&set, &self.api.store, &self.api.registry);
        let lookup: &[Object] = &params;
        let audits = set.audit_constraints(
            &objects,
            &|ns| namespaces.get(ns).copied(),
            &lookup,
            AUDIT_LIMIT,
        );
        let now = gitplane_object::time::now_rfc3339();
        for audit in audits {
            self.write_audit(&audit, &now).await;
        }
    }

    async fn write_audit(&self, audit: &gitplane_policy::gatekeeper::Audit, now: &str) {
        let Some(target) = self
            .api
            .target_for_kind(CONSTRAINTS_GROUP, &audit.kind, None)
        else {
            return;
        };
        let status = json!({
            "apiVersion": format!("{CONSTRAINTS_GROUP}/{}", target.version),
            "kind": audit.kind,
            "metadata": {"name": audit.name},
            "status": {
                "auditTimestamp": now,
                "totalViolations": audit.total,
                "violations": audit.violations,
            },
        });
        let apply = WriteOptions {
            manager: Some(AUDIT_MANAGER.to_string()),
            force: true,
            ..options()
        };
        let _ = self
            .api
            .patch(
                &target,
                &audit.name,
                PatchKind::Apply,
                status,
                Some("status"),
                &apply,
            )
            .await;
    }
}

/// The CRD of a template's constraint kind, or `None` if the template
/// names no kind.
pub fn constraint_crd(template: &Value) -> Option<Value> {
    let names = template.pointer("/spec/crd/spec/names")?;
    let kind = names.get("kind")?.as_str().filter(|k| !k.is_empty())?;
    let plural = kind.to_lowercase();
    let parameters = template
        .pointer("/spec/crd/spec/validation/openAPIV3Schema")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let schema = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "enforcementAction": {"type": "string"},
                    "scopedEnforcementActions": {
                        "type": "array",
                        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    },
                    "match": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "parameters": parameters,
                }
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    });
    let version = |name: &str, storage: bool| {
        json!({
            "name": name,
            "served": true,
            "storage": storage,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Enforcement-Action", "type": "string", "jsonPath": ".spec.enforcementAction"},
                {"name": "Total-Violations", "type": "integer", "jsonPath": ".status.totalViolations"}
            ]
        })
    };
    let mut crd_names = json!({
        "kind": kind,
        "listKind": format!("{kind}List"),
        "plural": plural,
        "singular": plural,
        "categories": ["constraint", "constraints"],
    });
    if let Some(short) = names.get("shortNames").filter(|s| s.is_array()) {
        crd_names["shortNames"] = short.clone();
    }
    Some(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.{CONSTRAINTS_GROUP}"),
            "labels": {"gatekeeper.sh/constraint": "yes"},
        },
        "spec": {
            "group": CONSTRAINTS_GROUP,
            "names": crd_names,
            "scope": "Cluster",
            "versions": [version("v1beta1", true), version("v1alpha1", false)],
        }
    }))
}

impl TemplateController {
    /// A controller for the API's templates.
    pub fn new(api: Api) -> Self {
        TemplateController {
            auditor: Auditor::new(api.clone()),
            api,
            audited: Mutex::default(),
        }
    }

    /// Makes sure every stored template has its CRD.
    pub async fn resync(&self) {
        let (templates, _) = self.api.store.list(TEMPLATES);
        for (_, template) in templates {
            self.ensure_crd(&template).await;
        }
    }

    /// Reacts to a template written or deleted, or a constraint whose spec
    /// changed (audited at once).
    pub async fn observe(&self, event: &Event) {
        if event.key.starts_with(CONSTRAINTS) {
            if self.spec_changed(event) {
                self.auditor.audit().await;
            }
            return;
        }
        if !event.key.starts_with(TEMPLATES) {
            return;
        }
        match event.kind {
            EventKind::Deleted => self.delete_crd(&event.object).await,
            _ => self.ensure_crd(&event.object).await,
        }
    }

    /// Whether a constraint event changes its spec since the last audit
    /// (a new generation); a deleted constraint is forgotten.
    fn spec_changed(&self, event: &Event) -> bool {
        let mut audited = self.audited.lock().unwrap_or_else(|p| p.into_inner());
        if event.kind == EventKind::Deleted {
            audited.remove(&event.key);
            return false;
        }
        let generation = event
            .object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        audited.insert(event.key.clone(), generation) != Some(generation)
    }

    async fn ensure_crd(&self, template: &Value) {
        let Some(crd) = constraint_crd(template) else {
            return;
        };
        let Some(target) =
            self.api
                .target_for_kind("apiextensions.k8s.io", "CustomResourceDefinition", None)
        else {
            return;
        };
        let apply = WriteOptions {
            force: true,
            ..options()
        };
        let created = self
            .api
            .patch(
                &target,
                name_of(&crd),
                PatchKind::Apply,
                crd.clone(),
                None,
                &apply,
            )
            .await
            .is_ok();
        if created && template.pointer("/status/created") != Some(&json!(true)) {
            self.mark_created(template).await;
        }
    }

    async fn mark_created(&self, template: &Value) {
        let Some(target) =
            self.api
                .target_for_kind("templates.gatekeeper.sh", "ConstraintTemplate", None)
        else {
            return;
        };
        let status = json!({
            "apiVersion": template["apiVersion"],
            "kind": "ConstraintTemplate",
            "metadata": {"name": name_of(template)},
            "status": {"created": true},
        });
        let apply = WriteOptions {
            force: true,
            ..options()
        };
        let subresource = target.resource.status_subresource.then_some("status");
        let _ = self
            .api
            .patch(
                &target,
                name_of(template),
                PatchKind::Apply,
                status,
                subresource,
                &apply,
            )
            .await;
    }

    async fn delete_crd(&self, template: &Value) {
        let Some(crd) = constraint_crd(template) else {
            return;
        };
        if let Some(target) =
            self.api
                .target_for_kind("apiextensions.k8s.io", "CustomResourceDefinition", None)
        {
            let _ = self
                .api
                .delete(&target, name_of(&crd), &DeleteOptions::default())
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_is_named_and_typed_as_gatekeeper_makes_it() {
        let template = json!({"spec": {"crd": {"spec": {
            "names": {"kind": "TeamLabels", "shortNames": ["tl"]},
            "validation": {"openAPIV3Schema": {"type": "object", "properties": {"labels": {"type": "array"}}}}
        }}}});
        let crd = constraint_crd(&template).unwrap();
        assert_eq!(
            crd["metadata"]["name"],
            "teamlabels.constraints.gatekeeper.sh"
        );
        assert_eq!(crd["spec"]["scope"], "Cluster");
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["tl"]));
        let stored = &crd["spec"]["versions"][0];
        assert_eq!(stored["name"], "v1beta1");
        assert_eq!(
            stored["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["parameters"]["properties"]
                ["labels"]["type"],
            "array"
        );
        assert!(constraint_crd(&json!({"spec": {}})).is_none());
    }
}
