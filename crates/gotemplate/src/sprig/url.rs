//! `urlParse` and `urlJoin`, as Sprig writes them over Go's `net/url`:
//! `urlParse` gives `scheme`, `host`, `hostname`, `path` (unescaped),
//! `query` (raw), `opaque`, `fragment` (unescaped) and `userinfo`;
//! `urlJoin` puts such a dict back together as `URL.String()` does.

use std::collections::BTreeMap;

use super::{Plain, exactly, string, wrong_type};
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[("urlParse", url_parse), ("urlJoin", url_join)];

/// The parts of a URL, as Go's `url.URL` holds them.
#[derive(Debug, Default, PartialEq)]
struct Url {
    scheme: String,
    opaque: String,
    userinfo: String,
    host: String,
    path: String,
    query: String,
    fragment: String,
}

fn url_parse(args: &[Value]) -> Result<Value, String> {
    let text = string(&exactly::<1>("urlParse", args)?[0])?;
    let url = parse(text).map_err(|e| format!("unable to parse url: parse {text:?}: {e}"))?;
    let hostname = hostname(&url.host).to_string();
    let entries: BTreeMap<String, Value> = [
        ("scheme", url.scheme),
        ("host", url.host),
        ("hostname", hostname),
        ("path", url.path),
        ("query", url.query),
        ("opaque", url.opaque),
        ("fragment", url.fragment),
        ("userinfo", url.userinfo),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Value::string(v)))
    .collect();
    Ok(Value::map(entries))
}

fn url_join(args: &[Value]) -> Result<Value, String> {
    let [dict] = exactly::<1>("urlJoin", args)?;
    let Value::Map(dict) = dict else {
        return Err(wrong_type("map[string]interface {}", dict));
    };
    let field = |key: &str| {
        dict.get(key)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let url = Url {
        scheme: field("scheme"),
        opaque: field("opaque"),
        userinfo: field("userinfo"),
        host: field("host"),
        path: field("path"),
        query: field("query"),
        fragment: field("fragment"),
    };
    Ok(Value::string(to_string(&url)))
}

/// Go's `url.Parse`, for absolute and relative references.
fn parse(text: &str) -> Result<Url, String> {
    if text.chars().any(|c| c.is_ascii_control()) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = Url::default();
    let (rest, fragment) = text.split_once('#').unwrap_or((text, ""));
    url.fragment = unescape(fragment)?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    url.query = query.to_string();
    let mut rest = rest;
    if let Some((scheme, after)) = rest.split_once(':')
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        url.scheme = scheme.to_ascii_lowercase();
        rest = after;
        if !rest.starts_with('/') {
            url.opaque = rest.to_string();
            return Ok(url);
        }
    }
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        rest = &after[end..];
        let host = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                url.userinfo = userinfo.to_string();
                host
            }
            None => authority,
        };
        url.host = unescape(host)?;
    }
    url.path = unescape(rest)?;
    Ok(url)
}

/// The host without its port (and an IPv6 address without brackets).
fn hostname(host: &str) -> &str {
    if let Some(inner) = host.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    host.split(':').next().unwrap_or(host)
}

/// Go's `URL.String()`.
fn to_string(url: &Url) -> String {
    let mut out = String::new();
    if !url.scheme.is_empty() {
        out.push_str(&url.scheme);
        out.push(':');
    }
    if !url.opaque.is_empty() {
        out.push_str(&url.opaque);
    } else {
        let user = !url.userinfo.is_empty();
        if !url.scheme.is_empty() || !url.host.is_empty() || user {
            if !url.host.is_empty() || !url.path.is_empty() || user {
                out.push_str("//");
            }
            if user {
                out.push_str(&url.userinfo);
                out.push('@');
            }
            out.push_str(&url.host);
        }
        let path = escape(&url.path, |c| {
            c.is_ascii_alphanumeric() || "-._~/:@!$&'()*+,;=".contains(c)
        });
        if !path.is_empty() && !path.starts_with('/') && !url.host.is_empty() {
            out.push('/');
        }
        if out.is_empty() && path.split('/').next().is_some_and(|s| s.contains(':')) {
            out.push_str("./");
        }
        out.push_str(&path);
    }
    if !url.query.is_empty() {
        out.push('?');
        out.push_str(&url.query);
    }
    if !url.fragment.is_empty() {
        out.push('#');
        out.push_str(&escape(&url.fragment, |c| {
            c.is_ascii_alphanumeric() || "-._~/:@!$&'()*+,;=?".contains(c)
        }));
    }
    out
}

/// Percent-decodes (`%2F` → `/`).
fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!(
                        "invalid URL escape {:?}",
                        text.get(i..(i + 3).min(text.len())).unwrap_or("%")
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// Percent-encodes every byte `keep` does not allow.
fn escape(text: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && keep(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::render_for_test;

    #[test]
    fn parse_and_join_as_sprig() {
        let parsed = render_for_test(
            r#"{{ $u := urlParse "https://user:pw@example.com:8443/a%20b/c?x=1&y=2#top" }}{{ $u.scheme }}|{{ $u.host }}|{{ $u.hostname }}|{{ $u.path }}|{{ $u.query }}|{{ $u.fragment }}|{{ $u.userinfo }}|{{ $u.opaque }}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            "https|example.com:8443|example.com|/a b/c|x=1&y=2|top|user:pw|"
        );
        assert_eq!(
            render_for_test(r#"{{ urlJoin (dict "scheme" "https" "host" "example.com" "path" "/a b" "query" "x=1" "fragment" "f") }}"#)
                .unwrap(),
            "https://example.com/a%20b?x=1#f"
        );
        assert_eq!(
            render_for_test(r#"{{ (urlParse "mailto:ops@example.com").opaque }}"#).unwrap(),
            "ops@example.com"
        );
        assert_eq!(
            render_for_test(r#"{{ urlJoin (urlParse "http://u@h/p?q#f") }}"#).unwrap(),
            "http://u@h/p?q#f"
        );
        assert!(render_for_test(r#"{{ urlParse "http://h/%zz" }}"#).is_err());
    }
}
