//! Fixing name references after renames.
//!
//! Prefixes, suffixes and content hashes change names; every field that refers
//! to a renamed object by name (a Deployment's `configMapRef`, a RoleBinding's
//! `roleRef`, an Ingress backend...) is updated to the new name. Candidates are
//! the objects whose *previous* names include the referenced name and whose type
//! is the referred kind; ties are broken as kustomize breaks them (same
//! namespace, then same prefixes and suffixes as the referrer).

use gitplane_object::{Gvk, Value};

use super::config::NameReference;
use super::fieldspec::visit_object_field;
use super::resource::{Resource, is_cluster_scoped};

struct Candidate {
    name: String,
    namespace: String,
}

/// Rewrites every name reference in `resources`.
pub(crate) fn fix_name_references(
    resources: &mut [Resource],
    references: &[NameReference],
) -> Result<(), String> {
    let snapshot: Vec<Resource> = resources.to_vec();
    for (i, referrer) in resources.iter_mut().enumerate() {
        let original_gvk = referrer.original_id().gvk;
        let visible = visible_from(&snapshot, i);
        for reference in references {
            for spec in reference
                .referrers
                .iter()
                .filter(|s| s.applies_to(&original_gvk))
            {
                let target = Gvk::new(
                    reference.group.clone(),
                    reference.version.clone(),
                    reference.kind.clone(),
                );
                let ctx = Context {
                    all: &snapshot,
                    referrer: &snapshot[i],
                    visible: &visible,
                    target: &target,
                    path: &spec.path_text,
                };
                visit_object_field(
                    &mut referrer.object,
                    spec,
                    false,
                    &|| Value::Null,
                    &mut |node| ctx.fix(node),
                )
                .map_err(|m| format!("fixing {} in {}: {m}", spec.path_text, snapshot[i].object))?;
            }
        }
    }
    Ok(())
}

/// The objects a referrer may refer to: anything for cluster-scoped referrers;
/// otherwise cluster-scoped objects, objects in its namespace, and (for a
/// RoleBinding) objects in the namespaces of its ServiceAccount subjects.
fn visible_from(all: &[Resource], referrer: usize) -> Vec<usize> {
    let me = all[referrer].current_id();
    if is_cluster_scoped(&me.gvk) {
        return (0..all.len()).collect();
    }
    let subject_namespaces: Vec<String> = if me.gvk.kind == "RoleBinding" {
        all[referrer]
            .object
            .get(&["subjects"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|s| s.get("kind").and_then(Value::as_str) == Some("ServiceAccount"))
            .filter_map(|s| {
                s.get("namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    } else {
        Vec::new()
    };
    (0..all.len())
        .filter(|&j| {
            let id = all[j].current_id();
            is_cluster_scoped(&id.gvk)
                || id.effective_namespace() == me.effective_namespace()
                || subject_namespaces
                    .iter()
                    .any(|ns| ns == all[j].object.namespace().unwrap_or(""))
        })
        .collect()
}

struct Context<'a> {
    all: &'a [Resource],
    referrer: &'a Resource,
    visible: &'a [usize],
    target: &'a Gvk,
    path: &'a str,
}

impl Context<'_> {
    fn fix(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::String(_) => self.fix_scalar(node),
            Value::Object(_) => self.fix_mapping(node),
            Value::Array(items) => {
                for item in items.iter_mut() {
                    match item {
                        Value::String(_) => self.fix_scalar(item)?,
                        Value::Object(_) => self.fix_mapping(item)?,
                        _ => {}
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn fix_scalar(&self, node: &mut Value) -> Result<(), String> {
        let Value::String(old) = node else {
            return Ok(());
        };
        if let Some(referral) = self.select(old, self.visible.to_vec(), false)? {
            *old = referral.name;
        }
        Ok(())
    }

    /// A `{name, namespace}` mapping (RoleBinding subjects, webhook services).
    fn fix_mapping(&self, node: &mut Value) -> Result<(), String> {
        let Value::Object(map) = node else {
            return Ok(());
        };
        let Some(old) = map.get("name").and_then(Value::as_str).map(str::to_string) else {
            return Err("path config error: no 'name' field".into());
        };
        let candidates: Vec<usize> = match map.get("namespace").and_then(Value::as_str) {
            None => self.visible.to_vec(),
            Some(ns) => {
                let by_original: Vec<usize> = self
                    .visible
                    .iter()
                    .copied()
                    .filter(|&j| self.all[j].original_id().effective_namespace() == effective(ns))
                    .collect();
                if by_original.is_empty() {
                    self.visible
                        .iter()
                        .copied()
                        .filter(|&j| {
                            self.all[j].current_id().effective_namespace() == effective(ns)
                        })
                        .collect()
                } else {
                    by_original
                }
            }
        };
        let Some(referral) = self.select(&old, candidates, true)? else {
            return Ok(());
        };
        if referral.name == old && referral.namespace.is_empty() {
            return Ok(());
        }
        map.insert("name".into(), Value::String(referral.name));
        if !referral.namespace.is_empty() {
            map.insert("namespace".into(), Value::String(referral.namespace));
        }
        Ok(())
    }

    fn select(
        &self,
        old_name: &str,
        mut candidates: Vec<usize>,
        compare_namespaces: bool,
    ) -> Result<Option<Candidate>, String> {
        let all = self.all;
        candidates.retain(|&j| all[j].previous_ids.iter().any(|id| id.name == old_name));
        candidates.retain(|&j| {
            all[j]
                .previous_ids
                .iter()
                .any(|id| selected_by(&id.gvk, self.target))
        });
        if self.path.ends_with("roleRef/name")
            && let Some(role_gvk) = role_ref_gvk(self.referrer)
        {
            candidates.retain(|&j| {
                all[j]
                    .previous_ids
                    .iter()
                    .any(|id| selected_by(&id.gvk, &role_gvk))
            });
        }
        let me = self.referrer.current_id();
        if !is_cluster_scoped(&me.gvk) {
            candidates.retain(|&j| {
                let id = all[j].current_id();
                is_cluster_scoped(&id.gvk)
                    || id.gvk.kind == "ServiceAccount"
                    || id.effective_namespace() == me.effective_namespace()
            });
        }
        if candidates.len() > 1 {
            candidates.retain(|&j| {
                all[j].prefixes == self.referrer.prefixes
                    && all[j].suffixes == self.referrer.suffixes
            });
        }
        let candidate = |j: usize| Candidate {
            name: all[j].object.name().to_string(),
            namespace: all[j].object.namespace().unwrap_or("").to_string(),
        };
        match candidates.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(candidate(*one))),
            [first, rest @ ..] => {
                let same = rest.iter().all(|&j| {
                    let (a, b) = (candidate(*first), candidate(j));
                    a.name == b.name && (!compare_namespaces || a.namespace == b.namespace)
                });
                if same {
                    Ok(Some(candidate(*first)))
                } else {
                    let names: Vec<String> = candidates
                        .iter()
                        .map(|&j| all[j].object.to_string())
                        .collect();
                    Err(format!(
                        "found multiple possible referrals for {old_name:?}: {}",
                        names.join(", ")
                    ))
                }
            }
        }
    }
}

fn effective(namespace: &str) -> &str {
    if namespace.is_empty() {
        "default"
    } else {
        namespace
    }
}

/// kustomize's `Gvk.IsSelected`: empty selector fields match anything.
fn selected_by(gvk: &Gvk, selector: &Gvk) -> bool {
    (selector.group.is_empty() || selector.group == gvk.group)
        && (selector.version.is_empty() || selector.version == gvk.version)
        && (selector.kind.is_empty() || selector.kind == gvk.kind)
}

fn role_ref_gvk(referrer: &Resource) -> Option<Gvk> {
    let role_ref = referrer.object.get(&["roleRef"])?;
    let group = role_ref.get("apiGroup")?.as_str()?;
    let kind = role_ref.get("kind")?.as_str()?;
    Some(Gvk::new(group, "", kind))
}
