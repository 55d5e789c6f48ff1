//! The Pod Security admission plugin's configuration, as kube-apiserver
//! reads it from `--admission-control-config-file`: an
//! `AdmissionConfiguration` whose `PodSecurity` plugin holds (inline, or in
//! the file its `path` names) a `PodSecurityConfiguration`:
//! - `defaults`: the levels (and versions) of namespaces without
//!   `pod-security.kubernetes.io/*` labels (a label wins over its default);
//! - `exemptions`: namespaces and runtime classes whose pods are not
//!   checked at all, and users whose requests are not.

use std::path::Path;

use gitplane_object::{LoadOptions, Syntax, parse_values};
use gitplane_policy::pss::Standard;
use gitplane_policy::strings;
use serde_json::Value;

/// The modes the plugin has.
pub const MODES: [&str; 3] = ["enforce", "audit", "warn"];

/// A PodSecurityConfiguration (empty: no defaults, no exemptions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSecurityConfig {
    /// Default standard per mode (`enforce`, `audit`, `warn`); absent or
    /// `privileged`: no checks.
    defaults: Vec<(String, Standard)>,
    /// Namespaces whose requests are exempt.
    pub namespaces: Vec<String>,
    /// Runtime classes whose pods are exempt.
    pub runtime_classes: Vec<String>,
    /// Users whose requests are exempt.
    pub usernames: Vec<String>,
}

impl PodSecurityConfig {
    /// Reads an `AdmissionConfiguration` (or a bare `PodSecurityConfiguration`)
    /// file; errors name the file and what is wrong.
    pub fn load(path: &Path) -> Result<PodSecurityConfig, String> {
        let document = read_document(path)?;
        let configuration = match document["kind"].as_str() {
            Some("PodSecurityConfiguration") => document,
            Some("AdmissionConfiguration") => {
                let plugin = document["plugins"]
                    .as_array()
                    .and_then(|plugins| plugins.iter().find(|p| p["name"] == "PodSecurity"));
                match plugin {
                    None => return Ok(PodSecurityConfig::default()),
                    Some(plugin) if plugin["configuration"].is_object() => {
                        plugin["configuration"].clone()
                    }
                    Some(plugin) => {
                        let nested = plugin["path"].as_str().ok_or_else(|| {
                            format!(
                                "{}: plugin PodSecurity has neither configuration nor path",
                                path.display()
                            )
                        })?;
                        let base = path.parent().unwrap_or(Path::new("."));
                        read_document(&base.join(nested))?
                    }
                }
            }
            other => {
                return Err(format!(
                    "{}: kind {other:?} is not AdmissionConfiguration or PodSecurityConfiguration",
                    path.display()
                ));
            }
        };
        Self::parse(&configuration).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a `PodSecurityConfiguration`.
    pub fn parse(configuration: &Value) -> Result<PodSecurityConfig, String> {
        let defaults_of = &configuration["defaults"];
        let mut defaults = Vec::new();
        for mode in MODES {
            let Some(level) = defaults_of[mode].as_str() else {
                continue;
            };
            if level == "privileged" {
                continue;
            }
            let version = defaults_of[format!("{mode}-version")]
                .as_str()
                .unwrap_or("latest");
            let standard = Standard::parse(&format!("{level}:{version}"))
                .map_err(|e| format!("defaults.{mode}: {e}"))?;
            defaults.push((mode.to_string(), standard));
        }
        let exemptions = &configuration["exemptions"];
        Ok(PodSecurityConfig {
            defaults,
            namespaces: strings(&exemptions["namespaces"]),
            runtime_classes: strings(&exemptions["runtimeClasses"]),
            usernames: strings(&exemptions["usernames"]),
        })
    }

    /// The default standard of a mode, for namespaces without its label.
    pub fn default_for(&self, mode: &str) -> Option<Standard> {
        self.defaults
            .iter()
            .find(|(m, _)| m == mode)
            .map(|(_, standard)| *standard)
    }

    /// Whether a write of this pod spec in this namespace is exempt.
    pub fn exempts(&self, namespace: &str, pod_spec: &Value) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
            || pod_spec["runtimeClassName"]
                .as_str()
                .is_some_and(|class| self.runtime_classes.iter().any(|c| c == class))
    }
}

fn read_document(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    let documents = parse_values(&bytes, &name, Syntax::Yaml, &LoadOptions::default())
        .map_err(|e| e.to_string())?;
    documents
        .into_iter()
        .map(|(value, _)| value)
        .find(|v| !v.is_null())
        .ok_or_else(|| format!("{name}: no document"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_admission_configuration_gives_defaults_and_exemptions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admission.yaml");
        std::fs::write(
            &file,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: pss.yaml\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("pss.yaml"),
            "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: baseline\n  enforce-version: v1.30\n  warn: restricted\n  audit: privileged\nexemptions:\n  namespaces: [kube-system]\n  runtimeClasses: [kata]\n  usernames: [admin]\n",
        )
        .unwrap();
        let config = PodSecurityConfig::load(&file).unwrap();
        assert_eq!(
            config.default_for("enforce"),
            Some(Standard::parse("baseline:v1.30").unwrap())
        );
        assert_eq!(
            config.default_for("warn"),
            Some(Standard::parse("restricted:latest").unwrap())
        );
        assert_eq!(
            config.default_for("audit"),
            None,
            "privileged checks nothing"
        );
        assert!(config.exempts("kube-system", &json!({})));
        assert!(config.exempts("shop", &json!({"runtimeClassName": "kata"})));
        assert!(!config.exempts("shop", &json!({"runtimeClassName": "runc"})));
        assert_eq!(config.usernames, ["admin"]);
    }

    #[test]
    fn bad_configurations_name_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pss.yaml");
        std::fs::write(
            &file,
            "kind: PodSecurityConfiguration\ndefaults: {enforce: strict}\n",
        )
        .unwrap();
        let error = PodSecurityConfig::load(&file).unwrap_err();
        assert!(error.contains("pss.yaml: defaults.enforce"), "{error}");
        std::fs::write(&file, "kind: Something\n").unwrap();
        assert!(
            PodSecurityConfig::load(&file)
                .unwrap_err()
                .contains("is not AdmissionConfiguration")
        );
    }
}
