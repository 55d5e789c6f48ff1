//! Identity of objects: their type ([`Gvk`]) and their key ([`ObjectKey`]).

use std::fmt;

/// Group, version and kind of an object (`apps`, `v1`, `Deployment`). The core
/// group is the empty string.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Gvk {
    /// API group, empty for the core group.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind, in CamelCase.
    pub kind: String,
}

impl Gvk {
    /// Builds a Gvk from parts.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// Splits an `apiVersion` (`apps/v1` or `v1`) and pairs it with a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = split_api_version(api_version);
        Gvk::new(group, version, kind)
    }

    /// The `apiVersion` string: `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group and kind without the version (`apps/Deployment`, `/ConfigMap` for
    /// the core group's kinds is written `ConfigMap`).
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}/{}", self.group, self.kind)
        }
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, Kind={}", self.api_version(), self.kind)
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// What identifies an object in a cluster regardless of its API version: group,
/// kind, namespace (empty for cluster-scoped objects) and name. Its text form is
/// the one Argo CD uses in tracking ids: `group/Kind:namespace/name`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ObjectKey {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty when cluster-scoped (or not yet set).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key from parts.
    pub fn new(
        group: impl Into<String>,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses the text form `group/Kind:namespace/name` (see [`fmt::Display`]).
    pub fn parse(text: &str) -> Option<Self> {
        let (gk, nn) = text.split_once(':')?;
        let (group, kind) = gk.split_once('/')?;
        let (namespace, name) = nn.split_once('/')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(ObjectKey::new(group, kind, namespace, name))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}:{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }
}

/// The lowercase plural of a kind, as kro (flect) forms it and as Kubernetes names
/// most resources: `WebApp` →
/// `webapps`, `Policy` → `policies`, `Ingress` → `ingresses`.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with("ss")
        || lower.ends_with('x')
        || lower.ends_with('z')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
        || lower.ends_with("us")
    {
        return format!("{lower}es");
    }
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if lower.ends_with('s') {
        return lower;
    }
    format!("{lower}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        for (kind, expected) in [
            ("WebApp", "webapps"),
            ("Tenant", "tenants"),
            ("Policy", "policies"),
            ("Ingress", "ingresses"),
            ("Gateway", "gateways"),
            ("Box", "boxes"),
            ("Status", "statuses"),
            ("Mesh", "meshes"),
        ] {
            assert_eq!(plural(kind), expected);
        }
    }

    #[test]
    fn api_versions() {
        let g = Gvk::from_api_version("apps/v1", "Deployment");
        assert_eq!((g.group.as_str(), g.version.as_str()), ("apps", "v1"));
        assert_eq!(g.api_version(), "apps/v1");
        assert_eq!(Gvk::from_api_version("v1", "Pod").api_version(), "v1");
        assert_eq!(Gvk::from_api_version("v1", "Pod").group_kind(), "Pod");
    }

    #[test]
    fn key_text_round_trips() {
        let k = ObjectKey::new("apps", "Deployment", "team-a", "web");
        assert_eq!(k.to_string(), "apps/Deployment:team-a/web");
        assert_eq!(ObjectKey::parse(&k.to_string()), Some(k));
        let core = ObjectKey::new("", "Namespace", "", "team-a");
        assert_eq!(core.to_string(), "/Namespace:/team-a");
        assert_eq!(ObjectKey::parse("/Namespace:/team-a"), Some(core));
        assert_eq!(ObjectKey::parse("nonsense"), None);
    }
}
