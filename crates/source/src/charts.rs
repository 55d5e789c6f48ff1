//! Charts from Helm chart repositories (`index.yaml` over HTTP(S), or an
//! OCI registry: [`crate::oci`]), as
//! Argo CD's `repoURL` + `chart` + `targetRevision` name them: the version
//! is an exact version or a semver range (the highest match wins; empty is
//! the latest stable one). Pulled archives are kept once per digest under
//! `<cache>/charts/` and shared by every application; an index is fetched
//! again only after `max_age`. No `helm dependency build` is ever run:
//! archives carry their dependencies, and the renderer reads them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gitplane_gotemplate::semver::{Constraint, Version};
use gitplane_object::yaml::{Dialect, Limits, parse_documents};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::{Credentials, SourceError, Sources, fetch_error};

/// Largest `index.yaml` read (large public repositories are tens of MiB).
const MAX_INDEX_BYTES: u64 = 128 << 20;
/// Largest chart archive downloaded.
pub(crate) const MAX_CHART_BYTES: u64 = 100 << 20;
/// Connect and read timeout of one request.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A chart pulled from a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledChart {
    /// The version chosen.
    pub version: String,
    /// The archive's sha256 (hex).
    pub digest: String,
    /// The directory holding the archive (`<cache>/charts`).
    pub dir: PathBuf,
    /// The archive's file name in `dir`.
    pub file_name: String,
}

impl PulledChart {
    /// The chart kept as `<dir>/<digest>.tgz`.
    pub(crate) fn cached(version: String, digest: String, dir: PathBuf) -> Self {
        let file_name = format!("{digest}.tgz");
        PulledChart {
            version,
            digest,
            dir,
            file_name,
        }
    }
}

/// Writes a pulled archive as `<dir>/<digest>.tgz`, whole or not at all.
pub(crate) fn store_archive(dir: &Path, digest: &str, bytes: &[u8]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let file_name = format!("{digest}.tgz");
    let partial = dir.join(format!("{file_name}.partial"));
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, dir.join(&file_name)))
        .map_err(|e| e.to_string())
}

impl Sources {
    /// Pulls `chart` at `version` (exact or a range) from the repository at
    /// `repo_url`, reusing an index fetched less than `max_age` ago and an
    /// archive already pulled. A URL without a scheme names an OCI
    /// registry, as Argo CD's `enableOCI` repositories write it. Blocking;
    /// `interrupt` stops between requests.
    pub fn pull_chart(
        &self,
        repo_url: &str,
        chart: &str,
        version: &str,
        credentials: &Credentials,
        max_age: Duration,
        interrupt: &AtomicBool,
    ) -> Result<PulledChart, SourceError> {
        let error = |e: String| fetch_error(repo_url, &format!("{chart} {version}"), e);
        if !repo_url.contains("://") || repo_url.starts_with("oci://") {
            if interrupt.load(Ordering::Relaxed) {
                return Err(error("interrupted".into()));
            }
            let oci_url = format!("oci://{}", repo_url.trim_start_matches("oci://"));
            return self
                .pull_oci_chart(&oci_url, chart, version, credentials, max_age)
                .map_err(error);
        }
        if !(repo_url.starts_with("https://") || repo_url.starts_with("http://")) {
            return Err(error(
                "a chart repository URL is http(s)://, oci:// or an OCI registry's host/path"
                    .into(),
            ));
        }
        let index = self.index(repo_url, credentials, max_age).map_err(error)?;
        let entry = choose(&index, chart, version).map_err(error)?;
        let chosen = entry
            .get("version")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let url = entry
            .get("urls")
            .and_then(Json::as_array)
            .and_then(|u| u.first())
            .and_then(Json::as_str)
            .ok_or_else(|| error(format!("{chart} {chosen}: the index gives no URL")))?;
        let url = absolute(repo_url, url);
        let expected = entry
            .get("digest")
            .and_then(Json::as_str)
            .map(str::to_ascii_lowercase);
        let dir = self.dir.join("charts");
        std::fs::create_dir_all(&dir).map_err(|e| error(e.to_string()))?;
        if let Some(digest) = &expected {
            let pulled = PulledChart::cached(chosen.clone(), digest.clone(), dir.clone());
            if pulled.dir.join(&pulled.file_name).is_file() {
                return Ok(pulled);
            }
        }
        if interrupt.load(Ordering::Relaxed) {
            return Err(error("interrupted".into()));
        }
        // Credentials go only to the repository's own host (as Helm without
        // passCredentials); its TLS settings apply to every download.
        let tls_only = credentials.tls_only();
        let sent = if host(&url) == host(repo_url) {
            credentials
        } else {
            &tls_only
        };
        let bytes = get(&url, sent, MAX_CHART_BYTES).map_err(error)?;
        let digest = format!("{:x}", Sha256::digest(&bytes));
        if let Some(expected) = &expected
            && *expected != digest
        {
            return Err(error(format!(
                "{url}: digest sha256:{digest} is not the index's sha256:{expected}"
            )));
        }
        store_archive(&dir, &digest, &bytes).map_err(error)?;
        Ok(PulledChart::cached(chosen, digest, dir))
    }

    /// Pulls from an OCI registry, reusing what the same request resolved
    /// less than `max_age` ago (while its archive is still in the cache).
    fn pull_oci_chart(
        &self,
        repo_url: &str,
        chart: &str,
        version: &str,
        credentials: &Credentials,
        max_age: Duration,
    ) -> Result<PulledChart, String> {
        let key = format!("{repo_url}\n{chart}\n{version}");
        let recent = self
            .oci_pulls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|(at, pulled)| {
                at.elapsed() < max_age && pulled.dir.join(&pulled.file_name).is_file()
            })
            .map(|(_, pulled)| pulled.clone());
        if let Some(pulled) = recent {
            return Ok(pulled);
        }
        let pulled = crate::oci::pull(
            repo_url,
            chart,
            version,
            credentials,
            &self.dir.join("charts"),
        )?;
        self.oci_pulls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (Instant::now(), pulled.clone()));
        Ok(pulled)
    }

    /// The repository's index, from memory if fetched less than `max_age` ago.
    fn index(
        &self,
        repo_url: &str,
        credentials: &Credentials,
        max_age: Duration,
    ) -> Result<Json, String> {
        let key = repo_url.trim_end_matches('/').to_string();
        if let Some((at, index)) = self
            .indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < max_age
        {
            return Ok(index.clone());
        }
        let bytes = get(&format!("{key}/index.yaml"), credentials, MAX_INDEX_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|_| "index.yaml is not UTF-8".to_string())?;
        let limits = Limits {
            max_bytes: MAX_INDEX_BYTES as usize,
            max_depth: 64,
            ..Limits::default()
        };
        let index = parse_documents(&text, Dialect::Kubernetes, &limits)
            .map_err(|e| format!("index.yaml: line {}: {}", e.line, e.message))?
            .into_iter()
            .next()
            .map(|d| d.value)
            .ok_or("index.yaml is empty")?;
        self.indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (Instant::now(), index.clone()));
        Ok(index)
    }
}

/// The index entry of `chart` for `version`: the exact version if one
/// matches, else the highest in the range (stable versions only for an
/// empty range, as Helm).
fn choose<'a>(index: &'a Json, chart: &str, version: &str) -> Result<&'a Json, String> {
    let entries = index
        .pointer(&format!(
            "/entries/{}",
            chart.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Json::as_array)
        .ok_or_else(|| format!("chart {chart:?} not found in the repository"))?;
    fn version_of(e: &Json) -> &str {
        e.get("version").and_then(Json::as_str).unwrap_or("")
    }
    if let Some(exact) = entries.iter().find(|e| {
        let v = version_of(e);
        !version.is_empty() && (v == version || v.strip_prefix('v') == Some(version))
    }) {
        return Ok(exact);
    }
    highest_matching(entries, version_of, version)?
        .ok_or_else(|| format!("no version of chart {chart:?} matches {version:?}"))
}

/// The item with the highest version in the range `version` (empty: the
/// highest stable version), as Helm picks one; items whose version is not
/// semver are passed over.
pub(crate) fn highest_matching<'a, T>(
    items: &'a [T],
    version_of: impl Fn(&T) -> &str,
    version: &str,
) -> Result<Option<&'a T>, String> {
    let constraint = if version.is_empty() { "*" } else { version };
    let constraint =
        Constraint::parse(constraint).map_err(|e| format!("targetRevision {version:?}: {e}"))?;
    Ok(items
        .iter()
        .filter_map(|e| Version::parse(version_of(e)).ok().map(|v| (v, e)))
        .filter(|(v, _)| constraint.matches(v))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, e)| e))
}

/// A chart URL from the index, made absolute against the repository.
fn absolute(repo_url: &str, url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!(
            "{}/{}",
            repo_url.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

pub(crate) fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// GET with basic auth, refusing more than `limit` bytes.
fn get(url: &str, credentials: &Credentials, limit: u64) -> Result<Vec<u8>, String> {
    let mut request = http_client(credentials)?.get(url);
    if let Some(user) = &credentials.username {
        request = request.basic_auth(user, credentials.password.as_deref());
    }
    let response = request.send().map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: {status}"));
    }
    read_limited(response, url, limit)
}

/// A client with the repository's TLS settings (trusted CAs, a client
/// certificate, or none checked) and the request timeout. Errors never
/// quote the PEM they were given.
pub(crate) fn http_client(credentials: &Credentials) -> Result<reqwest::blocking::Client, String> {
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .danger_accept_invalid_certs(credentials.insecure);
    if let Some(pem) = &credentials.ca_certs {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|_| "the repository's CA certificates are not PEM certificates")?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some((cert, key)) = &credentials.client_cert {
        let identity = reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
            .map_err(|_| "the repository's client certificate and key are not PEM")?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| e.to_string())
}

/// A response's body, refusing more than `limit` bytes.
pub(crate) fn read_limited(
    response: reqwest::blocking::Response,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{url}: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{url}: larger than {limit} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Json {
        serde_json::json!({"entries": {"web": [
            {"version": "1.2.0", "urls": ["web-1.2.0.tgz"]},
            {"version": "1.10.0", "urls": ["https://cdn.example/web-1.10.0.tgz"]},
            {"version": "2.0.0-rc.1", "urls": ["web-2.0.0-rc.1.tgz"]},
            {"version": "0.9.0", "urls": ["web-0.9.0.tgz"]},
        ]}})
    }

    fn chosen(version: &str) -> Result<String, String> {
        let index = index();
        choose(&index, "web", version).map(|e| e["version"].as_str().unwrap().to_string())
    }

    #[test]
    fn versions_are_chosen_as_helm_chooses_them() {
        assert_eq!(chosen(""), Ok("1.10.0".into()));
        assert_eq!(chosen("1.2.0"), Ok("1.2.0".into()));
        assert_eq!(chosen("1.x"), Ok("1.10.0".into()));
        assert_eq!(chosen("~1.2"), Ok("1.2.0".into()));
        assert_eq!(chosen(">=2.0.0-0"), Ok("2.0.0-rc.1".into()));
        assert!(chosen("3.x").unwrap_err().contains("no version"));
        assert!(
            choose(&index(), "nope", "")
                .unwrap_err()
                .contains("not found")
        );
    }

    #[test]
    fn chart_urls_are_resolved_against_the_repository() {
        assert_eq!(
            absolute("https://r.example/charts/", "web-1.2.0.tgz"),
            "https://r.example/charts/web-1.2.0.tgz"
        );
        assert_eq!(
            absolute("https://r.example", "https://cdn.example/x.tgz"),
            "https://cdn.example/x.tgz"
        );
        assert_eq!(host("https://r.example:8443/a/b"), "r.example:8443");
    }
}
