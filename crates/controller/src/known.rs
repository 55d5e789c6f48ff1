//! The Applications and AppProjects of the control namespace as the
//! controller last saw them — from its watches and from the answers to its
//! own writes — so a reconcile or an operation step reads them from memory
//! instead of asking the API server each time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use gitplane_object::{Object, PackedObject};

/// Objects of one kind by name, each the newest version seen, kept as JSON
/// text: a decoded Application takes about ten times its text, and the
/// controller holds every one. Reads decode (tens of microseconds).
#[derive(Default)]
pub(crate) struct Known {
    objects: RwLock<HashMap<String, Kept>>,
}

struct Kept {
    version: Option<u64>,
    object: PackedObject,
}

/// A resource version as a number, when it is one (etcd's and gitplane's are).
fn version(object: &Object) -> Option<u64> {
    object
        .str_at(&["metadata", "resourceVersion"])
        .and_then(|v| v.parse().ok())
}

impl Known {
    /// Keeps `object` unless a newer version of it is known already;
    /// returns the newest version known now.
    pub(crate) fn remember(&self, object: Object) -> Arc<Object> {
        self.remember_with(object, |_| {})
    }

    /// [`Known::remember`], calling `then` with the newest version while no
    /// other version can be remembered: what `then` derives from it (an
    /// application's progress summary) always follows the newest version,
    /// however the calls of two threads interleave.
    pub(crate) fn remember_with(&self, object: Object, then: impl FnOnce(&Object)) -> Arc<Object> {
        let new = version(&object);
        let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
        let newer = objects
            .get(object.name())
            .filter(|known| known.version.zip(new).is_some_and(|(k, n)| k > n))
            .map(|known| known.object.unpack());
        let newest = match newer {
            Some(known) => known,
            None => {
                let kept = Kept {
                    version: new,
                    object: PackedObject::pack(&object),
                };
                objects.insert(object.name().to_string(), kept);
                object
            }
        };
        then(&newest);
        Arc::new(newest)
    }

    /// The newest version seen of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Object>> {
        self.objects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map(|known| Arc::new(known.object.unpack()))
    }

    /// Forgets `name` (it was deleted).
    pub(crate) fn forget(&self, name: &str) {
        self.objects
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(version: &str, note: &str) -> Object {
        let mut o = Object::with_type("argoproj.io/v1alpha1", "Application", "a");
        o.set(&["metadata", "resourceVersion"], version.into());
        o.set(&["spec", "note"], note.into());
        o
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let known = Known::default();
        known.remember(app("5", "new"));
        let newest = known.remember(app("4", "old"));
        assert_eq!(newest.str_at(&["spec", "note"]), Some("new"));
        assert_eq!(
            known.get("a").unwrap().str_at(&["spec", "note"]),
            Some("new")
        );
        known.remember(app("6", "newer"));
        assert_eq!(
            known.get("a").unwrap().str_at(&["spec", "note"]),
            Some("newer")
        );
        known.forget("a");
        assert!(known.get("a").is_none());
    }

    /// Two threads remember interleaved versions of one object, each
    /// deriving a note from the version it got back, as the controller
    /// derives an application's summary: what is derived never goes back to
    /// an older version, and ends at the newest.
    #[test]
    fn what_is_derived_follows_the_newest_version_under_concurrency() {
        let known = Known::default();
        let derived = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for parity in [0, 1] {
                let (known, derived) = (&known, &derived);
                scope.spawn(move || {
                    for v in (1..=2000u64).filter(|v| v % 2 == parity) {
                        known.remember_with(app(&v.to_string(), "n"), |newest| {
                            derived.lock().unwrap().push(version(newest));
                        });
                    }
                });
            }
        });
        let derived = derived.into_inner().unwrap();
        assert!(derived.windows(2).all(|w| w[0] <= w[1]), "went back");
        assert_eq!(derived.last(), Some(&Some(2000)));
    }
}
