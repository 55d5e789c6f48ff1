//! AppProjects: which repositories, destinations and kinds an Application
//! may use. Checked before anything is fetched and again on the rendered
//! objects, so a forbidden object is never applied (CVE-2022-24768).

use gitplane_object::Object;
use serde::Deserialize;

use crate::spec::{AppSpec, Destination};

/// `spec` of an AppProject.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Repository URL globs.
    #[serde(default)]
    pub source_repos: Vec<String>,
    /// Allowed destinations (globs; a leading `!` denies).
    #[serde(default)]
    pub destinations: Vec<Destination>,
    /// Cluster-scoped kinds allowed (none when empty).
    #[serde(default)]
    pub cluster_resource_whitelist: Vec<GroupKind>,
    /// Cluster-scoped kinds denied.
    #[serde(default)]
    pub cluster_resource_blacklist: Vec<GroupKind>,
    /// Namespaced kinds allowed (all when empty).
    #[serde(default)]
    pub namespace_resource_whitelist: Vec<GroupKind>,
    /// Namespaced kinds denied.
    #[serde(default)]
    pub namespace_resource_blacklist: Vec<GroupKind>,
    /// Whether applications may have Helm's `lookup` read their
    /// destination (the AppProject's
    /// [`crate::helm_lookup::PROJECT_ANNOTATION`]).
    #[serde(skip)]
    pub allows_helm_lookup: bool,
}

/// A group and kind, with `*` wildcards.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupKind {
    /// API group (`""` for core).
    #[serde(default)]
    pub group: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// The `default` project gitplane creates when it is missing: everything allowed.
pub fn default_project(namespace: &str) -> Object {
    let value = serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]
        }
    });
    match value {
        serde_json::Value::Object(map) => Object::new(map),
        _ => unreachable!("a JSON object literal"),
    }
}

/// `*` and `?` wildcards; everything else literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Allowed by patterns where a leading `!` denies and denials win.
fn allowed_by(patterns: &[&str], text: &str) -> bool {
    let denied = patterns
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .any(|p| glob_match(p, text));
    !denied
        && patterns
            .iter()
            .filter(|p| !p.starts_with('!'))
            .any(|p| glob_match(p, text))
}

fn matches_kind(list: &[GroupKind], group: &str, kind: &str) -> bool {
    list.iter()
        .any(|gk| glob_match(&gk.group, group) && glob_match(&gk.kind, kind))
}

impl ProjectSpec {
    /// Reads an AppProject.
    pub fn of(project: &Object) -> Result<ProjectSpec, String> {
        let spec = project.get(&["spec"]).cloned().unwrap_or_default();
        let mut spec: ProjectSpec = serde_json::from_value(spec)
            .map_err(|e| format!("AppProject {}: {e}", project.name()))?;
        spec.allows_helm_lookup =
            project.annotation(crate::helm_lookup::PROJECT_ANNOTATION) == Some("true");
        Ok(spec)
    }

    /// Whether the project allows this repository.
    pub fn permits_repo(&self, url: &str) -> bool {
        let patterns: Vec<&str> = self.source_repos.iter().map(String::as_str).collect();
        allowed_by(&patterns, url) || allowed_by(&patterns, url.trim_end_matches(".git"))
    }

    /// Whether the project allows this cluster and namespace.
    pub fn permits_destination(&self, destination: &Destination, namespace: &str) -> bool {
        let matching = |d: &Destination| {
            let server_ok = if d.server.is_empty() {
                !d.name.is_empty() && glob_match(&d.name, &destination.name)
            } else {
                glob_match(d.server.trim_start_matches('!'), &destination.server)
                    || (destination.server.is_empty() && d.server == "*")
            };
            server_ok && glob_match(d.namespace.trim_start_matches('!'), namespace)
        };
        let denied = self
            .destinations
            .iter()
            .filter(|d| d.namespace.starts_with('!') || d.server.starts_with('!'))
            .any(matching);
        !denied
            && self
                .destinations
                .iter()
                .filter(|d| !d.namespace.starts_with('!') && !d.server.starts_with('!'))
                .any(matching)
    }

    /// Whether the project allows an object of this kind and scope.
    pub fn permits_kind(&self, group: &str, kind: &str, namespaced: bool) -> bool {
        if namespaced {
            (self.namespace_resource_whitelist.is_empty()
                || matches_kind(&self.namespace_resource_whitelist, group, kind))
                && !matches_kind(&self.namespace_resource_blacklist, group, kind)
        } else {
            matches_kind(&self.cluster_resource_whitelist, group, kind)
                && !matches_kind(&self.cluster_resource_blacklist, group, kind)
        }
    }

    /// The first violation of this project by an Application's spec.
    pub fn check_spec(&self, name: &str, spec: &AppSpec) -> Result<(), String> {
        if spec.helm_lookup && !self.allows_helm_lookup {
            return Err(format!(
                "application asks for Helm lookup from its cluster ({}: \"true\"), which project '{name}' does not allow ({}: \"true\" on the AppProject)",
                crate::helm_lookup::APP_ANNOTATION,
                crate::helm_lookup::PROJECT_ANNOTATION
            ));
        }
        for source in spec.all_sources() {
            if !self.permits_repo(&source.repo_url) {
                return Err(format!(
                    "application repo {} is not permitted in project '{name}'",
                    source.repo_url
                ));
            }
        }
        let d = &spec.destination;
        if !self.permits_destination(d, &d.namespace) {
            return Err(format!(
                "application destination server '{}' and namespace '{}' do not match any of the allowed destinations in project '{name}'",
                if d.server.is_empty() {
                    &d.name
                } else {
                    &d.server
                },
                d.namespace
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("team-*", "team-a"));
        assert!(!glob_match("team-*", "other"));
        assert!(glob_match(
            "https://git.example.com/*",
            "https://git.example.com/x/y"
        ));
        assert!(glob_match("a?c", "abc"));
        assert!(allowed_by(&["*", "!kube-*"], "default"));
        assert!(!allowed_by(&["*", "!kube-*"], "kube-system"));
    }

    #[test]
    fn kinds_follow_argo_cd_defaults() {
        let project: ProjectSpec = serde_json::from_value(serde_json::json!({
            "namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}]
        }))
        .unwrap_or_default();
        assert!(project.permits_kind("apps", "Deployment", true));
        assert!(!project.permits_kind("", "ResourceQuota", true));
        assert!(project.permits_kind("", "Namespace", false));
        assert!(!project.permits_kind("rbac.authorization.k8s.io", "ClusterRole", false));
        let empty = ProjectSpec::default();
        assert!(
            !empty.permits_kind("", "Namespace", false),
            "no cluster kinds by default"
        );
    }

    #[test]
    fn destinations() {
        let project: ProjectSpec = serde_json::from_value(serde_json::json!({
            "destinations": [
                {"server": "https://kubernetes.default.svc", "namespace": "team-*"},
                {"server": "*", "namespace": "!team-secret"}
            ]
        }))
        .unwrap_or_default();
        let here = Destination {
            server: "https://kubernetes.default.svc".into(),
            ..Destination::default()
        };
        assert!(project.permits_destination(&here, "team-a"));
        assert!(!project.permits_destination(&here, "kube-system"));
        assert!(!project.permits_destination(&here, "team-secret"));
    }

    #[test]
    fn helm_lookup_needs_the_projects_consent() {
        let object = |kind: &str, annotations: serde_json::Value, spec: serde_json::Value| {
            gitplane_object::Object::try_from(serde_json::json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": kind,
                "metadata": {"name": "x", "annotations": annotations},
                "spec": spec,
            }))
            .unwrap()
        };
        let app_spec = serde_json::json!({
            "project": "p",
            "source": {"repoURL": "https://git.example.com/a", "path": "charts/db"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "db"},
        });
        let asking = crate::spec::app_spec(&object(
            "Application",
            serde_json::json!({"gitplane.dev/helm-lookup": "true"}),
            app_spec.clone(),
        ))
        .unwrap();
        let silent =
            crate::spec::app_spec(&object("Application", serde_json::json!({}), app_spec)).unwrap();
        assert!(asking.helm_lookup && !silent.helm_lookup);
        let project_spec = serde_json::json!({
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
        });
        let allowing = ProjectSpec::of(&object(
            "AppProject",
            serde_json::json!({"gitplane.dev/allow-helm-lookup": "true"}),
            project_spec.clone(),
        ))
        .unwrap();
        let plain =
            ProjectSpec::of(&object("AppProject", serde_json::json!({}), project_spec)).unwrap();
        assert_eq!(allowing.check_spec("p", &asking), Ok(()));
        assert_eq!(plain.check_spec("p", &silent), Ok(()));
        let refused = plain.check_spec("p", &asking).unwrap_err();
        assert!(
            refused.contains("project 'p' does not allow")
                && refused.contains("gitplane.dev/allow-helm-lookup"),
            "{refused}"
        );
    }
}
