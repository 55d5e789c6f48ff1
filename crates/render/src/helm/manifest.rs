//! From rendered files to `helm template`'s output: documents split as
//! Helm 4.1 splits them, hooks set apart, manifests in Helm's install order,
//! printed with `# Source:` lines (`pkg/release/v1/util/manifest_sorter.go`,
//! `kind_sorter.go`, `pkg/cmd/template.go`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use gitplane_object::yaml::{Dialect, Limits, parse_documents};
use regex::Regex;
use serde_json::Value as Json;

/// Helm's install order of kinds; unknown kinds come after, by name.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Hook events Helm knows; a document naming any other is dropped.
const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// One document of a rendered file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The template it came from (`chart/templates/x.yaml`).
    pub source: String,
    /// Its text.
    pub content: String,
    /// Its kind (empty for a comment-only document).
    pub kind: String,
    /// Its hook events, if it is a hook.
    pub hooks: Option<Vec<String>>,
    /// Its text parsed: each YAML document with the line it starts on.
    pub parsed: Vec<(Json, usize)>,
}

impl Document {
    /// Whether it is a test hook (`test`, `test-success`).
    pub fn is_test(&self) -> bool {
        self.hooks
            .as_ref()
            .is_some_and(|h| h.iter().any(|e| e == "test" || e == "test-success"))
    }
}

/// Helm's document separator (`releaseutil.SplitManifests`).
static SEPARATOR: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"(?:^|[\t\n\f\r ]*\n)---[\t\n\f\r ]*"));

/// Splits one rendered file into its documents, parsed: none for
/// `NOTES.txt` or an empty file, hooks with an unknown event left out (as
/// Helm skips them).
pub fn split(path: &str, text: &str) -> Result<Vec<Document>, String> {
    let separator = SEPARATOR.as_ref().map_err(ToString::to_string)?;
    if path.ends_with("NOTES.txt") || text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut documents = Vec::new();
    for piece in separator.split(text.trim()) {
        if piece.is_empty() {
            continue;
        }
        if let Some(document) = head(path, piece.trim().to_string())? {
            documents.push(document);
        }
    }
    Ok(documents)
}

/// Sorts the documents [`split`] made of each rendered file (by path):
/// manifests and hooks, each in install order; the first file's error, by
/// path, if any.
pub fn sort(
    split: BTreeMap<String, Result<Vec<Document>, String>>,
) -> Result<(Vec<Document>, Vec<Document>), String> {
    let mut manifests = Vec::new();
    let mut hooks = Vec::new();
    for documents in split.into_values() {
        for document in documents? {
            if document.hooks.is_some() {
                hooks.push(document);
            } else {
                manifests.push(document);
            }
        }
    }
    sort_by_kind(&mut manifests);
    sort_by_kind(&mut hooks);
    Ok((manifests, hooks))
}

/// Reads a document's kind and hook annotation; `None` for a hook with an
/// unknown event (Helm skips it).
fn head(path: &str, content: String) -> Result<Option<Document>, String> {
    let parsed: Vec<(Json, usize)> =
        parse_documents(&content, Dialect::Kubernetes, &Limits::lenient())
            .map_err(|e| format!("YAML parse error on {path}: line {}: {}", e.line, e.message))?
            .into_iter()
            .map(|d| (d.value, d.line))
            .collect();
    let value = parsed.first().map_or(&Json::Null, |(value, _)| value);
    if !matches!(value, Json::Object(_) | Json::Null) {
        return Err(format!(
            "YAML parse error on {path}: a rendered document must be a mapping"
        ));
    }
    let kind = value
        .get("kind")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    let hook = value
        .pointer("/metadata/annotations/helm.sh~1hook")
        .and_then(Json::as_str);
    let hooks = match hook {
        None => None,
        Some(events) => {
            let events: Vec<String> = events
                .split(',')
                .map(|e| e.trim().to_ascii_lowercase())
                .collect();
            if events.iter().any(|e| !HOOK_EVENTS.contains(&e.as_str())) {
                return Ok(None);
            }
            Some(events)
        }
    };
    Ok(Some(Document {
        source: path.to_string(),
        content,
        kind,
        hooks,
        parsed,
    }))
}

fn sort_by_kind(documents: &mut [Document]) {
    let rank = |kind: &str| INSTALL_ORDER.iter().position(|k| *k == kind);
    documents.sort_by(|a, b| match (rank(&a.kind), rank(&b.kind)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.kind.cmp(&b.kind),
    });
}

/// What to print besides the manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Print {
    /// CRD files (source path, raw text), printed first.
    pub crds: Vec<(String, String)>,
    /// Print hooks.
    pub hooks: bool,
    /// Leave out test hooks.
    pub skip_tests: bool,
}

/// `helm template`'s stdout.
pub fn print(manifests: &[Document], hooks: &[Document], options: &Print) -> String {
    let mut out = String::new();
    for (source, text) in &options.crds {
        push_document(&mut out, source, text);
    }
    for m in manifests {
        push_document(&mut out, &m.source, &m.content);
    }
    // Helm trims what the CRDs and manifests make, then ends it with a
    // line break; trimmed in place, as it is most of the output.
    let end = out.trim_end().len();
    out.truncate(end);
    let start = out.len() - out.trim_start().len();
    out.drain(..start);
    out.push('\n');
    if options.hooks {
        for h in hooks {
            if options.skip_tests && h.is_test() {
                continue;
            }
            push_document(&mut out, &h.source, &h.content);
        }
    }
    out
}

/// `---`, the `# Source:` line and the document, each ending a line.
fn push_document(out: &mut String, source: &str, text: &str) {
    out.push_str("---\n# Source: ");
    out.push_str(source);
    out.push('\n');
    out.push_str(text);
    out.push('\n');
}

/// `helm template --show-only`: the documents of `output` rendered from the
/// templates `patterns` name (paths inside the chart such as
/// `templates/service.yaml`, globs as Go's `filepath.Match`), in the order
/// of the patterns, each printed `---\n<document>\n`. A pattern matching
/// nothing is an error, as in Helm.
pub fn show_only(output: &str, patterns: &[String]) -> Result<String, String> {
    let separator = regex::Regex::new(r"(?:^|\s*\n)---\s*").map_err(|e| e.to_string())?;
    let source = regex::Regex::new(r"# Source: [^/]+/(.+)").map_err(|e| e.to_string())?;
    let documents: Vec<&str> = separator
        .split(output)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let mut out = String::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("--show-only {pattern:?}: {e}"))?
            .compile_matcher();
        let mut found = false;
        for document in &documents {
            let Some(name) = source.captures(document).and_then(|c| c.get(1)) else {
                continue;
            };
            if glob.is_match(name.as_str()) {
                out.push_str(&format!("---\n{document}\n"));
                found = true;
            }
        }
        if !found {
            return Err(format!("could not find template {pattern} in chart"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rendered files (path, text), each [`split`].
    fn files(entries: &[(&str, &str)]) -> BTreeMap<String, Result<Vec<Document>, String>> {
        entries
            .iter()
            .map(|(p, t)| (p.to_string(), split(p, t)))
            .collect()
    }

    #[test]
    fn show_only_picks_documents_by_template_path() {
        let output = "---\n# Source: c/templates/a.yaml\nkind: A\n---\n# Source: c/templates/b.yaml\nkind: B\n---\n# Source: c/charts/s/templates/a.yaml\nkind: C\n";
        let only =
            |p: &[&str]| show_only(output, &p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            only(&["templates/b.yaml", "templates/a.yaml"]).unwrap(),
            "---\n# Source: c/templates/b.yaml\nkind: B\n---\n# Source: c/templates/a.yaml\nkind: A\n"
        );
        // `*` stops at `/`, as Go's filepath.Match.
        assert_eq!(only(&["templates/*"]).unwrap().matches("---").count(), 2);
        assert_eq!(
            only(&["charts/*/templates/*"])
                .unwrap()
                .matches("kind: C")
                .count(),
            1
        );
        assert_eq!(
            only(&["templates/x.yaml"]).unwrap_err(),
            "could not find template templates/x.yaml in chart"
        );
    }

    #[test]
    fn documents_split_and_sort_as_helm_does() {
        let rendered = files(&[
            (
                "c/templates/a.yaml",
                "kind: Deployment\nmetadata:\n  name: d\n---\nkind: Service\n---\n# just a comment\n",
            ),
            (
                "c/templates/b.yaml",
                "\n\nkind: Namespace\n---apiVersion: v1\nkind: Zeta\n",
            ),
            ("c/templates/NOTES.txt", "kind: Secret"),
            (
                "c/templates/hook.yaml",
                "kind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: pre-install,test\n",
            ),
            (
                "c/templates/odd.yaml",
                "kind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: sometime\n",
            ),
        ]);
        let (manifests, hooks) = sort(rendered).unwrap();
        let kinds: Vec<&str> = manifests.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["Namespace", "Service", "Deployment", "", "Zeta"]);
        assert_eq!(hooks.len(), 1);
        let out = print(
            &manifests,
            &hooks,
            &Print {
                hooks: true,
                ..Print::default()
            },
        );
        assert!(out.starts_with("---\n# Source: c/templates/b.yaml\nkind: Namespace\n---\n# Source: c/templates/a.yaml\nkind: Service\n"), "{out}");
        assert!(out.ends_with("---\n# Source: c/templates/hook.yaml\nkind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: pre-install,test\n"));
        let skipped = print(
            &manifests,
            &hooks,
            &Print {
                hooks: true,
                skip_tests: true,
                ..Print::default()
            },
        );
        assert!(!skipped.contains("hook.yaml"));
        assert_eq!(print(&[], &[], &Print::default()), "\n");
    }

    #[test]
    fn a_document_that_is_not_a_mapping_fails() {
        let err = sort(files(&[("c/templates/x.yaml", "just text")])).unwrap_err();
        assert!(
            err.starts_with("YAML parse error on c/templates/x.yaml"),
            "{err}"
        );
    }
}
