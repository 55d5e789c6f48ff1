//! YAML in and out: loading with Kubernetes' scalar rules and hard limits
//! ([`parse_documents`]), and writing exactly as `kubectl kustomize` does
//! ([`to_yaml`], [`to_yaml_stream`]).

mod emit;
mod fast;
mod load;
mod scalar;

pub use emit::{
    compare_keys, format_number, map_to_yaml, objects_to_yaml_stream, to_yaml, to_yaml_stream,
    to_yaml_v3,
};
pub use load::{Limits, ParsedDocument, YamlError, parse_documents};
pub use scalar::{Dialect, resolves_to_non_string};
