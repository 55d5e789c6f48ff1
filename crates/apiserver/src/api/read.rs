//! `get` and `list`: label and field selectors, `limit` / `continue` pagination.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use gitplane_object::LabelSelector;
use serde_json::Value;

use super::{Api, Target};
use crate::error::{ApiError, ApiResult};

/// How to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// The objects.
    pub items: Vec<Arc<Value>>,
    /// The revision the list is consistent with.
    pub revision: u64,
    /// Token for the next page, if any.
    pub continue_token: Option<String>,
    /// How many objects the next pages hold.
    pub remaining: Option<usize>,
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value` terms.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    terms: Vec<(Vec<String>, bool, String)>,
}

impl FieldSelector {
    /// Parses the string form.
    pub fn parse(text: &str) -> ApiResult<Self> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: {term:?}"
                )));
            };
            terms.push((
                path.trim().split('.').map(str::to_string).collect(),
                equal,
                value.trim().to_string(),
            ));
        }
        Ok(FieldSelector { terms })
    }

    /// True when every term holds.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(path, equal, wanted)| {
            let mut node = object;
            for field in path {
                match node.get(field) {
                    Some(next) => node = next,
                    // A missing field reads as the empty string.
                    None => return *equal == wanted.is_empty(),
                }
            }
            let actual = match node {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *wanted) == *equal
        })
    }
}

/// Label and field selectors together.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Selectors {
    /// From the query parameters.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> ApiResult<Self> {
        Ok(Selectors {
            labels: labels
                .map(LabelSelector::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request(e.to_string()))?
                .unwrap_or_default(),
            fields: fields
                .map(FieldSelector::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// True if the object matches both.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(
            object
                .pointer("/metadata/labels")
                .and_then(Value::as_object),
        ) && self.fields.matches(object)
    }
}

impl Api {
    /// One object.
    pub fn get(&self, target: &Target, name: &str) -> ApiResult<Arc<Value>> {
        self.store
            .get(&target.key(name))
            .ok_or_else(|| ApiError::not_found(target.subject(name)))
    }

    /// A list (all namespaces when the target has none).
    pub fn list(&self, target: &Target, options: &ListOptions) -> ApiResult<ListResult> {
        let selectors = Selectors::parse(
            options.label_selector.as_deref(),
            options.field_selector.as_deref(),
        )?;
        let prefix = match &target.namespace {
            Some(ns) if target.resource.namespaced => {
                format!("{}{ns}/", target.resource.key_prefix())
            }
            _ => target.resource.key_prefix(),
        };
        let after = match &options.continue_token {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let mut items = Vec::new();
        let mut last_key = None;
        let mut rest = 0;
        let revision = self.store.scan(&prefix, after.as_deref(), |key, object| {
            if selectors.matches(object) {
                if options.limit.is_some_and(|l| items.len() >= l) {
                    rest += 1;
                } else {
                    items.push(object.clone());
                    last_key = Some(key.to_string());
                }
            }
            std::ops::ControlFlow::Continue(())
        });
        // More matched than fit the page: hand out a token for the next one.
        let (continue_token, remaining) = if rest > 0 {
            (last_key.map(|k| TOKEN.encode(k.as_bytes())), Some(rest))
        } else {
            (None, None)
        };
        Ok(ListResult {
            items,
            revision,
            continue_token,
            remaining,
        })
    }
}

fn decode_continue(token: &str) -> ApiResult<String> {
    TOKEN
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("invalid continue token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors() {
        let o =
            json!({"metadata": {"name": "a", "namespace": "x"}, "status": {"phase": "Running"}});
        assert!(FieldSelector::parse("metadata.name=a").unwrap().matches(&o));
        assert!(
            FieldSelector::parse("metadata.name==a,metadata.namespace=x")
                .unwrap()
                .matches(&o)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .unwrap()
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("status.phase=Running")
                .unwrap()
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("spec.nodeName!=n1")
                .unwrap()
                .matches(&o)
        );
        assert!(FieldSelector::parse("bad").is_err());
    }
}
