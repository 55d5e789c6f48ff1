//! Hooks: objects that run at a point of the sync (a migration Job before it,
//! a smoke test after it) instead of being kept in sync. Argo CD's
//! annotations, and Helm's mapped onto them as Argo CD maps them.

use gitplane_object::Object;
use serde::{Deserialize, Serialize};

use crate::order::{Phase, SYNC_WAVE_ANNOTATION};

/// The phases an object is a hook of (comma-separated).
pub const HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// When to delete a hook object (comma-separated).
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
const HELM_HOOK: &str = "helm.sh/hook";
const HELM_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";
const HELM_WEIGHT: &str = "helm.sh/hook-weight";

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletePolicy {
    /// The previous run's object is deleted before a new one is created
    /// (the default).
    BeforeHookCreation,
    /// Deleted once it succeeded.
    HookSucceeded,
    /// Deleted once it failed.
    HookFailed,
}

/// What the annotations make of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A regular resource, kept in sync.
    Resource,
    /// A hook of these phases.
    Hook(HookSpec),
    /// `Skip`: neither applied nor pruned.
    Skipped,
    /// Only PreDelete/PostDelete, or a Helm hook Argo CD ignores (tests):
    /// not part of a sync.
    NotForSync,
}

/// A hook's phases and delete policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// The phases it runs in.
    pub phases: Vec<Phase>,
    /// When it is deleted.
    pub delete_policies: Vec<DeletePolicy>,
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Reads an object's hook annotations (Argo CD's win over Helm's).
pub fn role_of(object: &Object) -> Role {
    let (phases, skip, deletion_only) = match object.annotation(HOOK_ANNOTATION) {
        Some(text) => argo_phases(text),
        None => match object.annotation(HELM_HOOK) {
            Some(text) => helm_phases(text),
            None => return Role::Resource,
        },
    };
    if skip {
        return Role::Skipped;
    }
    if phases.is_empty() {
        return if deletion_only {
            Role::NotForSync
        } else {
            Role::Resource
        };
    }
    let policies = object
        .annotation(HOOK_DELETE_POLICY_ANNOTATION)
        .map(argo_policies)
        .or_else(|| object.annotation(HELM_DELETE_POLICY).map(helm_policies))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| vec![DeletePolicy::BeforeHookCreation]);
    Role::Hook(HookSpec {
        phases,
        delete_policies: policies,
    })
}

/// (phases, Skip given, only deletion phases given)
fn argo_phases(text: &str) -> (Vec<Phase>, bool, bool) {
    let mut phases = Vec::new();
    let (mut skip, mut deletion) = (false, false);
    for name in split(text) {
        match name {
            "PreSync" => phases.push(Phase::PreSync),
            "Sync" => phases.push(Phase::Sync),
            "PostSync" => phases.push(Phase::PostSync),
            "SyncFail" => phases.push(Phase::SyncFail),
            "Skip" => skip = true,
            "PreDelete" | "PostDelete" => deletion = true,
            _ => {}
        }
    }
    (phases, skip, deletion)
}

fn helm_phases(text: &str) -> (Vec<Phase>, bool, bool) {
    let mut phases = Vec::new();
    let mut ignored = false;
    for name in split(text) {
        match name {
            "pre-install" | "pre-upgrade" => phases.push(Phase::PreSync),
            "post-install" | "post-upgrade" => phases.push(Phase::PostSync),
            _ => ignored = true,
        }
    }
    phases.dedup();
    (phases, false, ignored)
}

fn argo_policies(text: &str) -> Vec<DeletePolicy> {
    split(text)
        .filter_map(|p| match p {
            "BeforeHookCreation" => Some(DeletePolicy::BeforeHookCreation),
            "HookSucceeded" => Some(DeletePolicy::HookSucceeded),
            "HookFailed" => Some(DeletePolicy::HookFailed),
            _ => None,
        })
        .collect()
}

fn helm_policies(text: &str) -> Vec<DeletePolicy> {
    split(text)
        .filter_map(|p| match p {
            "before-hook-creation" => Some(DeletePolicy::BeforeHookCreation),
            "hook-succeeded" => Some(DeletePolicy::HookSucceeded),
            "hook-failed" => Some(DeletePolicy::HookFailed),
            _ => None,
        })
        .collect()
}

/// A hook's wave: the sync-wave annotation, else Helm's hook weight, else 0.
pub fn hook_wave(object: &Object) -> i32 {
    object
        .annotation(SYNC_WAVE_ANNOTATION)
        .or_else(|| object.annotation(HELM_WEIGHT))
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(annotations: serde_json::Value) -> Object {
        Object::try_from(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "annotations": annotations}})).unwrap()
    }

    #[test]
    fn argo_and_helm_annotations() {
        assert_eq!(role_of(&with(json!({}))), Role::Resource);
        assert_eq!(
            role_of(&with(
                json!({HOOK_ANNOTATION: "PreSync", HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded"})
            )),
            Role::Hook(HookSpec {
                phases: vec![Phase::PreSync],
                delete_policies: vec![DeletePolicy::HookSucceeded]
            })
        );
        assert_eq!(
            role_of(&with(
                json!({HELM_HOOK: "pre-install,pre-upgrade", HELM_WEIGHT: "-2"})
            )),
            Role::Hook(HookSpec {
                phases: vec![Phase::PreSync],
                delete_policies: vec![DeletePolicy::BeforeHookCreation]
            })
        );
        assert_eq!(hook_wave(&with(json!({HELM_WEIGHT: "-2"}))), -2);
        assert_eq!(
            role_of(&with(json!({HOOK_ANNOTATION: "Skip"}))),
            Role::Skipped
        );
        assert_eq!(
            role_of(&with(json!({HOOK_ANNOTATION: "PostDelete"}))),
            Role::NotForSync
        );
        assert_eq!(role_of(&with(json!({HELM_HOOK: "test"}))), Role::NotForSync);
    }
}
