//! `gitplane-object`: a Kubernetes object as data.
//!
//! This crate is the bottom of gitplane's stack and does no I/O. Every other box
//! passes [`Object`]s around: a JSON mapping with its field order preserved, plus
//! where it was read from. Start with:
//! - [`load_objects`] to turn manifest bytes (YAML or JSON) into objects, with
//!   Kubernetes' YAML rules and hard limits against hostile input;
//! - [`Object`], [`Gvk`] and [`ObjectKey`] to look at and identify them;
//! - [`LabelSelector`] to match them;
//! - [`yaml::to_yaml_stream`] to print them exactly as `kubectl kustomize` does;
//! - [`smp`] for strategic merge patch, shared by rendering and the API server.

mod gvk;
mod manifest;
mod object;
mod selector;
pub mod time;
pub mod yaml;

pub use gvk::{Gvk, ObjectKey, plural, split_api_version};
pub use manifest::{
    LoadError, LoadOptions, Syntax, load_objects, objects_of_documents, parse_values,
};
pub use object::{Object, Origin, PackedObject, select};
pub use selector::{LabelSelector, Operator, Requirement, SelectorError};
pub mod smp;
pub use serde_json::{Map, Value, json};
