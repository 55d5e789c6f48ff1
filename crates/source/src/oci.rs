//! Charts from OCI registries (`oci://registry/path` + `chart`), as
//! `helm pull oci://…` gets them through the distribution API: the version
//! is a tag (`+` written `_`, as Helm pushes it) or a semver range chosen
//! from the repository's tags, the manifest names the chart layer
//! (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`), and the layer
//! is downloaded once, its digest checked, and kept with the other pulled
//! charts. A registry that answers 401 is asked again with a bearer token
//! from the realm its `WWW-Authenticate` header names (with the
//! repository's credentials, if any, as basic auth) or with basic auth.
//!
//! HTTPS is used, except for a registry on a loopback address
//! (`localhost`, `127.0.0.1`, `[::1]`), which is reached over plain HTTP.

use std::path::Path;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::Credentials;
use crate::charts::{
    MAX_CHART_BYTES, PulledChart, highest_matching, http_client, read_limited, store_archive,
};

/// Largest manifest or tag list read.
const MAX_DOCUMENT_BYTES: u64 = 4 << 20;
/// Most pages of tags followed.
const MAX_TAG_PAGES: usize = 100;
/// The media types of a chart layer (current, and what Helm 3.0 pushed).
const CHART_LAYERS: [&str; 2] = [
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    "application/tar+gzip",
];
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pulls `chart` at `version` (a tag, or a range over the tags) from the
/// registry repository `repo_url` (`oci://host/path`), into `dir`.
pub fn pull(
    repo_url: &str,
    chart: &str,
    version: &str,
    credentials: &Credentials,
    dir: &Path,
) -> Result<PulledChart, String> {
    let mut registry = Registry::new(repo_url, chart, credentials)?;
    let tag = registry.tag(version)?;
    let manifest = registry.get_json(&format!("manifests/{}", tag.replace('+', "_")), MANIFEST)?;
    let (digest, size) = chart_layer(&manifest)?;
    if size > MAX_CHART_BYTES {
        return Err(format!(
            "{tag}: the chart layer is {size} bytes, more than {MAX_CHART_BYTES}"
        ));
    }
    let pulled = PulledChart::cached(tag.clone(), digest.clone(), dir.to_path_buf());
    if dir.join(&pulled.file_name).is_file() {
        return Ok(pulled);
    }
    let bytes = registry.get(&format!("blobs/sha256:{digest}"), "*/*", MAX_CHART_BYTES)?;
    let actual = format!("{:x}", Sha256::digest(&bytes));
    if actual != digest {
        return Err(format!(
            "{tag}: the chart layer's digest is sha256:{actual}, not the manifest's sha256:{digest}"
        ));
    }
    store_archive(dir, &digest, &bytes)?;
    Ok(pulled)
}

/// The chart layer's sha256 (hex) and size, from an image manifest.
fn chart_layer(manifest: &Json) -> Result<(String, u64), String> {
    let layer = manifest
        .get("layers")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .find(|l| {
            l.get("mediaType")
                .and_then(Json::as_str)
                .is_some_and(|m| CHART_LAYERS.contains(&m))
        })
        .ok_or("the manifest has no Helm chart layer (is this a chart?)")?;
    let digest = layer
        .get("digest")
        .and_then(Json::as_str)
        .and_then(|d| d.strip_prefix("sha256:"))
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("the chart layer has no sha256 digest")?;
    let size = layer.get("size").and_then(Json::as_u64).unwrap_or(0);
    Ok((digest.to_ascii_lowercase(), size))
}

/// `oci://host/path` split into the registry's base URL and the path.
fn parse_url(repo_url: &str) -> Result<(String, String), String> {
    let rest = repo_url
        .strip_prefix("oci://")
        .ok_or("an OCI repository URL starts with oci://")?
        .trim_end_matches('/');
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:[]".contains(&b))
    };
    if !valid(host) {
        return Err(format!("{repo_url}: no registry host"));
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let scheme = if matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        "http"
    } else {
        "https"
    };
    Ok((format!("{scheme}://{host}"), path.to_string()))
}

/// One repository of a registry, and the token it gave, if any.
struct Registry<'a> {
    base: String,
    repository: String,
    credentials: &'a Credentials,
    client: reqwest::blocking::Client,
    token: Option<String>,
}

impl<'a> Registry<'a> {
    fn new(repo_url: &str, chart: &str, credentials: &'a Credentials) -> Result<Self, String> {
        let (base, path) = parse_url(repo_url)?;
        let valid_part = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        let repository = [path.as_str(), chart]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        if !repository.split('/').all(valid_part) {
            return Err(format!("{repository:?} is not a valid OCI repository name"));
        }
        let client = http_client(credentials)?;
        Ok(Registry {
            base,
            repository,
            credentials,
            client,
            token: None,
        })
    }

    /// The tag to pull: `version` itself when it is a tag, else the highest
    /// tag in the range.
    fn tag(&mut self, version: &str) -> Result<String, String> {
        let exact = !version.is_empty()
            && version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
            && gitplane_gotemplate::semver::Version::parse(version).is_ok();
        if exact {
            return Ok(version.to_string());
        }
        let tags = self.tags()?;
        highest_matching(&tags, String::as_str, version)?
            .cloned()
            .ok_or_else(|| format!("no tag of {} matches {version:?}", self.repository))
    }

    /// Every tag of the repository (`_` read as `+`), page after page.
    fn tags(&mut self) -> Result<Vec<String>, String> {
        let mut tags = Vec::new();
        let mut next = Some("tags/list".to_string());
        for _ in 0..MAX_TAG_PAGES {
            let Some(path) = next.take() else {
                return Ok(tags);
            };
            let (bytes, link) = self.request(&path, "application/json", MAX_DOCUMENT_BYTES)?;
            let page: Json = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{path}: not a tag list: {e}"))?;
            tags.extend(
                page.get("tags")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .map(|t| t.replace('_', "+")),
            );
            next = link.and_then(|l| next_page(&l, &self.repository));
        }
        Err(format!(
            "{}: more than {MAX_TAG_PAGES} pages of tags",
            self.repository
        ))
    }

    fn get_json(&mut self, path: &str, accept: &str) -> Result<Json, String> {
        let bytes = self.get(path, accept, MAX_DOCUMENT_BYTES)?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{path}: not JSON: {e}"))
    }

    fn get(&mut self, path: &str, accept: &str, limit: u64) -> Result<Vec<u8>, String> {
        self.request(path, accept, limit).map(|(bytes, _)| bytes)
    }

    /// GET `/v2/<repository>/<path>`, authenticating once on a 401; the
    /// body and the `Link` header.
    fn request(
        &mut self,
        path: &str,
        accept: &str,
        limit: u64,
    ) -> Result<(Vec<u8>, Option<String>), String> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        let mut response = self.send(&url, accept)?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            self.authenticate(&challenge)?;
            response = self.send(&url, accept)?;
        }
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url}: {status}"));
        }
        let link = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((read_limited(response, &url, limit)?, link))
    }

    fn send(&self, url: &str, accept: &str) -> Result<reqwest::blocking::Response, String> {
        let mut request = self.client.get(url).header(reqwest::header::ACCEPT, accept);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        } else if let Some(user) = &self.credentials.username {
            request = request.basic_auth(user, self.credentials.password.as_deref());
        }
        request.send().map_err(|e| format!("{url}: {e}"))
    }

    /// Answers a `WWW-Authenticate` challenge: a bearer token from the
    /// realm, or basic auth (already sent when there are credentials).
    fn authenticate(&mut self, challenge: &str) -> Result<(), String> {
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(format!(
                "{}: the registry refused the {} (401)",
                self.repository,
                if self.credentials.username.is_some() {
                    "credentials"
                } else {
                    "anonymous request; a repository Secret with credentials is needed"
                }
            ));
        };
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or("the registry's bearer challenge has no realm")?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(format!(
                "the registry's token realm {realm:?} is not http(s)"
            ));
        }
        let query: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let url = reqwest::Url::parse_with_params(&realm, &query)
            .map_err(|e| format!("the registry's token realm {realm:?}: {e}"))?;
        let mut request = self.client.get(url);
        if let Some(user) = &self.credentials.username {
            request = request.basic_auth(user, self.credentials.password.as_deref());
        }
        let response = request.send().map_err(|e| format!("{realm}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "{realm}: no token for {}: {status}",
                self.repository
            ));
        }
        let body: Json =
            serde_json::from_slice(&read_limited(response, &realm, MAX_DOCUMENT_BYTES)?)
                .map_err(|e| format!("{realm}: not a token response: {e}"))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Json::as_str)
            .ok_or_else(|| format!("{realm}: the response holds no token"))?;
        self.token = Some(token.to_string());
        Ok(())
    }
}

/// `key="value"` pairs of a challenge (`realm="…",service="…"`).
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.push((key, value.to_string()));
        rest = tail.trim_start_matches(',').trim();
    }
    params
}

/// The next page of a tag list from a `Link: <…?last=x&n=y>; rel="next"`
/// header, as a path under the repository (only links into the same
/// repository's tag list are followed).
fn next_page(link: &str, repository: &str) -> Option<String> {
    let target = link.split_once('<')?.1.split_once('>')?.0;
    if !link.contains("rel=\"next\"") {
        return None;
    }
    let path = target
        .split_once("://")
        .map_or(target, |(_, r)| r.split_once('/').map_or("", |(_, p)| p));
    let path = path.trim_start_matches('/');
    let prefix = format!("v2/{repository}/");
    let rest = path.strip_prefix(&prefix)?;
    rest.starts_with("tags/list").then(|| rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_registry_and_path() {
        assert_eq!(
            parse_url("oci://ghcr.io/org/charts/").unwrap(),
            ("https://ghcr.io".into(), "org/charts".into())
        );
        assert_eq!(
            parse_url("oci://127.0.0.1:5000").unwrap(),
            ("http://127.0.0.1:5000".into(), String::new())
        );
        assert!(parse_url("https://ghcr.io/x").is_err());
        assert!(parse_url("oci:///x").is_err());
        let anonymous = Credentials::default();
        assert!(Registry::new("oci://r.example/a/../b", "web", &anonymous).is_err());
        assert!(Registry::new("oci://r.example/a", "We b", &anonymous).is_err());
        assert_eq!(
            Registry::new("oci://r.example/a", "web", &anonymous)
                .unwrap()
                .repository,
            "a/web"
        );
    }

    #[test]
    fn challenges_and_links_are_read() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/web:pull""#
            ),
            [
                (
                    "realm".to_string(),
                    "https://auth.example/token".to_string()
                ),
                ("service".to_string(), "registry.example".to_string()),
                ("scope".to_string(), "repository:a/web:pull".to_string()),
            ]
        );
        assert_eq!(
            next_page(
                r#"</v2/a/web/tags/list?last=1.0.0&n=2>; rel="next""#,
                "a/web"
            ),
            Some("tags/list?last=1.0.0&n=2".into())
        );
        assert_eq!(
            next_page(r#"</v2/other/tags/list?last=x>; rel="next""#, "a/web"),
            None
        );
    }

    #[test]
    fn the_chart_layer_is_found_and_its_digest_checked() {
        let digest = "ab".repeat(32);
        let manifest = serde_json::json!({"layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:00", "size": 1},
            {"mediaType": CHART_LAYERS[0], "digest": format!("sha256:{digest}"), "size": 42},
        ]});
        assert_eq!(chart_layer(&manifest).unwrap(), (digest, 42));
        let hostile = serde_json::json!({"layers": [
            {"mediaType": CHART_LAYERS[0], "digest": "sha256:../../etc/passwd", "size": 1},
        ]});
        assert!(chart_layer(&hostile).is_err());
        assert!(chart_layer(&serde_json::json!({})).is_err());
    }
}
