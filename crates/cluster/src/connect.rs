//! Connecting as kubectl does: `--kubeconfig`, else `KUBECONFIG` (a list of
//! files, merged), else `~/.kube/config`; `--context` or the current context.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Discovery;

use crate::error::ClusterError;
use crate::limits::{Limiter, Limits};
use crate::{Cluster, discovery};

/// Where and how to connect.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A kubeconfig file; `None` follows kubectl's rules.
    pub kubeconfig: Option<PathBuf>,
    /// A context in it; `None` uses its current context.
    pub context: Option<String>,
    /// Allow `exec` credential plugins. kubectl allows them; gitplane does only
    /// when asked, because a kubeconfig that came from a Git repository must
    /// never run a program on this host.
    pub allow_exec: bool,
    /// Rate limit, timeout and retries.
    pub limits: Limits,
}

impl ConnectOptions {
    /// Options for a kubeconfig file.
    pub fn for_kubeconfig(path: impl Into<PathBuf>) -> Self {
        ConnectOptions {
            kubeconfig: Some(path.into()),
            ..Default::default()
        }
    }
}

impl Cluster {
    /// Connects to the cluster the options name and reads its discovery.
    pub async fn connect(options: &ConnectOptions) -> Result<Cluster, ClusterError> {
        let kubeconfig = match &options.kubeconfig {
            Some(path) => Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?,
            None => Kubeconfig::read().map_err(|e| ClusterError::Config(e.to_string()))?,
        };
        Cluster::from_kubeconfig(kubeconfig, options).await
    }

    /// Connects with a kubeconfig already read (for example from a Secret).
    pub async fn from_kubeconfig(
        kubeconfig: Kubeconfig,
        options: &ConnectOptions,
    ) -> Result<Cluster, ClusterError> {
        if !options.allow_exec
            && kubeconfig
                .auth_infos
                .iter()
                .any(|a| a.auth_info.as_ref().is_some_and(|i| i.exec.is_some()))
        {
            return Err(ClusterError::Config(
                "the kubeconfig uses an exec credential plugin, which gitplane runs only when allowed"
                    .into(),
            ));
        }
        let kube_options = KubeConfigOptions {
            context: options.context.clone(),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        let server = config.cluster_url.to_string();
        let client =
            kube::Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
        let cluster = Cluster {
            client,
            server,
            discovery: discovery::Cache::new(),
            limiter: Limiter::new(options.limits.clone()),
        };
        cluster.refresh_discovery().await?;
        Ok(cluster)
    }

    /// Reads discovery again (after CRDs were created or deleted).
    pub async fn refresh_discovery(&self) -> Result<(), ClusterError> {
        self.refresh(None).await
    }

    /// Refreshes discovery, unless one was installed since generation `seen`.
    pub(crate) async fn refresh(&self, seen: Option<u64>) -> Result<(), ClusterError> {
        let Some(mut generation) = self.discovery.refresh_slot(seen).await else {
            return Ok(());
        };
        let discovery = self
            .limiter
            .run("discovery", || async {
                match Discovery::new(self.client.clone()).run_aggregated().await {
                    Ok(d) => Ok(d),
                    // Servers before 1.26 have no aggregated discovery.
                    Err(_) => Discovery::new(self.client.clone()).run().await,
                }
            })
            .await?;
        self.discovery.install(&discovery);
        *generation += 1;
        Ok(())
    }
}
