//! Fixing name references after renames.
//!
//! Prefixes, suffixes and content hashes change names; every field that refers
//! to a renamed object by name (a Deployment's `configMapRef`, a RoleBinding's
//! `roleRef`, an Ingress backend...) is updated to the new name. Candidates are
//! the objects whose *previous* names include the referenced name and whose type
//! is the referred kind; ties are broken as kustomize breaks them (same
//! namespace, then same prefixes and suffixes as the referrer).

use std::collections::HashMap;

use gitplane_object::{Gvk, Value};

use super::config::NameReference;
use super::fieldspec::visit_object_field;
use super::resource::{ResId, Resource, is_cluster_scoped};

/// What name fixing needs to know about each resource, computed once.
struct Facts {
    current: ResId,
    original_namespace: String,
    previous: Vec<ResId>,
    cluster_scoped: bool,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

impl Facts {
    fn of(r: &Resource) -> Self {
        let current = r.current_id();
        Facts {
            cluster_scoped: is_cluster_scoped(&current.gvk),
            original_namespace: r.original_id().effective_namespace().to_string(),
            current,
            previous: r.previous_ids.clone(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
        }
    }
}

/// All resources' facts, indexed by every name they had before a rename.
struct World {
    facts: Vec<Facts>,
    by_previous_name: HashMap<String, Vec<usize>>,
}

/// Rewrites every name reference in `resources`.
pub(crate) fn fix_name_references(
    resources: &mut [Resource],
    references: &[NameReference],
) -> Result<(), String> {
    let facts: Vec<Facts> = resources.iter().map(Facts::of).collect();
    let mut by_previous_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, f) in facts.iter().enumerate() {
        for id in &f.previous {
            let list = by_previous_name.entry(id.name.clone()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let world = World {
        facts,
        by_previous_name,
    };
    for (i, referrer) in resources.iter_mut().enumerate() {
        let original_gvk = referrer.original_id().gvk;
        let subject_namespaces = service_account_subject_namespaces(referrer);
        let role_ref = role_ref_gvk(referrer);
        for reference in references {
            let target = Gvk::new(
                reference.group.clone(),
                reference.version.clone(),
                reference.kind.clone(),
            );
            for spec in reference
                .referrers
                .iter()
                .filter(|s| s.applies_to(&original_gvk))
            {
                let ctx = Context {
                    world: &world,
                    referrer: i,
                    subject_namespaces: &subject_namespaces,
                    target: &target,
                    role_ref: role_ref
                        .as_ref()
                        .filter(|_| spec.path_text.ends_with("roleRef/name")),
                };
                visit_object_field(
                    &mut referrer.object,
                    spec,
                    false,
                    &|| Value::Null,
                    &mut |node| ctx.fix(node),
                )
                .map_err(|m| {
                    format!(
                        "fixing {} in {}: {m}",
                        spec.path_text,
                        world.facts[i].current.describe()
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// For a RoleBinding, the namespaces of its ServiceAccount subjects: objects
/// there are visible to it too.
fn service_account_subject_namespaces(referrer: &Resource) -> Vec<String> {
    if referrer.object.kind() != "RoleBinding" {
        return Vec::new();
    }
    referrer
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
}

struct Context<'a> {
    world: &'a World,
    referrer: usize,
    subject_namespaces: &'a [String],
    target: &'a Gvk,
    role_ref: Option<&'a Gvk>,
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

    /// Objects a namespaced referrer may refer to: cluster-scoped ones, those in
    /// its namespace, and those in its ServiceAccount subjects' namespaces.
    fn visible(&self, j: usize) -> bool {
        let (me, other) = (&self.world.facts[self.referrer], &self.world.facts[j]);
        me.cluster_scoped
            || other.cluster_scoped
            || other.current.effective_namespace() == me.current.effective_namespace()
            || self.subject_namespaces.contains(&other.current.namespace)
    }

    fn named(&self, old_name: &str) -> Vec<usize> {
        self.world
            .by_previous_name
            .get(old_name)
            .map(|v| v.iter().copied().filter(|&j| self.visible(j)).collect())
            .unwrap_or_default()
    }

    fn fix_scalar(&self, node: &mut Value) -> Result<(), String> {
        let Value::String(old) = node else {
            return Ok(());
        };
        if let Some((name, _)) = self.select(old, self.named(old), false)? {
            *old = name;
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
        let mut candidates = self.named(&old);
        if let Some(ns) = map.get("namespace").and_then(Value::as_str) {
            let wanted = if ns.is_empty() { "default" } else { ns };
            let facts = &self.world.facts;
            let by_original: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&j| facts[j].original_namespace == wanted)
                .collect();
            candidates = if by_original.is_empty() {
                candidates
                    .into_iter()
                    .filter(|&j| facts[j].current.effective_namespace() == wanted)
                    .collect()
            } else {
                by_original
            };
        }
        let Some((name, namespace)) = self.select(&old, candidates, true)? else {
            return Ok(());
        };
        if name == old && namespace.is_empty() {
            return Ok(());
        }
        map.insert("name".into(), Value::String(name));
        if !namespace.is_empty() {
            map.insert("namespace".into(), Value::String(namespace));
        }
        Ok(())
    }

    /// kustomize's `selectReferral`: the one candidate left after sieving, or
    /// several that agree on the name (and namespace).
    fn select(
        &self,
        old_name: &str,
        mut candidates: Vec<usize>,
        compare_namespaces: bool,
    ) -> Result<Option<(String, String)>, String> {
        let facts = &self.world.facts;
        candidates.retain(|&j| {
            facts[j]
                .previous
                .iter()
                .any(|id| selected_by(&id.gvk, self.target))
        });
        if let Some(role_gvk) = self.role_ref {
            candidates.retain(|&j| {
                facts[j]
                    .previous
                    .iter()
                    .any(|id| selected_by(&id.gvk, role_gvk))
            });
        }
        let me = &facts[self.referrer];
        if !me.cluster_scoped {
            candidates.retain(|&j| {
                let other = &facts[j];
                other.cluster_scoped
                    || other.current.gvk.kind == "ServiceAccount"
                    || other.current.effective_namespace() == me.current.effective_namespace()
            });
        }
        if candidates.len() > 1 {
            candidates
                .retain(|&j| facts[j].prefixes == me.prefixes && facts[j].suffixes == me.suffixes);
        }
        let answer = |j: usize| {
            (
                facts[j].current.name.clone(),
                facts[j].current.namespace.clone(),
            )
        };
        match candidates.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(answer(*one))),
            [first, rest @ ..] => {
                let agree = rest.iter().all(|&j| {
                    let (a, b) = (answer(*first), answer(j));
                    a.0 == b.0 && (!compare_namespaces || a.1 == b.1)
                });
                if agree {
                    Ok(Some(answer(*first)))
                } else {
                    let names: Vec<String> = candidates
                        .iter()
                        .map(|&j| facts[j].current.describe())
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
