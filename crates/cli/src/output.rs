//! Printing objects and tables for people and scripts (`-o yaml|json|wide`).

use gitplane_object::{Object, yaml};

/// Output formats of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// YAML documents separated by `---` (the default for manifests).
    #[default]
    Yaml,
    /// JSON: one object, or a `List` of them.
    Json,
}

/// Output formats of check commands (`graph check`, `policy check`): a
/// summary for people, or the findings as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A summary for people.
    Text,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// Formats objects as a YAML stream or as JSON.
pub fn format_objects(objects: &[Object], format: Format) -> Result<String, serde_json::Error> {
    match format {
        Format::Yaml => Ok(yaml::objects_to_yaml_stream(objects)),
        Format::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            let mut text = serde_json::to_string_pretty(&list)?;
            text.push('\n');
            Ok(text)
        }
    }
}
