//! `gitplane app actions list|run`: resource actions on an application's
//! live objects, as `argocd app actions` offers them — the built-in ones
//! (restart, pause, resume and scale a Deployment; restart and scale a
//! StatefulSet; restart a DaemonSet; suspend, resume and run a CronJob) and
//! those of the control namespace's `argocd-cm`.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use gitplane_health::{LuaLimits, ResourceActions};
use gitplane_object::{Gvk, Object, Value};
use serde_json::Map;

use super::Apps;

/// `gitplane app actions …`.
#[derive(Debug, clap::Subcommand)]
pub enum ActionsCommand {
    /// The actions an application's resource offers (disabled ones marked).
    List {
        /// The application.
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Run an action on an application's resource: what it changes is
    /// patched into the live object, what it creates is created.
    Run {
        /// The application.
        name: String,
        /// The action (see `list`).
        action: String,
        #[command(flatten)]
        target: Target,
        /// A parameter, `NAME=VALUE` (repeatable), e.g. `--param replicas=3`.
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
}

/// Which of the application's resources.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Its kind, e.g. Deployment.
    #[arg(long)]
    kind: String,
    /// Its name.
    #[arg(long)]
    resource_name: String,
    /// Its API group, when the kind alone is ambiguous.
    #[arg(long)]
    group: Option<String>,
    /// Its namespace, when the name alone is ambiguous.
    #[arg(long)]
    namespace: Option<String>,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?}: expected NAME=VALUE"))
}

impl Apps {
    /// Runs `gitplane app actions …`.
    pub(super) async fn actions(&self, command: &ActionsCommand) -> Result<ExitCode> {
        match command {
            ActionsCommand::List { name, target } => {
                let live = self.action_target(name, target).await?;
                let offered = self
                    .resource_actions()
                    .await?
                    .discover(&live.to_value())
                    .map_err(|e| anyhow!(e))?;
                if !self.print_structured(&Value::Array(offered.clone()))? {
                    println!("{:<20} {:<10} PARAMS", "ACTION", "DISABLED");
                    for action in &offered {
                        let params: Vec<&str> = action["params"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p["name"].as_str())
                            .collect();
                        println!(
                            "{:<20} {:<10} {}",
                            action["name"].as_str().unwrap_or_default(),
                            action["disabled"],
                            params.join(",")
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            ActionsCommand::Run {
                name,
                action,
                target,
                params,
            } => {
                let live = self.action_target(name, target).await?;
                let params: Map<String, Value> = params
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                let impacted = self
                    .resource_actions()
                    .await?
                    .run(&live.to_value(), action, &params)
                    .map_err(|e| anyhow!("{action}: {e}"))?;
                for (operation, resource) in impacted {
                    self.carry_out(&live, &operation, resource).await?;
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }

    /// The live object of the application's resource `target` names.
    async fn action_target(&self, name: &str, target: &Target) -> Result<Object> {
        let app = self.fetch(name).await?;
        let server = app
            .str_at(&["spec", "destination", "server"])
            .unwrap_or_default();
        let dest_name = app
            .str_at(&["spec", "destination", "name"])
            .unwrap_or_default();
        let in_cluster = server == gitplane_controller::spec::IN_CLUSTER_SERVER
            || (server.is_empty() && dest_name == "in-cluster");
        if !in_cluster {
            bail!(
                "application {name}: actions on other clusters than the control cluster are not supported yet"
            );
        }
        let entries = app
            .get(&["status", "resources"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let text = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
        let matching: Vec<&Value> = entries
            .iter()
            .filter(|e| text(e, "kind") == target.kind && text(e, "name") == target.resource_name)
            .filter(|e| target.group.as_ref().is_none_or(|g| &text(e, "group") == g))
            .filter(|e| {
                target
                    .namespace
                    .as_ref()
                    .is_none_or(|n| &text(e, "namespace") == n)
            })
            .collect();
        let entry = match matching.as_slice() {
            [one] => *one,
            [] => bail!(
                "application {name} has no resource {} {}",
                target.kind,
                target.resource_name
            ),
            _ => bail!(
                "application {name} has several resources {} {}: give --group or --namespace",
                target.kind,
                target.resource_name
            ),
        };
        let gvk = Gvk::new(
            text(entry, "group"),
            text(entry, "version"),
            text(entry, "kind"),
        );
        self.cluster
            .get(&gvk, &text(entry, "namespace"), &text(entry, "name"))
            .await?
            .with_context(|| {
                format!(
                    "{} {} is not in the cluster",
                    target.kind, target.resource_name
                )
            })
    }

    /// The built-in actions with the control namespace's `argocd-cm` ones.
    async fn resource_actions(&self) -> Result<ResourceActions> {
        let data = gitplane_controller::argocd_cm_data(&self.cluster, &self.namespace).await?;
        ResourceActions::with_argocd_cm(&data, LuaLimits::default())
            .with_context(|| format!("{}/argocd-cm", self.namespace))
    }

    /// Creates what an action creates; patches the live object into what
    /// the action made of it (a merge patch of the difference, as Argo CD).
    async fn carry_out(&self, live: &Object, operation: &str, resource: Value) -> Result<()> {
        let object =
            Object::try_from(resource).map_err(|_| anyhow!("the action returned no object"))?;
        if operation == "create" {
            let created = self.cluster.create(&object, false).await?;
            println!("created {} {}", created.kind(), created.name());
            return Ok(());
        }
        if object.key() != live.key() {
            bail!(
                "the action patches {}, not the object it ran on",
                object.key()
            );
        }
        let patch = merge_patch_between(&live.to_value(), &object.to_value());
        if patch.as_object().is_some_and(Map::is_empty) {
            println!("{} {}: unchanged", live.kind(), live.name());
            return Ok(());
        }
        self.cluster
            .merge_patch(live, patch, "gitplane-actions")
            .await?;
        println!("patched {} {}", live.kind(), live.name());
        Ok(())
    }
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`.
fn merge_patch_between(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(before) if before == value => {}
                    Some(before) if before.is_object() && value.is_object() => {
                        patch.insert(key.clone(), merge_patch_between(before, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        (_, new) => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patches_say_what_changed_and_what_went() {
        let old =
            json!({"spec": {"replicas": 2, "paused": true, "template": {"a": 1}}, "status": {}});
        let new = json!({"spec": {"replicas": 3, "template": {"a": 1}}, "status": {}});
        assert_eq!(
            merge_patch_between(&old, &new),
            json!({"spec": {"replicas": 3, "paused": null}})
        );
    }
}
