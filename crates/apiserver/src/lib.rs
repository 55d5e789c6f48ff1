//! `gitplane-apiserver`: the embedded Kubernetes-API-compatible control plane.
//!
//! One process serves the Kubernetes REST API that kubectl and kube-rs speak,
//! backed by a durable embedded store ([`store`]). It is what k3s's bundled
//! SQLite is to k3s: a real API (discovery, OpenAPI, CRUD, watch, patches,
//! server-side apply with field ownership, CRDs, finalizers, garbage collection)
//! without running any container; a workload simulator moves Deployments, Pods,
//! Jobs... through their status so health checks and hooks behave as on a
//! cluster.
//!
//! Start with [`Server`]: `Server::start` opens the data directory, generates TLS
//! material and a token on first use, and serves HTTPS.

mod builtin;
mod discovery;
mod error;
mod fields;
mod openapi;
mod registry;
mod request;
mod schema;
mod ssa;
mod store;
mod time;
mod tls;

pub use error::ApiError;
