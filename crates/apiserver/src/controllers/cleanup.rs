//! Kyverno's cleanup controller for stored DeletingPolicies (once Kyverno's
//! CRDs are installed, as in a cluster with Kyverno): at each minute a
//! policy's cron `schedule` names, every stored object of its resource
//! rules that it selects (constraints, namespace selector, CEL conditions)
//! is deleted. A condition that fails to evaluate deletes nothing.

use std::sync::Mutex;

use gitplane_object::time::civil;
use gitplane_policy::kyverno::deleting_policy::DeletingPolicy;
use serde_json::Value;

use super::name_of;
use super::simulate::cron::Schedule;
use crate::api::{Api, DeleteOptions};

/// The controller.
pub struct CleanupController {
    api: Api,
    /// The last minute (Unix seconds) the schedules were run for.
    last_minute: Mutex<i64>,
}

impl CleanupController {
    /// A controller for the API's stored DeletingPolicies.
    pub fn new(api: Api) -> Self {
        CleanupController {
            api,
            last_minute: Mutex::new(i64::MIN),
        }
    }

    /// Runs the policies due at the minute of `now` (Unix seconds), once
    /// per minute however often it is called.
    pub async fn tick(&self, now: i64) {
        let minute = now - now.rem_euclid(60);
        {
            let mut last = self.last_minute.lock().unwrap_or_else(|p| p.into_inner());
            if *last == minute {
                return;
            }
            *last = minute;
        }
        let set = self.api.policies.get(&self.api.store);
        let at = civil(minute);
        for policy in set.deleting_policies() {
            match Schedule::parse(&policy.schedule) {
                Ok(schedule) if schedule.matches(&at) => self.clean_up(policy).await,
                Ok(_) => {}
                Err(e) => tracing::warn!("DeletingPolicy {}: schedule: {e}", policy.name),
            }
        }
    }

    /// Deletes what one policy selects now.
    async fn clean_up(&self, policy: &DeletingPolicy) {
        for object in self.candidates(policy) {
            let namespace = self
                .api
                .namespace_object(object["metadata"]["namespace"].as_str());
            match policy.deletes(&object, namespace.as_deref()) {
                Ok(true) => self.delete(&object).await,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("DeletingPolicy {}: {}: {e}", policy.name, name_of(&object))
                }
            }
        }
    }

    /// The stored objects of the policy's resource rules.
    fn candidates(&self, policy: &DeletingPolicy) -> Vec<Value> {
        let mut out = Vec::new();
        for t in self.api.registry.all() {
            let named = policy.resources().iter().any(|(group, resource)| {
                (group == "*" || *group == t.group) && (resource == "*" || *resource == t.plural)
            });
            if named {
                let (objects, _) = self.api.store.list(&t.key_prefix());
                out.extend(objects.into_iter().map(|(_, o)| o.as_ref().clone()));
            }
        }
        out
    }

    async fn delete(&self, object: &Value) {
        let Some(target) = super::target_of(&self.api, object) else {
            return;
        };
        let name = name_of(object).to_string();
        if let Err(e) = self
            .api
            .delete(&target, &name, &DeleteOptions::default())
            .await
        {
            tracing::warn!("cleanup: deleting {name}: {e}");
        }
    }
}
