//! The durable store: every object and a bounded log of recent changes.
//!
//! Objects live in memory (a sorted map keyed `group/resource/namespace/name`)
//! and on disk in redb. A write is applied to memory under a lock, given the next
//! revision (the global counter that is every object's `resourceVersion`), and
//! handed to a single writer thread that commits batches of writes in one
//! transaction (group commit) and acknowledges each write only once it is on
//! disk. The writer then publishes the changes to watchers, in revision order.
//! After `kill -9`, every acknowledged write is on disk and nothing is half
//! written: redb transactions are atomic.
//!
//! The change log keeps the last `log_limit` events, in memory and on disk, so a
//! watch can resume from any revision still in it, also after a restart; older
//! revisions are "compacted" and a watch from them gets 410 Expired.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use crate::error::{ApiError, ApiResult};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted; the object is its last state.
    Deleted,
}

impl EventKind {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "ADDED" => Some(EventKind::Added),
            "MODIFIED" => Some(EventKind::Modified),
            "DELETED" => Some(EventKind::Deleted),
            _ => None,
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The revision the change was given.
    pub revision: u64,
    /// Added, modified or deleted.
    pub kind: EventKind,
    /// The storage key.
    pub key: String,
    /// The object after the change (before it, for a deletion).
    pub object: Arc<Value>,
    /// For a modification, the object before it, when known (a log read back
    /// from disk knows it only for keys changed earlier in the log). Watches
    /// with selectors need it to see objects move in and out of the selection.
    pub previous: Option<Arc<Value>>,
    /// The event as a watch sends it (`{"type", "object"}` and a newline),
    /// encoded once for every watch that sends it unchanged.
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
}

impl Event {
    /// An event.
    pub fn new(
        revision: u64,
        kind: EventKind,
        key: String,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) -> Self {
        Event {
            revision,
            kind,
            key,
            object,
            previous,
            encoded: std::sync::OnceLock::new(),
        }
    }
}

/// How a write is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Everything but storing it.
    DryRun,
    /// Stored, and on disk before the write returns.
    Durable,
    /// Stored; on disk shortly after (with the next group commit). For the
    /// built-in controllers, whose writes can be derived again: they do not
    /// wait for the disk one write at a time.
    Queued,
}

/// What an update function decides to do with an object.
pub enum Decision {
    /// Store this object (its `resourceVersion` is set by the store).
    Put(Value),
    /// Delete the object.
    Delete,
    /// Leave it as it is (a no-op write: no new revision, no event).
    Keep,
}

/// The result of an update.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The object now (for a deletion: its last state).
    pub object: Option<Arc<Value>>,
    /// What happened, or `None` for a no-op.
    pub kind: Option<EventKind>,
}

struct Write {
    event: Arc<Event>,
    /// The object as stored (`None`: deleted).
    bytes: Option<Arc<[u8]>>,
    /// The change log's record of the event.
    record: Vec<u8>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// One change in the in-memory log, kept compact: the object as JSON bytes
/// (decoded again only for a watch that resumes from an older revision), so
/// the log does not pin every past version of every object in memory.
struct Logged {
    revision: u64,
    kind: EventKind,
    key: String,
    object: Arc<[u8]>,
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    revision: u64,
    log: VecDeque<Logged>,
    /// The newest revision whose event is no longer in the log.
    compacted: u64,
}

/// The events of the log after `after`, decoded; each modification's
/// previous version is the one logged before it, when the log has it. Only
/// the events asked for, and one earlier version per key, are decoded.
fn decode_events(log: &VecDeque<Logged>, prefix: &str, after: u64) -> Vec<Arc<Event>> {
    let start = log.partition_point(|l| l.revision <= after);
    let decode = |l: &Logged| {
        serde_json::from_slice::<Value>(&l.object)
            .ok()
            .map(Arc::new)
    };
    let mut latest: HashMap<&str, Option<Arc<Value>>> = HashMap::new();
    let mut events = Vec::new();
    for logged in log.range(start..).filter(|l| l.key.starts_with(prefix)) {
        let Some(object) = decode(logged) else {
            continue;
        };
        let previous = match logged.kind {
            EventKind::Modified => latest
                .entry(logged.key.as_str())
                .or_insert_with(|| {
                    log.range(..start)
                        .rev()
                        .find(|l| l.key == logged.key)
                        .and_then(decode)
                })
                .clone(),
            _ => None,
        };
        latest.insert(&logged.key, Some(object.clone()));
        events.push(Arc::new(Event::new(
            logged.revision,
            logged.kind,
            logged.key.clone(),
            object,
            previous,
        )));
    }
    events
}

/// The change log's record of an event: `{"type", "key", "object"}`, built
/// around the object's bytes without encoding it again.
fn log_record(kind: EventKind, key: &str, object: &[u8]) -> Result<Vec<u8>, String> {
    let key = serde_json::to_string(key).map_err(storage_error)?;
    let mut record = Vec::with_capacity(object.len() + key.len() + 40);
    record.extend_from_slice(b"{\"type\":\"");
    record.extend_from_slice(kind.as_str().as_bytes());
    record.extend_from_slice(b"\",\"key\":");
    record.extend_from_slice(key.as_bytes());
    record.extend_from_slice(b",\"object\":");
    record.extend_from_slice(object);
    record.push(b'}');
    Ok(record)
}

/// The store. Cheap to clone; all clones share the same state.
#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    writer: Arc<Mutex<Option<mpsc::Sender<Write>>>>,
    writer_thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    events: broadcast::Sender<Arc<Event>>,
    log_limit: usize,
}

fn storage_error(e: impl std::fmt::Display) -> String {
    format!("storage: {e}")
}

impl Store {
    /// Opens (or creates) the store in `path`, keeping `log_limit` recent events.
    pub fn open(path: &Path, log_limit: usize) -> Result<Store, String> {
        // Every object is also held in memory (`State`), so redb's page
        // cache only serves writes: its 1 GiB default would only grow RSS.
        let db = redb::Builder::new()
            .set_cache_size(4 << 20)
            .create(path)
            .map_err(storage_error)?;
        let (objects, revision, log) = load(&db)?;
        let compacted = log.front().map_or(revision, |e| e.revision - 1);
        let state = Arc::new(Mutex::new(State {
            objects,
            revision,
            log,
            compacted,
        }));
        // Watchers further behind than this catch up from the change log;
        // each slot pins an event's objects until it is overwritten.
        let (events, _) = broadcast::channel(4_096);
        let (writer, rx) = mpsc::channel::<Write>();
        let publisher = events.clone();
        let limit = log_limit as u64;
        let thread = std::thread::Builder::new()
            .name("gitplane-store-writer".into())
            .spawn(move || write_loop(db, rx, publisher, limit))
            .map_err(storage_error)?;
        Ok(Store {
            state,
            writer: Arc::new(Mutex::new(Some(writer))),
            writer_thread: Arc::new(Mutex::new(Some(thread))),
            events,
            log_limit: log_limit.max(1),
        })
    }

    /// Stops accepting writes, waits for pending ones to reach the disk and
    /// closes the database (so it can be opened again, by this process or another).
    pub fn close(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; keep serving what is there.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current revision.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// The oldest revision a watch can still start from.
    pub fn compacted_revision(&self) -> u64 {
        self.lock().compacted
    }

    /// One object.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.lock().objects.get(key).cloned()
    }

    /// Every object whose key starts with `prefix`, in key order, and the revision
    /// the list is consistent with.
    pub fn list(&self, prefix: &str) -> (Vec<(String, Arc<Value>)>, u64) {
        let mut items = Vec::new();
        let revision = self.scan(prefix, None, |key, object| {
            items.push((key.to_string(), object.clone()));
            std::ops::ControlFlow::Continue(())
        });
        (items, revision)
    }

    /// Visits the objects under a key prefix in key order, starting after
    /// `after`, until `visit` breaks; returns the revision they are current at.
    /// Nothing is copied: pagination over a large prefix stays cheap.
    pub fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        mut visit: impl FnMut(&str, &Arc<Value>) -> std::ops::ControlFlow<()>,
    ) -> u64 {
        use std::ops::Bound;
        let state = self.lock();
        let start = match after {
            Some(key) if key >= prefix => Bound::Excluded(key.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        for (key, object) in state
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if visit(key, object).is_break() {
                break;
            }
        }
        state.revision
    }

    /// Subscribes to changes; also returns the logged events under the key
    /// `prefix` after revision `events_after` (or `None` if they have been
    /// compacted). Only those events are decoded: a watch of one kind that
    /// resumes never pays for the others' changes.
    pub fn watch(
        &self,
        prefix: &str,
        events_after: u64,
    ) -> (Option<Vec<Arc<Event>>>, broadcast::Receiver<Arc<Event>>) {
        let state = self.lock();
        // Subscribe under the lock so no event falls between the backlog and the stream.
        let rx = self.events.subscribe();
        if events_after < state.compacted {
            return (None, rx);
        }
        (Some(decode_events(&state.log, prefix, events_after)), rx)
    }

    /// Reads `key`, lets `decide` choose what to do, and (unless a dry run)
    /// applies and persists the decision; a durable commit waits until the
    /// write is on disk.
    pub async fn update(
        &self,
        key: &str,
        commit: Commit,
        decide: impl FnOnce(Option<&Arc<Value>>) -> ApiResult<Decision>,
    ) -> ApiResult<Outcome> {
        let dry_run = commit == Commit::DryRun;
        let (outcome, ack) = {
            let mut state = self.lock();
            let current = state.objects.get(key).cloned();
            let decision = decide(current.as_ref())?;
            let (kind, object) = match (decision, &current) {
                (Decision::Keep, _) => {
                    return Ok(Outcome {
                        object: current,
                        kind: None,
                    });
                }
                (Decision::Delete, None) => {
                    return Ok(Outcome {
                        object: None,
                        kind: None,
                    });
                }
                (Decision::Delete, Some(old)) => (EventKind::Deleted, old.as_ref().clone()),
                (Decision::Put(object), None) => (EventKind::Added, object),
                (Decision::Put(object), Some(_)) => (EventKind::Modified, object),
            };
            if dry_run {
                return Ok(Outcome {
                    object: Some(Arc::new(object)),
                    kind: Some(kind),
                });
            }
            state.revision += 1;
            let revision = state.revision;
            let mut object = object;
            set_resource_version(&mut object, revision);
            let object = Arc::new(exact_capacity(object));
            let previous = match kind {
                EventKind::Modified => state.objects.get(key).cloned(),
                _ => None,
            };
            let encoded: Arc<[u8]> = serde_json::to_vec(object.as_ref())
                .map_err(|e| ApiError::internal(e.to_string()))?
                .into();
            let bytes = match kind {
                EventKind::Deleted => {
                    state.objects.remove(key);
                    None
                }
                _ => {
                    state.objects.insert(key.to_string(), object.clone());
                    Some(encoded.clone())
                }
            };
            let record = log_record(kind, key, &encoded).map_err(ApiError::internal)?;
            let event = Arc::new(Event::new(
                revision,
                kind,
                key.to_string(),
                object.clone(),
                previous,
            ));
            state.log.push_back(Logged {
                revision,
                kind,
                key: key.to_string(),
                object: encoded,
            });
            while state.log.len() > self.log_limit {
                if let Some(dropped) = state.log.pop_front() {
                    state.compacted = dropped.revision;
                }
            }
            let (ack, done) = oneshot::channel();
            // Sent under the lock so the writer sees writes in revision order.
            let writer = self
                .writer
                .lock()
                .map_err(|_| ApiError::internal("storage writer stopped"))?;
            writer
                .as_ref()
                .ok_or_else(|| ApiError::internal("the store is closed"))?
                .send(Write {
                    event,
                    bytes,
                    record,
                    ack,
                })
                .map_err(|_| ApiError::internal("storage writer stopped"))?;
            (
                Outcome {
                    object: Some(object),
                    kind: Some(kind),
                },
                done,
            )
        };
        if commit == Commit::Queued {
            return Ok(outcome);
        }
        match ack.await {
            Ok(Ok(())) => Ok(outcome),
            Ok(Err(e)) => Err(ApiError::internal(e)),
            Err(_) => Err(ApiError::internal("storage writer stopped")),
        }
    }
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(object: &mut Value, revision: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

/// The object rebuilt with every map and list holding exactly its entries.
/// Decoding and editing grow them by doubling, so a kept object would carry
/// a third more than it holds (measured on a simulated Pod: 21.6 KB as
/// decoded, 13.8 KB rebuilt); the store keeps every object for its lifetime.
fn exact_capacity(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut exact = serde_json::Map::with_capacity(map.len());
            for (key, value) in map {
                exact.insert(key, exact_capacity(value));
            }
            Value::Object(exact)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(exact_capacity)
                .collect::<Box<[Value]>>()
                .into_vec(),
        ),
        other => other,
    }
}

type Loaded = (BTreeMap<String, Arc<Value>>, u64, VecDeque<Logged>);

fn load(db: &Database) -> Result<Loaded, String> {
    // Create the tables on first start.
    let tx = db.begin_write().map_err(storage_error)?;
    tx.open_table(OBJECTS).map_err(storage_error)?;
    tx.open_table(EVENTS).map_err(storage_error)?;
    tx.open_table(META).map_err(storage_error)?;
    tx.commit().map_err(storage_error)?;

    let tx = db.begin_read().map_err(storage_error)?;
    let revision = tx
        .open_table(META)
        .map_err(storage_error)?
        .get(REVISION)
        .map_err(storage_error)?
        .map(|v| v.value())
        .unwrap_or(0);
    let mut objects = BTreeMap::new();
    for entry in tx
        .open_table(OBJECTS)
        .map_err(storage_error)?
        .iter()
        .map_err(storage_error)?
    {
        let (key, value) = entry.map_err(storage_error)?;
        let object: Value = serde_json::from_slice(value.value()).map_err(storage_error)?;
        objects.insert(key.value().to_string(), Arc::new(exact_capacity(object)));
    }
    let mut log = VecDeque::new();
    for entry in tx
        .open_table(EVENTS)
        .map_err(storage_error)?
        .iter()
        .map_err(storage_error)?
    {
        let (revision, value) = entry.map_err(storage_error)?;
        let record: Value = serde_json::from_slice(value.value()).map_err(storage_error)?;
        let kind = record["type"]
            .as_str()
            .and_then(EventKind::parse)
            .ok_or("storage: bad event record")?;
        let key = record["key"]
            .as_str()
            .ok_or("storage: bad event record")?
            .to_string();
        let object = serde_json::to_vec(&record["object"]).map_err(storage_error)?;
        log.push_back(Logged {
            revision: revision.value(),
            kind,
            key,
            object: object.into(),
        });
    }
    Ok((objects, revision, log))
}

fn write_loop(
    db: Database,
    rx: mpsc::Receiver<Write>,
    events: broadcast::Sender<Arc<Event>>,
    log_limit: u64,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = commit_batch(&db, &batch, log_limit);
        for write in batch {
            let ok = result.is_ok();
            let _ = write.ack.send(result.clone());
            if ok {
                let _ = events.send(write.event);
            }
        }
    }
}

fn commit_batch(db: &Database, batch: &[Write], log_limit: u64) -> Result<(), String> {
    let mut tx = db.begin_write().map_err(storage_error)?;
    tx.set_durability(Durability::Immediate)
        .map_err(storage_error)?;
    let mut newest = 0;
    {
        let mut objects = tx.open_table(OBJECTS).map_err(storage_error)?;
        let mut log = tx.open_table(EVENTS).map_err(storage_error)?;
        for write in batch {
            let event = &write.event;
            match &write.bytes {
                Some(bytes) => {
                    objects
                        .insert(event.key.as_str(), &bytes[..])
                        .map_err(storage_error)?;
                }
                None => {
                    objects.remove(event.key.as_str()).map_err(storage_error)?;
                }
            }
            log.insert(event.revision, write.record.as_slice())
                .map_err(storage_error)?;
            newest = newest.max(event.revision);
        }
        if newest > log_limit {
            log.retain_in(..=newest - log_limit, |_, _| false)
                .map_err(storage_error)?;
        }
        tx.open_table(META)
            .map_err(storage_error)?
            .insert(REVISION, newest)
            .map_err(storage_error)?;
    }
    tx.commit().map_err(storage_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    }

    #[tokio::test]
    async fn writes_survive_reopening_and_keep_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let store = Store::open(&path, 100).unwrap();
            for name in ["a", "b", "c"] {
                let out = store
                    .update(
                        &format!("/configmaps/default/{name}"),
                        Commit::Durable,
                        |_| Ok(Decision::Put(cm(name))),
                    )
                    .await
                    .unwrap();
                assert_eq!(out.kind, Some(EventKind::Added));
            }
            store
                .update("/configmaps/default/b", Commit::Durable, |_| {
                    Ok(Decision::Delete)
                })
                .await
                .unwrap();
            assert_eq!(store.revision(), 4);
            store.close();
        }
        let store = Store::open(&path, 100).unwrap();
        assert_eq!(store.revision(), 4);
        let (items, rev) = store.list("/configmaps/default/");
        assert_eq!(rev, 4);
        let names: Vec<_> = items
            .iter()
            .map(|(_, v)| v["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(items[1].1["metadata"]["resourceVersion"], "3");
        let (backlog, _) = store.watch("", 1);
        let kinds: Vec<_> = backlog
            .unwrap()
            .iter()
            .map(|e| (e.revision, e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (2, EventKind::Added),
                (3, EventKind::Added),
                (4, EventKind::Deleted)
            ]
        );
    }

    #[tokio::test]
    async fn stored_lists_hold_exactly_their_items() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), 100).unwrap();
        let mut object = cm("a");
        let mut grown = Vec::with_capacity(64);
        grown.extend([json!({"ports": Vec::<Value>::with_capacity(32)}), json!(1)]);
        object["items"] = Value::Array(grown);
        let out = store
            .update("/configmaps/default/a", Commit::Durable, |_| {
                Ok(Decision::Put(object.clone()))
            })
            .await
            .unwrap();
        let stored = out.object.unwrap();
        assert_eq!(*stored, {
            let mut expected = object;
            expected["metadata"]["resourceVersion"] = json!("1");
            expected
        });
        assert_eq!(stored["items"].as_array().unwrap().capacity(), 2);
        assert_eq!(
            stored["items"][0]["ports"].as_array().unwrap().capacity(),
            0
        );
    }

    #[tokio::test]
    async fn a_resumed_watch_sees_each_change_with_the_version_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), 100).unwrap();
        for value in ["1", "2", "3"] {
            let mut object = cm("a");
            object["data"] = json!({"v": value});
            store
                .update("/configmaps/default/a", Commit::Durable, |_| {
                    Ok(Decision::Put(object))
                })
                .await
                .unwrap();
        }
        let (backlog, _) = store.watch("", 2);
        let backlog = backlog.unwrap();
        assert_eq!(backlog.len(), 1);
        let event = &backlog[0];
        assert_eq!((event.revision, event.kind), (3, EventKind::Modified));
        assert_eq!(event.object["data"]["v"], "3");
        // The version before it, though it is older than the watch's start.
        assert_eq!(event.previous.as_ref().unwrap()["data"]["v"], "2");
    }

    #[tokio::test]
    async fn no_op_and_dry_run_do_not_bump_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), 100).unwrap();
        store
            .update("k", Commit::Durable, |_| Ok(Decision::Put(cm("a"))))
            .await
            .unwrap();
        store
            .update("k", Commit::Durable, |_| Ok(Decision::Keep))
            .await
            .unwrap();
        let out = store
            .update("k", Commit::DryRun, |_| Ok(Decision::Put(cm("b"))))
            .await
            .unwrap();
        assert_eq!(out.object.unwrap()["metadata"]["name"], "b");
        assert_eq!(store.revision(), 1);
        assert_eq!(store.get("k").unwrap()["metadata"]["name"], "a");
    }

    #[tokio::test]
    async fn old_revisions_are_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = Store::open(&path, 3).unwrap();
        for i in 0..10 {
            store
                .update(&format!("k{i}"), Commit::Durable, |_| {
                    Ok(Decision::Put(cm("x")))
                })
                .await
                .unwrap();
        }
        assert!(store.watch("", 2).0.is_none(), "revision 2 is compacted");
        assert_eq!(store.watch("", 7).0.unwrap().len(), 3);
        store.close();
        let store = Store::open(&path, 3).unwrap();
        assert!(store.watch("", 2).0.is_none());
        assert_eq!(store.watch("", 7).0.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn watchers_receive_changes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), 100).unwrap();
        let (_, mut rx) = store.watch("", 0);
        for i in 0..5 {
            store
                .update(&format!("k{i}"), Commit::Durable, |_| {
                    Ok(Decision::Put(cm("x")))
                })
                .await
                .unwrap();
        }
        for expected in 1..=5 {
            assert_eq!(rx.recv().await.unwrap().revision, expected);
        }
    }

    #[tokio::test]
    async fn concurrent_writers_are_all_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), 10_000).unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .update(&format!("k{i}"), Commit::Durable, |_| {
                        Ok(Decision::Put(cm("x")))
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.revision(), 200);
        assert_eq!(store.list("k").0.len(), 200);
    }
}
