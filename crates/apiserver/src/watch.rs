//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`,
//! `DELETED`, `BOOKMARK`, `ERROR`), resumable from any revision still in the
//! store's change log. A revision that has been compacted gets one in-stream
//! `ERROR` event with a 410 `Expired` Status, as the real server sends it, so
//! clients re-list.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::{Api, Target, read::Selectors};
use crate::error::{ApiError, ApiResult};
use crate::ssa::Served;
use crate::store::{Event, EventKind};
use crate::table;

/// How a watch starts and behaves.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// `resourceVersion`: `None` or `"0"` start with the current objects.
    pub resource_version: Option<String>,
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`: the current objects, then a bookmark marking their end.
    pub initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Each event's object as a one-row Table (`kubectl get -w`).
    pub table: bool,
}

/// How often bookmarks are sent.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

/// Starts a watch; the returned channel yields the stream's lines.
pub fn start(
    api: &Api,
    target: &Target,
    options: WatchOptions,
) -> ApiResult<mpsc::Receiver<Bytes>> {
    let selectors = Selectors::parse(
        options.label_selector.as_deref(),
        options.field_selector.as_deref(),
    )?;
    let prefix = match &target.namespace {
        Some(ns) if target.resource.namespaced => format!("{}{ns}/", target.resource.key_prefix()),
        _ => target.resource.key_prefix(),
    };
    let from: Option<u64> = match options.resource_version.as_deref() {
        None | Some("0") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel(256);
    let (initial, backlog, live) = match from {
        Some(rv) if !options.initial_events => {
            let (backlog, live) = api.store.watch(&prefix, rv);
            (Vec::new(), backlog, live)
        }
        _ => {
            let (_, live) = api.store.watch(&prefix, api.store.revision());
            let (items, revision) = api.store.list(&prefix);
            let initial = items
                .into_iter()
                .map(|(key, object)| {
                    Arc::new(Event::new(revision, EventKind::Added, key, object, None))
                })
                .collect();
            (initial, Some(Vec::new()), live)
        }
    };
    let stream = Stream {
        target: target.clone(),
        prefix,
        selectors,
        options,
        store_revision: api.store.revision(),
    };
    tokio::spawn(stream.run(tx, initial, backlog, live, api.store.clone()));
    Ok(rx)
}

struct Stream {
    target: Target,
    prefix: String,
    selectors: Selectors,
    options: WatchOptions,
    store_revision: u64,
}

impl Stream {
    async fn run(
        mut self,
        tx: mpsc::Sender<Bytes>,
        initial: Vec<Arc<Event>>,
        backlog: Option<Vec<Arc<Event>>>,
        mut live: broadcast::Receiver<Arc<Event>>,
        store: crate::store::Store,
    ) {
        let Some(backlog) = backlog else {
            let compacted = store.compacted_revision();
            let rv = self.options.resource_version.clone().unwrap_or_default();
            let status = ApiError::expired(format!("too old resource version: {rv} ({compacted})"))
                .to_status();
            let _ = tx
                .send(line(json!({"type": "ERROR", "object": status})))
                .await;
            return;
        };
        let mut sent_up_to = 0;
        for event in initial.iter().chain(backlog.iter()) {
            sent_up_to = sent_up_to.max(event.revision);
            if !self.send(&tx, event).await {
                return;
            }
        }
        if self.options.initial_events {
            let bookmark = self.bookmark(store.revision(), true);
            if tx.send(bookmark).await.is_err() {
                return;
            }
        }
        let deadline = self
            .options
            .timeout
            .map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            let timeout = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) => {
                        if event.revision <= sent_up_to {
                            continue;
                        }
                        sent_up_to = event.revision;
                        self.store_revision = event.revision;
                        if !self.send(&tx, &event).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the live stream: catch up from the
                        // change log, or (if it no longer reaches back that
                        // far) end with 410 so the client re-lists.
                        let (backlog, fresh) = store.watch(&self.prefix, sent_up_to);
                        let Some(backlog) = backlog else {
                            let status = ApiError::expired("the watch fell behind; re-list and watch again").to_status();
                            let _ = tx.send(line(json!({"type": "ERROR", "object": status}))).await;
                            return;
                        };
                        live = fresh;
                        for event in &backlog {
                            sent_up_to = event.revision;
                            self.store_revision = event.revision;
                            if !self.send(&tx, event).await {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if self.options.bookmarks => {
                    let bookmark = self.bookmark(store.revision().max(self.store_revision), false);
                    if tx.send(bookmark).await.is_err() {
                        return;
                    }
                }
                () = timeout => return,
                () = tx.closed() => return,
            }
        }
    }

    /// What a change looks like through this watch's selectors, as the real
    /// server's watch cache shows it: an object that starts matching is
    /// ADDED, one that stops matching is DELETED (as it was), others pass
    /// through or are not for this watch.
    fn view<'e>(&self, event: &'e Event) -> Option<(&'static str, &'e Value)> {
        if !event.key.starts_with(&self.prefix) {
            return None;
        }
        let matches = |object: &Value| self.selectors.matches(object);
        match (event.kind, &event.previous) {
            (EventKind::Modified, Some(previous)) => {
                match (matches(previous), matches(&event.object)) {
                    (true, true) => Some(("MODIFIED", &event.object)),
                    (false, true) => Some(("ADDED", &event.object)),
                    (true, false) => Some(("DELETED", previous)),
                    (false, false) => None,
                }
            }
            (kind, _) => matches(&event.object).then_some((kind.as_str(), &event.object)),
        }
    }

    /// Sends one event if it is for this watch; false when the client is gone.
    async fn send(&self, tx: &mpsc::Sender<Bytes>, event: &Event) -> bool {
        let Some((kind, object)) = self.view(event) else {
            return true;
        };
        let as_stored = kind == event.kind.as_str()
            && !self.options.table
            && self.target.version == self.target.resource.version();
        if as_stored {
            // Every watch of the kind sends the same line: encoded once.
            let encoded = event
                .encoded
                .get_or_init(|| encode_line(kind, &event.object))
                .clone();
            return tx.send(encoded).await.is_ok();
        }
        let mut object = self.target.present(object).into_owned();
        if kind == "DELETED" && event.kind == EventKind::Modified {
            // The object as it was, at the revision it left the selection.
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("resourceVersion".into(), json!(event.revision.to_string()));
            }
        }
        let object = if self.options.table {
            table::table(&self.target.resource, &[Arc::new(object)], None, None)
        } else {
            object
        };
        tx.send(encode_line(kind, &object)).await.is_ok()
    }

    fn bookmark(&self, revision: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let api_version = self.target.resource.api_version(&self.target.version);
        line(
            json!({"type": "BOOKMARK", "object": {"kind": self.target.resource.kind, "apiVersion": api_version, "metadata": metadata}}),
        )
    }
}

/// `{"type": kind, "object": object}` and a newline, without copying the
/// object.
fn encode_line(kind: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: Served<'a>,
    }
    let object = Served(object);
    let mut bytes = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn line(value: Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}
