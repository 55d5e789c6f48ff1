//! `create`, `update` and `patch` (merge, JSON, strategic merge, server-side
//! apply), on objects and their `status` and `scale` subresources.
//!
//! Every write takes the same path: the body's type is checked, the object is
//! checked against its schema (unknown fields per `fieldValidation`), defaults are
//! filled in, server-owned metadata is set or carried over, field ownership is
//! recorded, and the store applies the change unless it changes nothing.

use std::sync::Arc;

use gitplane_object::smp::{Flavor, root_for, strategic_merge};
use serde_json::{Value, json};

use super::{Api, FieldValidation, Target};
use crate::admission;
use crate::defaults::apply_defaults;
use crate::error::{ApiError, ApiResult};
use crate::fields::Shape;
use crate::hooks;
use crate::registry::ResourceType;
use crate::schema::{self, Rules};
use crate::semantics::{self, body_resource_version};
use crate::ssa::{self, Part};
use crate::store::{Commit, Decision};
use gitplane_object::time::now_rfc3339;

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: everything but persisting.
    pub dry_run: bool,
    /// `fieldManager`.
    pub manager: Option<String>,
    /// `fieldValidation`.
    pub validation: FieldValidation,
    /// `force` for server-side apply.
    pub force: bool,
    /// Return before the write is on disk (the built-in controllers).
    pub queued: bool,
}

impl WriteOptions {
    fn manager(&self) -> &str {
        self.manager.as_deref().unwrap_or("unknown")
    }

    /// How the store commits the write.
    pub(crate) fn commit(&self) -> Commit {
        match (self.dry_run, self.queued) {
            (true, _) => Commit::DryRun,
            (false, true) => Commit::Queued,
            (false, false) => Commit::Durable,
        }
    }
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as stored (or as it would be, for a dry run).
    pub object: Arc<Value>,
    /// True when the write created the object (201).
    pub created: bool,
    /// Warnings for the client (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

/// The content type of a PATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 7386.
    Merge,
    /// RFC 6902.
    Json,
    /// Strategic merge patch (built-in kinds only).
    Strategic,
    /// Server-side apply.
    Apply,
}

/// The ownership shape of a type.
pub fn shape(t: &ResourceType) -> Shape<'_> {
    match (&t.crd, &t.schema) {
        (Some(_), Some(schema)) => Shape::Custom(schema),
        (Some(_), None) => Shape::Any,
        (None, _) => Shape::BuiltIn(root_for(&t.group, &t.kind)),
    }
}

fn part(t: &ResourceType, subresource: Option<&str>) -> Part {
    match subresource {
        Some("status") => Part::Status,
        _ if t.status_subresource => Part::MainResource,
        _ => Part::Whole,
    }
}

impl Api {
    /// Namespaced objects need an existing namespace that is not being deleted.
    fn check_namespace(&self, target: &Target, name: &str) -> ApiResult<()> {
        let Some(ns) = target
            .namespace
            .as_deref()
            .filter(|_| target.resource.namespaced)
        else {
            return Ok(());
        };
        match self.store.get(&format!("/namespaces//{ns}")) {
            None => Err(ApiError::not_found(crate::error::Subject {
                plural: "namespaces",
                group: "",
                name: ns,
            })),
            Some(namespace) if semantics::is_deleting(&namespace) => {
                Err(ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    target.resource.plural
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// The Namespace object a write goes to, for admission. Read before a
    /// store update, never inside one (the update holds the store).
    pub(crate) fn namespace_object(
        &self,
        namespace: Option<&str>,
    ) -> Option<std::sync::Arc<Value>> {
        namespace.and_then(|ns| self.store.get(&format!("/namespaces//{ns}")))
    }

    /// The ValidatingAdmissionPolicies and their parameters, read before a
    /// store update.
    fn admission(&self) -> Admission {
        let set = self.policies.get(&self.store);
        let params = admission::param_objects(&set, &self.store, &self.registry);
        Admission { set, params }
    }

    /// Schema checks and defaults; returns warnings.
    fn check_schema(
        &self,
        t: &ResourceType,
        object: &mut Value,
        validation: FieldValidation,
    ) -> ApiResult<Vec<String>> {
        let mut warnings = Vec::new();
        if let Some(schema) = &t.schema {
            let rules = if t.crd.is_some() {
                Rules::Structural
            } else {
                Rules::BuiltIn
            };
            let findings = schema::check(schema, object, rules);
            if !findings.unknown.is_empty() {
                let fields: Vec<String> = findings
                    .unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
                match validation {
                    FieldValidation::Strict => {
                        return Err(ApiError::bad_request(format!(
                            "strict decoding error: {}",
                            fields.join(", ")
                        )));
                    }
                    FieldValidation::Warn => warnings = fields,
                    FieldValidation::Ignore => {}
                }
            }
            if !findings.invalid.is_empty() {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return Err(ApiError::invalid(&t.kind, &t.group, name, findings.invalid));
            }
        }
        if t.crd.is_none() {
            apply_defaults(&t.group, &t.kind, object);
        }
        warnings.extend(hooks::warnings(t, object));
        Ok(warnings)
    }

    /// Creates an object (POST).
    pub async fn create(
        &self,
        target: &Target,
        mut body: Value,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let t = target.resource.clone();
        semantics::check_type(&t, &target.version, &mut body)?;
        semantics::set_namespace(&t, target.namespace.as_deref(), &mut body)?;
        let name = semantics::assign_name(&mut body)?;
        let target = Target {
            namespace: body
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..target.clone()
        };
        semantics::validate_metadata(&t, &body)?;
        self.check_namespace(&target, &name)?;
        let mut warnings = self.check_schema(&t, &mut body, options.validation)?;
        let namespace = self.namespace_object(target.namespace.as_deref());
        warnings.extend(admission::pod_security(
            &self.pod_security,
            namespace.as_deref(),
            &t,
            &body,
            true,
        )?);
        let admission = self.admission();
        warnings.extend(admission.mutate(&t, &mut body, None, namespace.as_deref()));
        warnings.extend(admission.check(&t, &body, None, namespace.as_deref())?);
        semantics::prepare_create(&t, &mut body)?;
        hooks::validate(&t, &body)?;
        hooks::on_write(&t, None, &mut body);
        ssa::record_update(
            None,
            &mut body,
            shape(&t),
            part(&t, None),
            options.manager(),
            &t.api_version(&target.version),
            &now_rfc3339(),
        );
        let subject_name = name.clone();
        let outcome = self
            .store
            .update(
                &target.key(&name),
                options.commit(),
                |current| match current {
                    Some(_) => Err(ApiError::already_exists(target.subject(&subject_name))),
                    None => Ok(Decision::Put(body)),
                },
            )
            .await?;
        let object = outcome
            .object
            .ok_or_else(|| ApiError::internal("create stored nothing"))?;
        if !options.dry_run {
            hooks::after_commit(self, &t, Some(&object));
        }
        Ok(Written {
            object,
            created: true,
            warnings,
        })
    }

    /// Replaces an object (PUT), or its status.
    pub async fn update(
        &self,
        target: &Target,
        name: &str,
        mut body: Value,
        subresource: Option<&str>,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let t = target.resource.clone();
        semantics::check_type(&t, &target.version, &mut body)?;
        semantics::set_namespace(&t, target.namespace.as_deref(), &mut body)?;
        match body.pointer("/metadata/name").and_then(Value::as_str) {
            None | Some("") => {
                if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), json!(name));
                }
            }
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            Some(_) => {}
        }
        semantics::validate_metadata(&t, &body)?;
        let warnings = self.check_schema(&t, &mut body, options.validation)?;
        let precondition = body_resource_version(&body);
        self.replace(
            target,
            name,
            subresource,
            options,
            warnings,
            move |current| {
                if let Some(rv) = &precondition
                    && Some(rv.as_str())
                        != current
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                {
                    return Err(None);
                }
                Ok(body)
            },
        )
        .await
    }

    /// Patches an object (PATCH), or its status.
    pub async fn patch(
        &self,
        target: &Target,
        name: &str,
        kind: PatchKind,
        patch: Value,
        subresource: Option<&str>,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let t = target.resource.clone();
        let kind = match kind {
            PatchKind::Apply => return self.apply(target, name, patch, subresource, options).await,
            PatchKind::Merge => MergeKind::Merge,
            PatchKind::Json => MergeKind::Json,
            PatchKind::Strategic => MergeKind::Strategic,
        };
        if kind == MergeKind::Strategic && t.crd.is_some() {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json (not supported for custom resources)",
            ));
        }
        let precondition = if kind == MergeKind::Json {
            None
        } else {
            body_resource_version(&patch)
        };
        let root = root_for(&t.group, &t.kind);
        let mut warnings = Vec::new();
        let validation = options.validation;
        let api = self.clone();
        let written = self
            .replace(target, name, subresource, options, Vec::new(), |current| {
                if let Some(rv) = &precondition
                    && Some(rv.as_str())
                        != current
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                {
                    return Err(None);
                }
                let mut patched = match kind {
                    MergeKind::Merge => {
                        let mut v = current.clone();
                        json_patch::merge(&mut v, &patch);
                        v
                    }
                    MergeKind::Json => {
                        let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                            .map_err(|e| {
                                Some(ApiError::bad_request(format!("invalid JSON patch: {e}")))
                            })?;
                        let mut v = current.clone();
                        json_patch::patch(&mut v, &ops).map_err(|e| {
                            Some(ApiError::invalid(
                                &t.kind,
                                &t.group,
                                name,
                                vec![("<patch>".into(), e.to_string())],
                            ))
                        })?;
                        v
                    }
                    MergeKind::Strategic => {
                        strategic_merge(current, &patch, root, Flavor::Kubernetes)
                            .map_err(|e| {
                                Some(ApiError::bad_request(format!(
                                    "invalid strategic merge patch: {e}"
                                )))
                            })?
                            .ok_or_else(|| {
                                Some(ApiError::bad_request(
                                    "a strategic merge patch cannot delete the whole object",
                                ))
                            })?
                    }
                };
                semantics::check_type(&t, &target.version, &mut patched).map_err(Some)?;
                if let Some(meta) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
                    // The identity of an object cannot be patched.
                    meta.insert("name".into(), json!(name));
                    if let Some(ns) = &target.namespace {
                        meta.insert("namespace".into(), json!(ns));
                    }
                }
                semantics::validate_metadata(&t, &patched).map_err(Some)?;
                warnings = api
                    .check_schema(&t, &mut patched, validation)
                    .map_err(Some)?;
                Ok(patched)
            })
            .await?;
        Ok(Written {
            warnings,
            ..written
        })
    }

    /// Server-side apply: create or merge with field ownership.
    async fn apply(
        &self,
        target: &Target,
        name: &str,
        body: Value,
        subresource: Option<&str>,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let t = target.resource.clone();
        let manager = options.manager.clone().ok_or_else(|| {
            ApiError::bad_request(
                "PATCH requests of type application/apply-patch+yaml require a fieldManager",
            )
        })?;
        let mut config = body;
        semantics::check_type(&t, &target.version, &mut config)?;
        semantics::set_namespace(&t, target.namespace.as_deref(), &mut config)?;
        match config.pointer("/metadata/name").and_then(Value::as_str) {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            None | Some("") => {
                if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), json!(name));
                }
            }
            Some(_) => {}
        }
        // Unknown fields in the configuration are reported (and dropped) before merging.
        let mut warnings = self.check_schema_only(&t, &mut config, options.validation)?;
        let request_part = part(&t, subresource);
        let api_version = t.api_version(&target.version);
        let key = target.key(name);
        let now = now_rfc3339();
        let validation = options.validation;
        let api = self.clone();
        let mut created = false;
        let mut schema_warnings = Vec::new();
        let namespace = self.namespace_object(target.namespace.as_deref());
        let policies = self.admission();
        if self.store.get(&key).is_none() {
            if subresource.is_some() {
                return Err(ApiError::not_found(target.subject(name)));
            }
            self.check_namespace(target, name)?;
        }
        let outcome = self
            .store
            .update(&key, options.commit(), |current| {
                let request = ssa::Apply {
                    manager: &manager,
                    api_version: &api_version,
                    part: request_part,
                    force: options.force,
                    now: &now,
                };
                let live = current
                    .map(|c| c.as_ref().clone())
                    .unwrap_or_else(|| ssa::empty_object(&config));
                let mut merged =
                    ssa::apply(&live, &config, shape(&t), &request).map_err(|conflicts| {
                        ApiError::apply_conflict(target.subject(name), &conflicts)
                    })?;
                semantics::validate_metadata(&t, &merged)?;
                schema_warnings = api.check_schema(&t, &mut merged, validation)?;
                if request_part != Part::Status {
                    let old = current.map(|c| c.as_ref());
                    // Fields a mutation sets are not owned by the applier.
                    let mutated = policies.mutate(&t, &mut merged, old, namespace.as_deref());
                    schema_warnings.extend(mutated);
                    let admitted = admission::pod_security(
                        &api.pod_security,
                        namespace.as_deref(),
                        &t,
                        &merged,
                        current.is_none(),
                    )?;
                    schema_warnings.extend(admitted);
                    schema_warnings.extend(policies.check(
                        &t,
                        &merged,
                        old,
                        namespace.as_deref(),
                    )?);
                }
                match current {
                    None => {
                        created = true;
                        semantics::prepare_create(&t, &mut merged)?;
                        hooks::validate(&t, &merged)?;
                        hooks::on_write(&t, None, &mut merged);
                        Ok(Decision::Put(merged))
                    }
                    Some(current) => {
                        if request_part != Part::Status {
                            semantics::bump_generation(&t, current, &mut merged);
                        }
                        finish_update(&t, current, merged, request_part == Part::Status)
                    }
                }
            })
            .await?;
        warnings.extend(schema_warnings);
        let object = outcome
            .object
            .ok_or_else(|| ApiError::internal("apply stored nothing"))?;
        if !options.dry_run {
            hooks::after_commit(self, &t, outcome.kind.map(|_| &object));
        }
        Ok(Written {
            object,
            created,
            warnings,
        })
    }

    fn check_schema_only(
        &self,
        t: &ResourceType,
        object: &mut Value,
        validation: FieldValidation,
    ) -> ApiResult<Vec<String>> {
        let Some(schema) = &t.schema else {
            return Ok(Vec::new());
        };
        let rules = if t.crd.is_some() {
            Rules::Structural
        } else {
            Rules::BuiltIn
        };
        let findings = schema::check(schema, object, rules);
        let fields: Vec<String> = findings
            .unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match validation {
            FieldValidation::Strict if !fields.is_empty() => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                fields.join(", ")
            ))),
            FieldValidation::Warn => Ok(fields),
            _ => Ok(Vec::new()),
        }
    }

    /// The common end of update and patch: `compute` turns the current object
    /// into the new one (`Err(None)` means a failed resource-version precondition).
    async fn replace(
        &self,
        target: &Target,
        name: &str,
        subresource: Option<&str>,
        options: &WriteOptions,
        warnings: Vec<String>,
        compute: impl FnOnce(&Value) -> Result<Value, Option<ApiError>>,
    ) -> ApiResult<Written> {
        let t = target.resource.clone();
        let request_part = part(&t, subresource);
        let api_version = t.api_version(&target.version);
        let manager = options.manager().to_string();
        let namespace = self.namespace_object(target.namespace.as_deref());
        let policies = self.admission();
        let mut warnings = warnings;
        let outcome = self
            .store
            .update(&target.key(name), options.commit(), |current| {
                let current = current.ok_or_else(|| ApiError::not_found(target.subject(name)))?;
                let mut new = compute(current)
                    .map_err(|e| e.unwrap_or_else(|| ApiError::conflict(target.subject(name))))?;
                if request_part != Part::Status {
                    warnings.extend(policies.mutate(
                        &t,
                        &mut new,
                        Some(current),
                        namespace.as_deref(),
                    ));
                    warnings.extend(policies.check(
                        &t,
                        &new,
                        Some(current),
                        namespace.as_deref(),
                    )?);
                }
                semantics::prepare_update(&t, current, &mut new, request_part == Part::Status)?;
                ssa::record_update(
                    Some(current),
                    &mut new,
                    shape(&t),
                    request_part,
                    &manager,
                    &api_version,
                    &now_rfc3339(),
                );
                finish_update(&t, current, new, request_part == Part::Status)
            })
            .await?;
        let object = outcome
            .object
            .ok_or_else(|| ApiError::internal("update stored nothing"))?;
        if !options.dry_run {
            hooks::after_commit(self, &t, outcome.kind.map(|_| &object));
        }
        Ok(Written {
            object,
            created: false,
            warnings,
        })
    }

    /// `/scale`: the object's replicas as an `autoscaling/v1` Scale.
    pub fn scale_of(&self, target: &Target, object: &Value) -> ApiResult<Value> {
        let scale = target
            .resource
            .scale
            .as_ref()
            .ok_or_else(|| ApiError::no_route("scale"))?;
        let at = |path: &str| {
            path.trim_start_matches('.')
                .split('.')
                .try_fold(object, |v, f| v.get(f))
                .cloned()
        };
        let meta = object.get("metadata").cloned().unwrap_or(json!({}));
        let mut scale_meta = json!({});
        for field in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = meta.get(field) {
                scale_meta[field] = v.clone();
            }
        }
        let selector = scale.label_selector.as_deref().and_then(at).or_else(|| {
            object
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|m| {
                    Value::String(
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                })
        });
        let mut status = json!({"replicas": at(&scale.status_replicas).unwrap_or(json!(0))});
        if let Some(selector) = selector {
            status["selector"] = selector;
        }
        Ok(json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": at(&scale.spec_replicas).unwrap_or(json!(0))},
            "status": status,
        }))
    }

    /// Writes to `/scale`: a Scale (PUT) or a patch of one (PATCH) sets the replicas.
    pub async fn update_scale(
        &self,
        target: &Target,
        name: &str,
        change: ScaleChange,
        options: &WriteOptions,
    ) -> ApiResult<Value> {
        let current = self.get(target, name)?;
        let mut scale = self.scale_of(target, &current)?;
        match change {
            ScaleChange::Replace(body) => scale = body,
            ScaleChange::Patch(PatchKind::Json, ops) => {
                let ops: json_patch::Patch = serde_json::from_value(ops)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                json_patch::patch(&mut scale, &ops)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            ScaleChange::Patch(_, patch) => json_patch::merge(&mut scale, &patch),
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .cloned()
            .ok_or_else(|| ApiError::bad_request("a Scale needs spec.replicas"))?;
        let written = self
            .patch(
                target,
                name,
                PatchKind::Merge,
                json!({"spec": {"replicas": replicas}}),
                None,
                options,
            )
            .await?;
        self.scale_of(target, &written.object)
    }
}

/// A write to `/scale`.
pub enum ScaleChange {
    /// PUT of a whole Scale.
    Replace(Value),
    /// PATCH of the Scale.
    Patch(PatchKind, Value),
}

/// The patch kinds applied to a current object (apply is handled apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MergeKind {
    Merge,
    Json,
    Strategic,
}

/// The last steps of every update: server behaviours, finalizers, no-op check.
fn finish_update(
    t: &ResourceType,
    current: &Value,
    mut new: Value,
    status_write: bool,
) -> ApiResult<Decision> {
    if !status_write {
        semantics::drop_empty(&mut new);
        hooks::validate(t, &new)?;
        hooks::on_write(t, Some(current), &mut new);
    }
    if semantics::is_deleting(&new) && hooks::pending_finalizers(t, &new).is_empty() {
        return Ok(Decision::Delete);
    }
    if semantics::is_noop(current, &new) {
        return Ok(Decision::Keep);
    }
    Ok(Decision::Put(new))
}

/// The policies a write is admitted by, with the objects their parameters
/// may name.
struct Admission {
    set: Arc<gitplane_policy::PolicySet>,
    params: Vec<gitplane_object::Object>,
}

impl Admission {
    /// Applies the stored mutating policies (Kyverno mutate rules) to an
    /// object about to be stored; returns warnings.
    fn mutate(
        &self,
        t: &ResourceType,
        object: &mut Value,
        old: Option<&Value>,
        namespace: Option<&Value>,
    ) -> Vec<String> {
        let write = admission::Write {
            t,
            object,
            old,
            namespace,
        };
        let (mutated, warnings) = admission::mutating_policies(&self.set, &write);
        if let Some(mutated) = mutated {
            *object = mutated;
        }
        warnings
    }

    /// A policy object must compile; then every ValidatingAdmissionPolicy
    /// binding that matches must allow the write. Returns warnings.
    fn check(
        &self,
        t: &ResourceType,
        object: &Value,
        old: Option<&Value>,
        namespace: Option<&Value>,
    ) -> ApiResult<Vec<String>> {
        admission::check_policy(t, object)?;
        let write = admission::Write {
            t,
            object,
            old,
            namespace,
        };
        admission::validating_policies(&self.set, &self.params, &write)
    }
}
