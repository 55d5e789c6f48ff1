//! `gitplane-graph`: KRO-compatible ResourceGraphDefinitions.
//!
//! A ResourceGraphDefinition (`kro.run/v1alpha1`) defines a new API (its
//! `schema`, in kro's SimpleSchema) and the resources one instance of it
//! stands for (templates with CEL `${…}` expressions). This crate is pure:
//! values in, values out.
//!
//! - [`Graph::compile`] reads and checks an RGD: schema, expressions,
//!   references, and the dependency order (cycles spelled out).
//! - [`generate_crd`] is the CRD the instance kind becomes;
//!   [`breaking_changes`] compares two schemas.
//! - [`expand`] turns an instance into the objects to apply, in dependency
//!   order, with what is still unresolved; [`is_ready`] evaluates a
//!   resource's `readyWhen` on live objects; [`expand_offline`] expands
//!   every instance in a rendered set (for `gitplane render --expand-graphs`).
//!
//! Start with [`Graph::compile`], then [`expand`].

mod crd;
mod dag;
mod error;
mod expand;
mod offline;
pub mod openapi;
mod ready;
mod rgd;
mod simpleschema;
mod status;
pub mod template;

pub use crd::{breaking_changes, crd_name, generate_crd};
pub use error::{GraphError, Location};
pub use expand::{
    Expansion, MAX_COLLECTION_SIZE, Node, Observed, Offline, Outcome, Unresolved,
    custom_conditions, expand, instance_labels, is_cluster_scoped_builtin, is_instance,
    ownership_labels, prepare_instance,
};
pub use offline::{OfflineExpansion, expand_offline};
pub use ready::is_ready;
pub use rgd::{
    ALLOW_BREAKING_CHANGES, Body, Graph, InstanceSchema, KRO_GROUP, RGD_API_VERSION, RGD_KIND,
    Resource, Scope,
};
pub use simpleschema::SpecSchema;
pub use status::{Readiness, graph_status};

/// The CEL environment graphs are compiled in: the default limits and kro's
/// function library (`random.seededString`, `omit()`, …). One per process,
/// so every caller shares its cache of compiled expressions (the controller
/// expands graphs on every comparison).
pub fn cel_env() -> gitplane_cel::Env {
    static ENV: std::sync::OnceLock<gitplane_cel::Env> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        gitplane_cel::Env::with_library(gitplane_cel::Limits::default(), gitplane_cel::Library::Kro)
    })
    .clone()
}
