//! `delete` and `deletecollection`: finalizers, `deletionTimestamp`, and the
//! propagation policies that garbage collection carries out
//! ([`crate::controllers::gc`]).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Api, ListOptions, Target};
use crate::error::{ApiError, ApiResult};
use crate::hooks;
use crate::semantics;
use crate::store::{Commit, Decision};
use gitplane_object::time::now_rfc3339;

/// The finalizer that makes an owner wait for its dependents' deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer that makes garbage collection orphan the dependents.
pub const ORPHAN: &str = "orphan";

/// Options of a deletion (`DeleteOptions` body and query).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    fn commit(&self) -> Commit {
        if self.dry_run {
            Commit::DryRun
        } else {
            Commit::Durable
        }
    }

    /// Reads a `DeleteOptions` body (which may be empty), with the query's policy.
    pub fn from_body(body: &Value, query_policy: Option<&str>, dry_run: bool) -> ApiResult<Self> {
        let policy = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .or(query_policy)
            .map(str::to_string);
        let orphan = body.get("orphanDependents").and_then(Value::as_bool);
        let propagation = match (policy, orphan) {
            (Some(p), _) => Some(p),
            (None, Some(true)) => Some("Orphan".into()),
            (None, _) => None,
        };
        if let Some(p) = &propagation
            && !matches!(p.as_str(), "Background" | "Foreground" | "Orphan")
        {
            return Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {p:?}"
            )));
        }
        let dry_run = dry_run
            || body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        Ok(DeleteOptions {
            propagation,
            uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string),
            resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
            dry_run,
        })
    }
}

impl Api {
    /// Deletes an object: at once, or (with finalizers) by marking it for deletion.
    /// Returns the object's last state (or its marked state).
    pub async fn delete(
        &self,
        target: &Target,
        name: &str,
        options: &DeleteOptions,
    ) -> ApiResult<Arc<Value>> {
        let t = target.resource.clone();
        let outcome = self
            .store
            .update(&target.key(name), options.commit(), |current| {
                let current = current.ok_or_else(|| ApiError::not_found(target.subject(name)))?;
                let meta = |f: &str| {
                    current
                        .pointer(&format!("/metadata/{f}"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                if options
                    .uid
                    .as_ref()
                    .is_some_and(|u| Some(u) != meta("uid").as_ref())
                    || options
                        .resource_version
                        .as_ref()
                        .is_some_and(|rv| Some(rv) != meta("resourceVersion").as_ref())
                {
                    return Err(ApiError::conflict(target.subject(name)));
                }
                let mut object = current.as_ref().clone();
                let mut finalizers = semantics::finalizers(&object);
                let extra = match options.propagation.as_deref() {
                    Some("Foreground") => Some(FOREGROUND),
                    Some("Orphan") => Some(ORPHAN),
                    _ => None,
                };
                if let Some(extra) = extra
                    && !finalizers.iter().any(|f| f == extra)
                {
                    finalizers.push(extra.to_string());
                }
                let already_deleting = semantics::is_deleting(&object);
                let mut pending = hooks::pending_finalizers(&t, &object);
                pending.extend(finalizers.iter().cloned());
                if pending.is_empty() {
                    return Ok(Decision::Delete);
                }
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    if !already_deleting {
                        meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                    }
                    if !finalizers.is_empty() {
                        meta.insert("finalizers".into(), json!(finalizers));
                    }
                }
                hooks::on_write(&t, Some(current), &mut object);
                if semantics::is_noop(current, &object) {
                    Ok(Decision::Keep)
                } else {
                    Ok(Decision::Put(object))
                }
            })
            .await?;
        let object = outcome
            .object
            .ok_or_else(|| ApiError::not_found(target.subject(name)))?;
        if !options.dry_run && outcome.kind == Some(crate::store::EventKind::Deleted) {
            hooks::after_delete(self, &t, &object);
        }
        Ok(object)
    }

    /// Deletes every object a list selects; returns them.
    pub async fn delete_collection(
        &self,
        target: &Target,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> ApiResult<Vec<Arc<Value>>> {
        let page = self.list(target, list)?;
        let mut deleted = Vec::new();
        for object in page.items {
            let name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let item_target = Target {
                namespace: object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                ..target.clone()
            };
            match self.delete(&item_target, &name, options).await {
                Ok(o) => deleted.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}
