//! A work queue of application names: each name at most once in the queue
//! and at most once being worked on; a request for one being worked on runs
//! it again afterwards. Delayed requests wait in a schedule.
//!
//! The status queue distinguishes a full reconcile from a health refresh
//! (only the status of managed objects changed; a full one covers it). The
//! operation queue has an urgent lane, served first, for operations a
//! person started (`app sync`, rollback), so a burst of automated work
//! never delays them.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    urgent: VecDeque<String>,
    ready: VecDeque<String>,
    queued: HashSet<String>,
    running: HashSet<String>,
    again: HashSet<String>,
    again_urgent: HashSet<String>,
    /// Names whose next run must be a full reconcile.
    full: HashSet<String>,
    due: BTreeMap<String, Instant>,
    due_health: BTreeMap<String, Instant>,
}

/// Application names waiting to be worked on.
#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Work on `name` (fully) as soon as a worker is free.
    pub fn add(&self, name: &str) {
        self.lock().full.insert(name.to_string());
        self.enqueue(name, false);
    }

    /// Work on `name` before anything not urgent.
    pub fn add_urgent(&self, name: &str) {
        self.lock().full.insert(name.to_string());
        self.enqueue(name, true);
    }

    /// Refresh `name`'s health as soon as a worker is free.
    fn add_health(&self, name: &str) {
        self.enqueue(name, false);
    }

    fn enqueue(&self, name: &str, urgent: bool) {
        let mut state = self.lock();
        if state.running.contains(name) {
            state.again.insert(name.to_string());
            if urgent {
                state.again_urgent.insert(name.to_string());
            }
        } else if state.queued.insert(name.to_string()) {
            if urgent {
                state.urgent.push_back(name.to_string());
            } else {
                state.ready.push_back(name.to_string());
            }
            self.notify.notify_one();
        } else if urgent && let Some(i) = state.ready.iter().position(|n| n == name) {
            // Queued behind other work: moved ahead of it.
            state.ready.remove(i);
            state.urgent.push_back(name.to_string());
        }
    }

    /// Work on `name` at `at` (or earlier if already due earlier).
    pub fn add_at(&self, name: &str, at: Instant) {
        schedule(&mut self.lock().due, name, at);
    }

    /// Refresh `name`'s health at `at` (or earlier if already due earlier).
    pub fn add_health_at(&self, name: &str, at: Instant) {
        schedule(&mut self.lock().due_health, name, at);
    }

    /// Moves every due request to the queue.
    pub fn promote_due(&self, now: Instant) {
        let (full, health) = {
            let mut state = self.lock();
            (
                take_due(&mut state.due, now),
                take_due(&mut state.due_health, now),
            )
        };
        for name in full {
            self.add(&name);
        }
        for name in health {
            self.add_health(&name);
        }
    }

    /// Forgets an application that no longer exists.
    pub fn forget(&self, name: &str) {
        let mut state = self.lock();
        state.due.remove(name);
        state.due_health.remove(name);
    }

    /// Waits for the next name to work on, and whether it needs a full
    /// reconcile (else only a health refresh).
    pub async fn next(&self) -> (String, bool) {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.lock();
                let next = match state.urgent.pop_front() {
                    Some(name) => Some(name),
                    None => state.ready.pop_front(),
                };
                if let Some(name) = next {
                    state.queued.remove(&name);
                    state.running.insert(name.clone());
                    let full = state.full.remove(&name);
                    if !state.ready.is_empty() || !state.urgent.is_empty() {
                        self.notify.notify_one();
                    }
                    return (name, full);
                }
            }
            notified.await;
        }
    }

    /// Marks `name` done; queues it again if it was asked for meanwhile.
    pub fn done(&self, name: &str) {
        let (again, urgent) = {
            let mut state = self.lock();
            state.running.remove(name);
            (state.again.remove(name), state.again_urgent.remove(name))
        };
        if urgent {
            self.add_urgent(name);
        } else if again {
            self.add(name);
        }
    }

    /// Names queued or being worked on.
    pub fn busy(&self) -> usize {
        let state = self.lock();
        state.queued.len() + state.running.len()
    }
}

fn schedule(due: &mut BTreeMap<String, Instant>, name: &str, at: Instant) {
    let entry = due.entry(name.to_string()).or_insert(at);
    if at < *entry {
        *entry = at;
    }
}

fn take_due(due: &mut BTreeMap<String, Instant>, now: Instant) -> Vec<String> {
    let names: Vec<String> = due
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(n, _)| n.clone())
        .collect();
    for name in &names {
        due.remove(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_at_a_time_and_again_when_asked_meanwhile() {
        let queue = Queue::default();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.next().await, ("a".into(), true));
        queue.add("a"); // while running
        assert_eq!(queue.next().await, ("b".into(), true));
        assert_eq!(queue.busy(), 2);
        queue.done("a");
        assert_eq!(queue.next().await, ("a".into(), true));
        queue.done("a");
        queue.done("b");
        assert_eq!(queue.busy(), 0);
    }

    #[tokio::test]
    async fn scheduled_requests_wait_until_due() {
        let queue = Queue::default();
        let now = Instant::now();
        queue.add_at("later", now + std::time::Duration::from_secs(60));
        queue.add_at("soon", now);
        queue.promote_due(now);
        assert_eq!(queue.busy(), 1);
        assert_eq!(queue.next().await, ("soon".into(), true));
    }

    #[tokio::test]
    async fn health_refreshes_are_covered_by_full_reconciles() {
        let queue = Queue::default();
        let now = Instant::now();
        queue.add_health_at("a", now);
        queue.add_at("a", now + std::time::Duration::from_secs(60));
        queue.promote_due(now);
        assert_eq!(
            queue.next().await,
            ("a".into(), false),
            "only health is due"
        );
        queue.done("a");
        queue.add_health_at("b", now);
        queue.add_at("b", now);
        queue.promote_due(now);
        assert_eq!(queue.next().await, ("b".into(), true));
    }

    #[tokio::test]
    async fn urgent_work_goes_before_a_burst() {
        let queue = Queue::default();
        for i in 0..1000 {
            queue.add(&format!("auto-{i}"));
        }
        queue.add_urgent("person");
        queue.add_urgent("auto-500");
        assert_eq!(queue.next().await.0, "person");
        assert_eq!(
            queue.next().await.0,
            "auto-500",
            "moved ahead when asked urgently"
        );
        assert_eq!(queue.next().await.0, "auto-0");
        // Asked urgently while being worked on: runs again first.
        queue.add_urgent("auto-0");
        queue.done("auto-0");
        assert_eq!(queue.next().await.0, "auto-0");
    }
}
