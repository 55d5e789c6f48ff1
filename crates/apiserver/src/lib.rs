//! `gitplane-apiserver`: the embedded Kubernetes-API-compatible control plane.
//!
//! One process serves the Kubernetes REST API that kubectl and kube-rs speak,
//! backed by a durable embedded store ([`store`]). It is what k3s's bundled
//! SQLite is to k3s: a real API (discovery, OpenAPI, CRUD, watch, patches,
//! server-side apply with field ownership, CRDs, finalizers, garbage collection)
//! without running any container; a workload simulator moves Deployments, Pods,
//! Jobs... through their status so health checks and hooks behave as on a
//! cluster ([`controllers::simulate`]).
//!
//! Start with [`Server::start`]: it opens the data directory, generates TLS
//! material and a token on first use, serves HTTPS and writes a kubeconfig.
//! Requests go [`http`] → [`api`] (the verbs) → [`store`].

mod admission;
pub mod api;
mod builtin;
pub mod controllers;
mod crd;
mod defaults;
mod discovery;
mod error;
mod fields;
mod hooks;
pub mod http;
mod openapi;
pub mod pod_security;
mod protobuf;
mod registry;
mod request;
mod schema;
mod semantics;
mod ssa;
pub mod store;
mod table;
mod tls;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch as signal;

pub use error::ApiError;
pub use registry::Registry;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:6443`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Data directory: the store, TLS material, token and kubeconfig.
    pub data_dir: PathBuf,
    /// Where to also write the kubeconfig (it is always written to
    /// `<data-dir>/kubeconfig`).
    pub kubeconfig_out: Option<PathBuf>,
    /// Run the workload simulator.
    pub simulate: bool,
    /// Changes kept for watches to resume from.
    pub event_log: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Pod Security admission defaults and exemptions.
    pub pod_security: pod_security::PodSecurityConfig,
}

impl Config {
    /// Defaults for a data directory: loopback, a free port, simulation on.
    pub fn new(data_dir: &Path) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            kubeconfig_out: None,
            simulate: true,
            event_log: 10_000,
            max_body_bytes: 3 * 1024 * 1024,
            pod_security: pod_security::PodSecurityConfig::default(),
        }
    }
}

/// A running server.
pub struct Server {
    /// The address it serves on.
    pub address: SocketAddr,
    /// The kubeconfig in the data directory.
    pub kubeconfig: PathBuf,
    /// The API, for in-process use by tests and `gitplane up`.
    pub api: api::Api,
    shutdown: signal::Sender<bool>,
    serving: tokio::task::JoinHandle<()>,
}

/// The store file inside a data directory.
pub const STORE_FILE: &str = "store.redb";

impl Server {
    /// Opens the data directory and starts serving.
    pub async fn start(config: Config) -> Result<Server, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
        let credentials = tls::load_or_create(&config.data_dir)?;
        let store = store::Store::open(&config.data_dir.join(STORE_FILE), config.event_log)?;
        let api = api::Api {
            store,
            registry: Registry::with_builtins(),
            policies: Default::default(),
            pod_security: std::sync::Arc::new(config.pod_security.clone()),
        };
        serve_stored_crds(&api);
        seed(&api).await?;
        controllers::start(&api, config.simulate);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("listening on {}: {e}", config.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let server_url = format!("https://{address}");
        let kubeconfig = tls::write_kubeconfig(
            &config.data_dir.join("kubeconfig"),
            &server_url,
            &credentials,
        )?;
        if let Some(out) = &config.kubeconfig_out {
            tls::write_kubeconfig(out, &server_url, &credentials)?;
        }
        let shared = Arc::new(http::Shared {
            api: api.clone(),
            token: credentials.token.clone(),
            max_body_bytes: config.max_body_bytes,
        });
        let (shutdown, stop) = signal::channel(false);
        let serving = tokio::spawn(http::serve(
            listener,
            tls::server_config(&credentials)?,
            shared,
            stop,
        ));
        Ok(Server {
            address,
            kubeconfig,
            api,
            shutdown,
            serving,
        })
    }

    /// Stops serving and closes the store (pending writes reach the disk).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.serving.await;
        let store = self.api.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
}

/// Serves the types of the CRDs already in the store.
fn serve_stored_crds(api: &api::Api) {
    let (crds, _) = api
        .store
        .list("apiextensions.k8s.io/customresourcedefinitions/");
    for (_, crd) in crds {
        hooks::register_crd(api, &crd);
    }
}

/// The namespaces every cluster has.
async fn seed(api: &api::Api) -> Result<(), String> {
    let target = api
        .target_for_kind("", "Namespace", None)
        .ok_or("no Namespace type")?;
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if api.get(&target, name).is_err() {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            api.create(&target, namespace, &controllers::options())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
