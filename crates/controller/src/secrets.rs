//! Repository credentials and destination clusters, from Secrets in the
//! control namespace labelled as Argo CD labels them.

use base64::Engine;
use gitplane_cluster::{Cluster, ClusterError, ConnectOptions};
use gitplane_object::Object;
use gitplane_source::Credentials;
use serde_json::{Value, json};

/// The label that says what a Secret is for.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// A Secret's `data` (base64) or `stringData` entry as text.
fn secret_field(secret: &Object, key: &str) -> Option<String> {
    if let Some(text) = secret.str_at(&["stringData", key]) {
        return Some(text.to_string());
    }
    let encoded = secret.str_at(&["data", key])?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Secrets of one type in the control namespace.
async fn secrets_of_type(
    cluster: &Cluster,
    namespace: &str,
    types: &str,
) -> Result<Vec<Object>, ClusterError> {
    let Some(info) = cluster.preferred("", "Secret") else {
        return Ok(Vec::new());
    };
    let selector = format!("{SECRET_TYPE_LABEL} in ({types})");
    cluster.list(&info, Some(namespace), Some(&selector)).await
}

/// Compares repository URLs the way people write them: scheme, case of the
/// host, a trailing `.git` or `/` do not matter; scp-style `git@host:path`
/// equals `ssh://git@host/path`.
pub fn normalize_repo_url(url: &str) -> String {
    let mut text = url.trim().to_string();
    if !text.contains("://")
        && let Some((user_host, path)) = text.split_once(':')
        && !user_host.contains('/')
    {
        text = format!("ssh://{user_host}/{path}");
    }
    let without_scheme = text
        .split_once("://")
        .map_or(text.as_str(), |(_, rest)| rest);
    let without_user = without_scheme
        .split_once('@')
        .filter(|(user, _)| !user.contains('/'))
        .map_or(without_scheme, |(_, rest)| rest);
    let (host, path) = without_user.split_once('/').unwrap_or((without_user, ""));
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    format!("{}/{}", host.to_ascii_lowercase(), path)
}

/// Credentials for `url`: a `repository` Secret with that URL, else the
/// `repo-creds` Secret whose URL is the longest prefix of it.
pub async fn repository_credentials(
    cluster: &Cluster,
    namespace: &str,
    url: &str,
) -> Result<Credentials, ClusterError> {
    if url.starts_with('/') || url.starts_with("file://") {
        return Ok(Credentials::default());
    }
    let secrets = secrets_of_type(cluster, namespace, "repository,repo-creds").await?;
    let wanted = normalize_repo_url(url);
    let exact = secrets.iter().find(|s| {
        s.label(SECRET_TYPE_LABEL) == Some("repository")
            && secret_field(s, "url").is_some_and(|u| normalize_repo_url(&u) == wanted)
    });
    let template = || {
        secrets
            .iter()
            .filter(|s| s.label(SECRET_TYPE_LABEL) == Some("repo-creds"))
            .filter_map(|s| secret_field(s, "url").map(|u| (u, s)))
            .filter(|(u, _)| url.starts_with(u.as_str()))
            .max_by_key(|(u, _)| u.len())
            .map(|(_, s)| s)
    };
    Ok(match exact.or_else(template) {
        Some(secret) => Credentials {
            username: secret_field(secret, "username"),
            password: secret_field(secret, "password"),
            ssh_private_key: secret_field(secret, "sshPrivateKey"),
            insecure: secret_field(secret, "insecure").as_deref() == Some("true"),
            client_cert: secret_field(secret, "tlsClientCertData")
                .zip(secret_field(secret, "tlsClientCertKey")),
            ca_certs: None,
        },
        None => Credentials::default(),
    })
}

/// Credentials for a Helm repository or OCI registry: the repository's,
/// with the certificates `argocd-tls-certs-cm` trusts for its host (read
/// only for charts: Git fetches do not use them).
pub async fn chart_repository_credentials(
    cluster: &Cluster,
    namespace: &str,
    url: &str,
) -> Result<Credentials, ClusterError> {
    let mut credentials = repository_credentials(cluster, namespace, url).await?;
    credentials.ca_certs = trusted_certificates(cluster, namespace, url).await?;
    Ok(credentials)
}

/// The PEM certificates Argo CD's `argocd-tls-certs-cm` ConfigMap trusts
/// for `url`'s host (its key is the host name, without a port).
async fn trusted_certificates(
    cluster: &Cluster,
    namespace: &str,
    url: &str,
) -> Result<Option<String>, ClusterError> {
    let normalized = normalize_repo_url(url);
    let host = normalized.split('/').next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let gvk = gitplane_object::Gvk::new("", "v1", "ConfigMap");
    let Some(config) = cluster.get(&gvk, namespace, TLS_CERTS_CONFIG_MAP).await? else {
        return Ok(None);
    };
    Ok(config.str_at(&["data", name]).map(str::to_string))
}

/// Argo CD's ConfigMap of trusted TLS certificates, by host name.
pub const TLS_CERTS_CONFIG_MAP: &str = "argocd-tls-certs-cm";

/// A destination cluster from its Secret: its server URL, name and a
/// kubeconfig built from `config` (bearer token, basic auth, TLS). Exec and
/// cloud credential plugins run programs on the host: refused (Flux
/// CVE-2022-24817).
pub fn cluster_kubeconfig(secret: &Object) -> Result<(String, String, Value), String> {
    let server = secret_field(secret, "server")
        .ok_or_else(|| format!("cluster Secret {}: no server", secret.name()))?;
    let name = secret_field(secret, "name").unwrap_or_else(|| server.clone());
    let config: Value = match secret_field(secret, "config") {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| format!("cluster Secret {}: config: {e}", secret.name()))?,
        None => json!({}),
    };
    for plugin in ["execProviderConfig", "awsAuthConfig"] {
        if config.get(plugin).is_some_and(|v| !v.is_null()) {
            return Err(format!(
                "cluster Secret {}: {plugin} runs a program on the gitplane host and is refused",
                secret.name()
            ));
        }
    }
    let tls = config.get("tlsClientConfig").cloned().unwrap_or_default();
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": server,
            "insecure-skip-tls-verify": tls.get("insecure").and_then(Value::as_bool),
            "certificate-authority-data": text(&tls, "caData"),
            "tls-server-name": text(&tls, "serverName"),
        }}],
        "users": [{"name": "u", "user": {
            "token": text(&config, "bearerToken"),
            "username": text(&config, "username"),
            "password": text(&config, "password"),
            "client-certificate-data": text(&tls, "certData"),
            "client-key-data": text(&tls, "keyData"),
        }}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    });
    Ok((server, name, strip_nulls(kubeconfig)))
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Connects to the cluster a destination names, from the cluster Secrets.
pub async fn connect_destination(
    control: &Cluster,
    namespace: &str,
    server: &str,
    name: &str,
) -> Result<Cluster, String> {
    let secrets = secrets_of_type(control, namespace, "cluster")
        .await
        .map_err(|e| e.to_string())?;
    for secret in &secrets {
        let (secret_server, secret_name, kubeconfig) = match cluster_kubeconfig(secret) {
            Ok(found) => found,
            Err(e) if secret_field(secret, "server").as_deref() == Some(server) => return Err(e),
            Err(_) => continue,
        };
        if (!server.is_empty() && secret_server == server)
            || (server.is_empty() && secret_name == name)
        {
            let kubeconfig = serde_json::from_value(kubeconfig).map_err(|e| e.to_string())?;
            return Cluster::from_kubeconfig(kubeconfig, &ConnectOptions::default())
                .await
                .map_err(|e| format!("cluster {secret_name}: {e}"));
        }
    }
    Err(format!(
        "there is no cluster Secret for {} (label {SECRET_TYPE_LABEL}=cluster)",
        if server.is_empty() { name } else { server }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_as_people_mean_them() {
        let same = [
            "https://GitHub.com/acme/platform.git",
            "https://github.com/acme/platform",
            "git@github.com:acme/platform.git",
            "ssh://git@github.com/acme/platform/",
        ];
        for url in same {
            assert_eq!(normalize_repo_url(url), "github.com/acme/platform", "{url}");
        }
        assert_ne!(
            normalize_repo_url("https://github.com/acme/platform-x"),
            normalize_repo_url("https://github.com/acme/platform")
        );
    }

    fn secret(data: Value) -> Object {
        let encoded: serde_json::Map<String, Value> = data
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (
                    k.clone(),
                    base64::engine::general_purpose::STANDARD
                        .encode(text)
                        .into(),
                )
            })
            .collect();
        let mut object = Object::with_type("v1", "Secret", "c1");
        object.set(&["data"], Value::Object(encoded));
        object
    }

    #[test]
    fn exec_plugins_in_cluster_secrets_are_refused() {
        let bad = secret(json!({
            "server": "https://example.com",
            "config": json!({"execProviderConfig": {"command": "sh"}}).to_string()
        }));
        let error = cluster_kubeconfig(&bad).err().unwrap_or_default();
        assert!(error.contains("execProviderConfig"), "{error}");
        let good = secret(json!({
            "server": "https://example.com", "name": "prod",
            "config": json!({"bearerToken": "t", "tlsClientConfig": {"insecure": true}}).to_string()
        }));
        let (server, name, kubeconfig) = cluster_kubeconfig(&good).unwrap_or_default();
        assert_eq!(
            (server.as_str(), name.as_str()),
            ("https://example.com", "prod")
        );
        assert_eq!(kubeconfig["users"][0]["user"]["token"], "t");
        assert!(kubeconfig["users"][0]["user"].get("password").is_none());
    }
}
