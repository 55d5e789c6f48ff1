//! Push webhooks: GitHub, Gitea, GitLab and a generic `{repoURL, revision}`.
//! Payloads are hostile: bounded in size, parsed strictly into the few fields
//! used, and authenticated by a shared secret when one is configured
//! (GitHub/Gitea HMAC-SHA256 signatures, GitLab's token, `X-Gitplane-Token`).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Bodies larger than this are refused unread.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Why a webhook was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Over [`MAX_BODY_BYTES`].
    #[error("payload larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Missing or wrong signature or token.
    #[error("signature or token missing or wrong")]
    Unauthorized,
    /// Not a payload this endpoint understands.
    #[error("bad payload: {0}")]
    BadPayload(String),
}

/// What a push names: the repository URLs (all the forms the payload gives)
/// and the ref or revision, if given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Push {
    /// URLs of the repository.
    pub urls: Vec<String>,
    /// `refs/heads/main` or a revision.
    pub revision: Option<String>,
}

#[derive(Deserialize)]
struct GitHubRepo {
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    clone_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
}

#[derive(Deserialize)]
struct GitHubPush {
    #[serde(rename = "ref", default)]
    reference: Option<String>,
    repository: GitHubRepo,
}

#[derive(Deserialize)]
struct GitLabProject {
    #[serde(default)]
    git_http_url: Option<String>,
    #[serde(default)]
    git_ssh_url: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
}

#[derive(Deserialize)]
struct GitLabPush {
    #[serde(rename = "ref", default)]
    reference: Option<String>,
    project: GitLabProject,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GenericPush {
    #[serde(rename = "repoURL")]
    repo_url: String,
    #[serde(default)]
    revision: Option<String>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hmac_matches(secret: &str, body: &[u8], hex_signature: &str) -> bool {
    let Ok(expected) = decode_hex(hex_signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(text: &str) -> Result<Vec<u8>, ()> {
    if !text.len().is_multiple_of(2) {
        return Err(());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or(())?, 16).map_err(|_| ()))
        .collect()
}

fn strict<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| WebhookError::BadPayload(e.to_string()))
}

/// Authenticates and parses a push. `Ok(None)` for events that are not
/// pushes (a GitHub `ping`, for example).
pub fn parse_push(
    headers: &[(String, String)],
    body: &[u8],
    secret: Option<&str>,
) -> Result<Option<Push>, WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    if let Some(event) = header(headers, "X-GitHub-Event").or(header(headers, "X-Gitea-Event")) {
        if let Some(secret) = secret {
            let signature = header(headers, "X-Hub-Signature-256")
                .and_then(|s| s.strip_prefix("sha256="))
                .or(header(headers, "X-Gitea-Signature"))
                .ok_or(WebhookError::Unauthorized)?;
            if !hmac_matches(secret, body, signature) {
                return Err(WebhookError::Unauthorized);
            }
        }
        if event != "push" {
            return Ok(None);
        }
        let push: GitHubPush = strict(body)?;
        let r = push.repository;
        return Ok(Some(Push {
            urls: [r.html_url, r.clone_url, r.ssh_url]
                .into_iter()
                .flatten()
                .collect(),
            revision: push.reference,
        }));
    }
    if let Some(event) = header(headers, "X-Gitlab-Event") {
        if let Some(secret) = secret {
            let token = header(headers, "X-Gitlab-Token").ok_or(WebhookError::Unauthorized)?;
            if !constant_time_eq(token.as_bytes(), secret.as_bytes()) {
                return Err(WebhookError::Unauthorized);
            }
        }
        if event != "Push Hook" && event != "Tag Push Hook" {
            return Ok(None);
        }
        let push: GitLabPush = strict(body)?;
        let p = push.project;
        return Ok(Some(Push {
            urls: [p.git_http_url, p.git_ssh_url, p.web_url]
                .into_iter()
                .flatten()
                .collect(),
            revision: push.reference,
        }));
    }
    if let Some(secret) = secret {
        let token = header(headers, "X-Gitplane-Token").ok_or(WebhookError::Unauthorized)?;
        if !constant_time_eq(token.as_bytes(), secret.as_bytes()) {
            return Err(WebhookError::Unauthorized);
        }
    }
    let push: GenericPush = strict(body)?;
    if push.repo_url.is_empty() {
        return Err(WebhookError::BadPayload("repoURL is empty".into()));
    }
    Ok(Some(Push {
        urls: vec![push.repo_url],
        revision: push.revision,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    const GITHUB: &str = r#"{"ref":"refs/heads/main","repository":{"html_url":"https://github.com/acme/platform","clone_url":"https://github.com/acme/platform.git","ssh_url":"git@github.com:acme/platform.git","extra":1},"commits":[]}"#;

    #[test]
    fn github_pushes_are_signed() {
        let body = GITHUB.as_bytes();
        let good = format!("sha256={}", sign("s3cret", body));
        let h = headers(&[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &good)]);
        let push = parse_push(&h, body, Some("s3cret"))
            .ok()
            .flatten()
            .unwrap_or_default();
        assert_eq!(push.urls.len(), 3);
        assert_eq!(push.revision.as_deref(), Some("refs/heads/main"));
        let bad = headers(&[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", "sha256=00"),
        ]);
        assert_eq!(
            parse_push(&bad, body, Some("s3cret")),
            Err(WebhookError::Unauthorized)
        );
        let none = headers(&[("X-GitHub-Event", "push")]);
        assert_eq!(
            parse_push(&none, body, Some("s3cret")),
            Err(WebhookError::Unauthorized)
        );
        let ping = headers(&[("X-GitHub-Event", "ping")]);
        assert_eq!(parse_push(&ping, b"{}", None), Ok(None));
    }

    #[test]
    fn gitlab_and_generic_pushes_use_tokens() {
        let body =
            br#"{"ref":"refs/heads/main","project":{"git_http_url":"https://gitlab.com/a/b.git"}}"#;
        let h = headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "t")]);
        assert!(parse_push(&h, body, Some("t")).is_ok_and(|p| p.is_some()));
        assert_eq!(
            parse_push(&h, body, Some("u")),
            Err(WebhookError::Unauthorized)
        );
        let generic = br#"{"repoURL":"file:///tmp/repo","revision":"main"}"#;
        let push = parse_push(&[], generic, None)
            .ok()
            .flatten()
            .unwrap_or_default();
        assert_eq!(push.urls, ["file:///tmp/repo"]);
        assert!(parse_push(&[], br#"{"repoURL":"x","evil":1}"#, None).is_err());
    }

    #[test]
    fn hostile_bodies_are_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_push(&[], &big, None), Err(WebhookError::TooLarge));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_push(&[], deep.as_bytes(), None).is_err());
        for junk in [
            &b""[..],
            b"null",
            b"{\"repoURL\": 5}",
            b"\xff\xfe",
            b"{\"repoURL\":\"\"}",
        ] {
            assert!(parse_push(&[], junk, None).is_err(), "{junk:?}");
        }
        // Arbitrary bytes never panic.
        let mut seed = 7u64;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            let _ = parse_push(&headers(&[("X-GitHub-Event", "push")]), &bytes, None);
            let _ = parse_push(&[], &bytes, None);
        }
    }
}
