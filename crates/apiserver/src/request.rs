//! Understanding a request: which route its path names, its query parameters,
//! and the media types of its body and of the response it wants.

use crate::error::{ApiError, ApiResult};

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/version`.
    Version,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    GroupVersion(String, String),
    /// `/openapi/v2` (served as 404: kubectl falls back).
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Root,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`.
    OpenApiV3(String, String),
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
}

/// The parts of a resource path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace from the path, if any.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub plural: String,
    /// Object name, for object paths.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `finalize`).
    pub subresource: Option<String>,
}

/// Parses a request path.
pub fn parse_route(path: &str) -> ApiResult<Route> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<ApiResult<_>>()?;
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let route = match s.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", version] => Route::GroupVersion(String::new(), version.to_string()),
        ["apis", group, version] => Route::GroupVersion(group.to_string(), version.to_string()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", "api", version] => Route::OpenApiV3(String::new(), version.to_string()),
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApiV3(group.to_string(), version.to_string())
        }
        ["api", version, rest @ ..] => Route::Resource(resource_path("", version, rest)?),
        ["apis", group, version, rest @ ..] => {
            Route::Resource(resource_path(group, version, rest)?)
        }
        _ => return Err(ApiError::no_route(path)),
    };
    Ok(route)
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> ApiResult<ResourcePath> {
    let base = ResourcePath {
        group: group.into(),
        version: version.into(),
        ..ResourcePath::default()
    };
    let owned = |s: &&str| Some(s.to_string());
    Ok(match rest {
        // The namespace object itself and its subresources.
        ["namespaces", name] => ResourcePath {
            plural: "namespaces".into(),
            name: owned(name),
            ..base
        },
        ["namespaces", name, sub @ ("status" | "finalize")] => ResourcePath {
            plural: "namespaces".into(),
            name: owned(name),
            subresource: owned(sub),
            ..base
        },
        ["namespaces", ns, plural] => ResourcePath {
            namespace: owned(ns),
            plural: plural.to_string(),
            ..base
        },
        ["namespaces", ns, plural, name] => ResourcePath {
            namespace: owned(ns),
            plural: plural.to_string(),
            name: owned(name),
            ..base
        },
        ["namespaces", ns, plural, name, sub] => ResourcePath {
            namespace: owned(ns),
            plural: plural.to_string(),
            name: owned(name),
            subresource: owned(sub),
            ..base
        },
        [plural] => ResourcePath {
            plural: plural.to_string(),
            ..base
        },
        [plural, name] => ResourcePath {
            plural: plural.to_string(),
            name: owned(name),
            ..base
        },
        [plural, name, sub] => ResourcePath {
            plural: plural.to_string(),
            name: owned(name),
            subresource: owned(sub),
            ..base
        },
        _ => return Err(ApiError::no_route(&format!("/{}", rest.join("/")))),
    })
}

/// Decodes `%XX` escapes (and `+` in query values, see [`parse_query`]).
pub fn percent_decode(text: &str) -> ApiResult<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .map_err(|_| ApiError::bad_request("invalid escape in URL"))?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .map_err(|_| ApiError::bad_request("invalid escape in URL"))?,
                );
                i += 3;
            }
            b'%' => return Err(ApiError::bad_request("invalid escape in URL")),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("URL is not UTF-8"))
}

/// Query parameters gitplane understands. Unknown ones are ignored, as the
/// real server does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `watch=true|1`.
    pub watch: bool,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `fieldValidation`: `Strict`, `Warn` or `Ignore`.
    pub field_validation: Option<String>,
    /// `force` (server-side apply).
    pub force: bool,
    /// `propagationPolicy`.
    pub propagation_policy: Option<String>,
}

/// Parses a query string (`a=b&c=d`, tolerating a leading `&`).
pub fn parse_query(query: Option<&str>) -> ApiResult<Query> {
    let mut q = Query::default();
    let Some(query) = query else { return Ok(q) };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(&value.replace('+', " "))?;
        let flag = value == "true" || value == "1";
        match key {
            "labelSelector" => q.label_selector = Some(value),
            "fieldSelector" => q.field_selector = Some(value),
            "limit" => q.limit = value.parse().ok().filter(|&l: &usize| l > 0),
            "continue" => q.continue_token = Some(value).filter(|v| !v.is_empty()),
            "watch" => q.watch = flag,
            "resourceVersion" => q.resource_version = Some(value).filter(|v| !v.is_empty()),
            "timeoutSeconds" => q.timeout_seconds = value.parse().ok(),
            "allowWatchBookmarks" => q.allow_bookmarks = flag,
            "sendInitialEvents" => q.send_initial_events = flag,
            "dryRun" => {
                if value != "All" {
                    return Err(ApiError::bad_request(format!(
                        "unsupported dryRun value {value:?} (only All is supported)"
                    )));
                }
                q.dry_run = true;
            }
            "fieldManager" => q.field_manager = Some(value),
            "fieldValidation" => q.field_validation = Some(value),
            "force" => q.force = flag,
            "propagationPolicy" => q.propagation_policy = Some(value),
            _ => {}
        }
    }
    Ok(q)
}

/// How the client wants the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// Plain JSON.
    Json,
    /// A `meta.k8s.io/v1` Table (kubectl get).
    Table,
    /// Aggregated discovery (`APIGroupDiscoveryList`).
    AggregatedDiscovery,
}

/// Reads the Accept header.
pub fn wants(accept: Option<&str>) -> Wants {
    let Some(accept) = accept else {
        return Wants::Json;
    };
    // The first acceptable entry wins; kubectl lists its preference first.
    for entry in accept.split(',') {
        let entry = entry.trim();
        if entry.starts_with("application/json") && entry.contains("as=Table") {
            return Wants::Table;
        }
        if entry.starts_with("application/json")
            && entry.contains("as=APIGroupDiscoveryList")
            && entry.contains("v=v2")
            && !entry.contains("v2beta1")
        {
            return Wants::AggregatedDiscovery;
        }
        if entry.starts_with("application/json") || entry.starts_with("*/*") {
            return Wants::Json;
        }
    }
    Wants::Json
}

/// The media type of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Kubernetes protobuf (`k8s\0` envelope).
    Protobuf,
    /// `application/merge-patch+json`.
    MergePatch,
    /// `application/json-patch+json`.
    JsonPatch,
    /// `application/strategic-merge-patch+json`.
    StrategicMergePatch,
    /// `application/apply-patch+yaml` (server-side apply).
    ApplyPatch,
}

/// Reads the Content-Type header.
pub fn body_type(content_type: Option<&str>) -> ApiResult<BodyType> {
    let Some(ct) = content_type else {
        return Ok(BodyType::Json);
    };
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match base.as_str() {
        "" | "application/json" => BodyType::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" => BodyType::ApplyPatch,
        _ => return Err(ApiError::unsupported_media_type(ct)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(path: &str) -> ResourcePath {
        match parse_route(path).unwrap() {
            Route::Resource(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes() {
        assert_eq!(parse_route("/api").unwrap(), Route::CoreVersions);
        assert_eq!(
            parse_route("/apis/apps/v1").unwrap(),
            Route::GroupVersion("apps".into(), "v1".into())
        );
        assert_eq!(
            parse_route("/openapi/v3/apis/apps/v1").unwrap(),
            Route::OpenApiV3("apps".into(), "v1".into())
        );
        let r = rp("/api/v1/namespaces/t1/configmaps/demo");
        assert_eq!(
            (r.namespace.as_deref(), r.plural.as_str(), r.name.as_deref()),
            (Some("t1"), "configmaps", Some("demo"))
        );
        let r = rp("/api/v1/namespaces/t1");
        assert_eq!(
            (r.namespace, r.plural.as_str(), r.name.as_deref()),
            (None, "namespaces", Some("t1"))
        );
        let r = rp("/api/v1/namespaces/t1/finalize");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        let r = rp("/apis/apps/v1/namespaces/d/deployments/web/scale");
        assert_eq!(r.subresource.as_deref(), Some("scale"));
        let r = rp("/apis/apps/v1/deployments");
        assert_eq!((r.namespace, r.name), (None, None));
        assert!(parse_route("/apis/a/b/c/d/e/f/g/h").is_err());
    }

    #[test]
    fn queries_and_media_types() {
        let q = parse_query(Some(
            "&limit=500&fieldSelector=metadata.name%3Ddemo&watch=true&labelSelector=a+in+(b)",
        ))
        .unwrap();
        assert_eq!(q.limit, Some(500));
        assert_eq!(q.field_selector.as_deref(), Some("metadata.name=demo"));
        assert_eq!(q.label_selector.as_deref(), Some("a in (b)"));
        assert!(q.watch);
        assert!(parse_query(Some("dryRun=Something")).is_err());
        assert_eq!(
            wants(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            )),
            Wants::Table
        );
        assert_eq!(
            wants(Some(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            )),
            Wants::AggregatedDiscovery
        );
        assert_eq!(wants(None), Wants::Json);
        assert_eq!(
            body_type(Some("application/apply-patch+yaml")).unwrap(),
            BodyType::ApplyPatch
        );
        assert!(body_type(Some("text/plain")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(path in "(/[a-z0-9.%~-]{0,12}){0,9}", query in "[a-z=&%0-9,.!()]{0,40}", content_type in "[a-z/+;= -]{0,40}") {
            let _ = parse_route(&path);
            let _ = parse_query(Some(&query));
            let _ = percent_decode(&query);
            let _ = body_type(Some(&content_type));
            let _ = wants(Some(&content_type));
        }
    }
}
