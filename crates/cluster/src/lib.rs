//! The one way gitplane talks to a Kubernetes API, the embedded one included:
//! kube-rs over HTTPS, with kubectl's kubeconfig rules, a discovery cache that
//! refreshes when a kind is unknown, server-side apply as field manager
//! `gitplane`, deletes with a propagation policy, and the live objects an
//! application manages (found by Argo CD's tracking annotation). Every request
//! goes through a client-side rate limit and timeout, and throttling (429),
//! server errors (5xx) and transport failures are retried with backoff.

mod connect;
mod discovery;
mod error;
mod limits;
mod live;
mod ops;

pub use connect::ConnectOptions;
pub use discovery::ResourceInfo;
pub use error::ClusterError;
pub use limits::Limits;
pub use live::{Change, LiveCache, TRACKING_ANNOTATION, Tracking, tracking_id};
pub use ops::{ApplyOptions, Propagation};

/// A connection to one cluster. Cheap to share behind an `Arc`.
pub struct Cluster {
    client: kube::Client,
    server: String,
    discovery: discovery::Cache,
    limiter: limits::Limiter,
}

impl Cluster {
    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The API server's Kubernetes version (`/version`'s `gitVersion`).
    pub async fn kube_version(&self) -> Result<String, ClusterError> {
        Ok(self.client.apiserver_version().await?.git_version)
    }

    /// What Argo CD passes to `helm template --api-versions` for this
    /// cluster: every served `group/version` and `group/version/Kind` (at
    /// the preferred version), sorted.
    pub fn api_versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = self
            .kinds()
            .into_iter()
            .flat_map(|info| {
                let api_version = info.resource.api_version.clone();
                let with_kind = format!("{api_version}/{}", info.resource.kind);
                [api_version, with_kind]
            })
            .collect();
        versions.sort();
        versions.dedup();
        versions
    }

    /// The underlying kube-rs client, for watches (see [`LiveCache`]).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Requests made through this handle so far, as (verb, status code,
    /// count): `2xx` for successes, `error` when no response came. Each
    /// retry counts. Watches (through [`Cluster::client`]) are not counted.
    pub fn request_counts(&self) -> Vec<(&'static str, String, u64)> {
        self.limiter.counts()
    }
}
