//! Answers kept for the whole process, for work that templates repeat with
//! the same arguments in every render (compiling a pattern, parsing a
//! version constraint).

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::{LazyLock, Mutex, MutexGuard};

use foldhash::HashMap;

/// A process-wide table of answers by key, holding at most `max`: it
/// starts over when full, so templates that make up new keys cannot grow
/// it without bound.
pub(crate) struct Memo<K, V> {
    answers: LazyLock<Mutex<HashMap<K, V>>>,
    max: usize,
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    /// An empty table that keeps at most `max` answers.
    pub(crate) const fn new(max: usize) -> Self {
        Memo {
            answers: LazyLock::new(Mutex::default),
            max,
        }
    }

    /// The answer for `key`: the one kept, or `answer()` (computed without
    /// holding the table, then kept).
    pub(crate) fn get_or<Q>(&self, key: &Q, answer: impl FnOnce() -> V) -> V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(kept) = self.lock().get(key) {
            return kept.clone();
        }
        let answer = answer();
        let mut answers = self.lock();
        if answers.len() >= self.max {
            answers.clear();
        }
        answers.insert(key.to_owned(), answer.clone());
        answer
    }

    /// The table (a poisoned lock only means another render panicked
    /// mid-insert; the map is still valid).
    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_and_the_table_starts_over_when_full() {
        static SQUARES: Memo<String, usize> = Memo::new(2);
        let computed = std::cell::Cell::new(0);
        let square = |key: &str| {
            SQUARES.get_or(key, || {
                computed.set(computed.get() + 1);
                key.len() * key.len()
            })
        };
        assert_eq!(square("ab"), 4);
        assert_eq!(square("ab"), 4);
        assert_eq!(square("abc"), 9);
        assert_eq!(computed.get(), 2);
        // Full: the third key empties the table, so "ab" is computed again.
        assert_eq!(square("abcd"), 16);
        assert_eq!(square("ab"), 4);
        assert_eq!(computed.get(), 4);
    }
}
