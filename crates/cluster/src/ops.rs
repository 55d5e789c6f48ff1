//! Reading and writing objects of any kind.

use gitplane_object::{Gvk, Object, ObjectKey};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};

use crate::Cluster;
use crate::discovery::ResourceInfo;
use crate::error::ClusterError;

/// How a server-side apply is made.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The field manager (`gitplane` for syncs).
    pub field_manager: String,
    /// Take over fields other managers own.
    pub force: bool,
    /// Ask the server what it would store, persisting nothing.
    pub dry_run: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            field_manager: "gitplane".into(),
            force: true,
            dry_run: false,
        }
    }
}

/// What a delete does to the object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Deleted after the object, by the garbage collector (the default).
    #[default]
    Background,
    /// Deleted before the object.
    Foreground,
    /// Left alone, without their owner reference.
    Orphan,
}

impl Propagation {
    /// Parses Argo CD's `PrunePropagationPolicy` values.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "background" => Some(Propagation::Background),
            "foreground" => Some(Propagation::Foreground),
            "orphan" => Some(Propagation::Orphan),
            _ => None,
        }
    }
}

/// Turns what the API returns into an [`Object`], with its type set (list
/// items arrive without `apiVersion` and `kind`).
pub(crate) fn to_object(
    dynamic: DynamicObject,
    info: &ResourceInfo,
) -> Result<Object, ClusterError> {
    let mut value =
        serde_json::to_value(dynamic).map_err(|e| ClusterError::Invalid(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            info.resource.api_version.clone().into(),
        );
        map.insert("kind".into(), info.resource.kind.clone().into());
    }
    Object::try_from(value).map_err(|_| ClusterError::Invalid("not an object".into()))
}

impl Cluster {
    /// The served resource for a kind at a version, refreshing discovery once
    /// if the kind is unknown (a CRD created moments ago).
    pub async fn resolve(&self, gvk: &Gvk) -> Result<ResourceInfo, ClusterError> {
        let seen = self.discovery.generation().await;
        if let Some(info) = self.discovery.lookup(gvk) {
            return Ok(info);
        }
        self.refresh(Some(seen)).await?;
        self.discovery
            .lookup(gvk)
            .ok_or_else(|| ClusterError::UnknownKind {
                api_version: gvk.api_version(),
                kind: gvk.kind.clone(),
            })
    }

    /// The preferred served version of a group and kind.
    pub fn preferred(&self, group: &str, kind: &str) -> Option<ResourceInfo> {
        self.discovery.preferred(group, kind)
    }

    /// Every served kind at its preferred version.
    pub fn kinds(&self) -> Vec<ResourceInfo> {
        self.discovery.all_preferred()
    }

    fn api(&self, info: &ResourceInfo, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) if info.namespaced && !ns.is_empty() => {
                Api::namespaced_with(self.client.clone(), ns, &info.resource)
            }
            _ => Api::all_with(self.client.clone(), &info.resource),
        }
    }

    /// The API for an object's kind and namespace; a namespaced object must
    /// name its namespace.
    async fn api_for(
        &self,
        object: &Object,
    ) -> Result<(Api<DynamicObject>, ResourceInfo), ClusterError> {
        let info = self.resolve(&object.gvk()).await?;
        let namespace = object.namespace().filter(|ns| !ns.is_empty());
        if info.namespaced && namespace.is_none() {
            return Err(ClusterError::Invalid(format!(
                "{} {} is namespaced but has no namespace",
                object.kind(),
                object.name()
            )));
        }
        Ok((self.api(&info, namespace), info))
    }

    /// Reads one object; `None` if it does not exist.
    pub async fn get(
        &self,
        gvk: &Gvk,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Object>, ClusterError> {
        let info = self.resolve(gvk).await?;
        let api = self.api(&info, Some(namespace));
        let found = self.limiter.run("get", || api.get_opt(name)).await?;
        found.map(|d| to_object(d, &info)).transpose()
    }

    /// Reads the object a key names, at the kind's preferred version.
    pub async fn get_key(&self, key: &ObjectKey) -> Result<Option<Object>, ClusterError> {
        let Some(info) = self.preferred(&key.group, &key.kind) else {
            return Ok(None);
        };
        self.get(&info.gvk(), &key.namespace, &key.name).await
    }

    /// Server-side apply; returns what the server stored (or would store).
    pub async fn apply(
        &self,
        object: &Object,
        options: &ApplyOptions,
    ) -> Result<Object, ClusterError> {
        let (api, info) = self.api_for(object).await?;
        let mut params = PatchParams::apply(&options.field_manager);
        params.force = options.force;
        params.dry_run = options.dry_run;
        let patch = Patch::Apply(object.to_value());
        let applied = self
            .limiter
            .run("patch", || api.patch(object.name(), &params, &patch))
            .await?;
        to_object(applied, &info)
    }

    /// JSON merge patch (RFC 7386) of `object`'s type, namespace and name;
    /// `null` removes a field. Returns what the server stored.
    pub async fn merge_patch(
        &self,
        object: &Object,
        patch: serde_json::Value,
        field_manager: &str,
    ) -> Result<Object, ClusterError> {
        self.merge_patch_at(object, patch, field_manager, false)
            .await
    }

    /// JSON merge patch of an object's `status` subresource (for kinds that
    /// have one: writes to the object itself leave its status alone).
    pub async fn merge_patch_status(
        &self,
        object: &Object,
        patch: serde_json::Value,
        field_manager: &str,
    ) -> Result<Object, ClusterError> {
        self.merge_patch_at(object, patch, field_manager, true)
            .await
    }

    async fn merge_patch_at(
        &self,
        object: &Object,
        patch: serde_json::Value,
        field_manager: &str,
        status: bool,
    ) -> Result<Object, ClusterError> {
        let (api, info) = self.api_for(object).await?;
        let params = PatchParams {
            field_manager: Some(field_manager.to_string()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(patch);
        let name = object.name();
        let patched = self
            .limiter
            .run("patch", || async {
                if status {
                    api.patch_status(name, &params, &patch).await
                } else {
                    api.patch(name, &params, &patch).await
                }
            })
            .await?;
        to_object(patched, &info)
    }

    /// Creates an object (for `generateName` hooks and `Replace=true`).
    pub async fn create(&self, object: &Object, dry_run: bool) -> Result<Object, ClusterError> {
        let (api, info) = self.api_for(object).await?;
        let params = PostParams {
            dry_run,
            field_manager: Some("gitplane".into()),
        };
        let dynamic: DynamicObject = serde_json::from_value(object.to_value())
            .map_err(|e| ClusterError::Invalid(e.to_string()))?;
        let created = self
            .limiter
            .run("create", || api.create(&params, &dynamic))
            .await?;
        to_object(created, &info)
    }

    /// Replaces an object wholesale (`Replace=true`): the live
    /// `resourceVersion` is carried over so the write cannot clobber a newer one.
    pub async fn replace(
        &self,
        object: &Object,
        live: &Object,
        dry_run: bool,
    ) -> Result<Object, ClusterError> {
        let (api, info) = self.api_for(object).await?;
        let mut body = object.clone();
        if let Some(rv) = live.str_at(&["metadata", "resourceVersion"]) {
            body.set(&["metadata", "resourceVersion"], rv.into());
        }
        let params = PostParams {
            dry_run,
            field_manager: Some("gitplane".into()),
        };
        let dynamic: DynamicObject = serde_json::from_value(body.to_value())
            .map_err(|e| ClusterError::Invalid(e.to_string()))?;
        let replaced = self
            .limiter
            .run("update", || api.replace(object.name(), &params, &dynamic))
            .await?;
        to_object(replaced, &info)
    }

    /// Deletes an object; `Ok(false)` if it was already gone.
    pub async fn delete(
        &self,
        object: &Object,
        propagation: Propagation,
        dry_run: bool,
    ) -> Result<bool, ClusterError> {
        let info = self.resolve(&object.gvk()).await?;
        let api = self.api(&info, object.namespace());
        let params = DeleteParams {
            dry_run,
            propagation_policy: Some(match propagation {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..Default::default()
        };
        match self
            .limiter
            .run("delete", || api.delete(object.name(), &params))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists a kind (all namespaces, or one), page by page.
    pub async fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Object>, ClusterError> {
        let api = self.api(info, namespace);
        let mut params = ListParams::default().limit(500);
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        let mut objects = Vec::new();
        loop {
            let page = self.limiter.run("list", || api.list(&params)).await?;
            for item in page.items {
                objects.push(to_object(item, info)?);
            }
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => return Ok(objects),
            }
        }
    }
}
