//! `gitplane apiserver`: run the embedded control plane on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use gitplane_apiserver::pod_security::PodSecurityConfig;
use gitplane_apiserver::{Config, Server};

/// Arguments of `gitplane apiserver`.
#[derive(Debug, clap::Args)]
pub struct ApiserverArgs {
    /// Address to serve HTTPS on. Loopback by default; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6443", env = "GITPLANE_LISTEN")]
    pub listen: SocketAddr,
    /// Data directory: the store, TLS material, token and kubeconfig. A directory
    /// a stopped `gitplane up` left works too.
    #[arg(long, default_value = ".gitplane", env = "GITPLANE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Also write the kubeconfig here (mode 0600).
    #[arg(long, env = "GITPLANE_KUBECONFIG_OUT")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Do not simulate workloads (Pods stay Pending, Jobs never finish).
    #[arg(long, env = "GITPLANE_NO_SIMULATE")]
    pub no_simulate: bool,
    /// Changes kept for watches to resume from.
    #[arg(long, default_value_t = 10_000, env = "GITPLANE_EVENT_LOG")]
    pub event_log: usize,
    /// A kube-apiserver admission configuration file (`AdmissionConfiguration`
    /// with a `PodSecurity` plugin, or a `PodSecurityConfiguration`): Pod
    /// Security defaults for namespaces without labels, and exempt
    /// namespaces and runtime classes.
    #[arg(long, env = "GITPLANE_ADMISSION_CONFIG")]
    pub admission_control_config_file: Option<PathBuf>,
}

/// The Pod Security configuration a file gives (none: the empty one).
pub fn pod_security_config(file: Option<&std::path::Path>) -> Result<PodSecurityConfig> {
    file.map(|f| PodSecurityConfig::load(f).map_err(|e| anyhow!(e)))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: &ApiserverArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut config = Config::new(&args.data_dir);
        config.listen = args.listen;
        config.kubeconfig_out = args.kubeconfig_out.clone();
        config.simulate = !args.no_simulate;
        config.event_log = args.event_log.max(1);
        config.pod_security = pod_security_config(args.admission_control_config_file.as_deref())?;
        let server = Server::start(config).await.map_err(|e| anyhow!(e))?;
        println!("gitplane API server serving https://{}", server.address);
        println!("kubeconfig: {}", server.kubeconfig.display());
        println!("try: kubectl --kubeconfig {} get namespaces", server.kubeconfig.display());
        if !args.no_simulate {
            println!("workloads are simulated: no container runs; Pods carry the annotation gitplane.dev/simulated=true");
        }
        wait_for_shutdown().await;
        println!("stopping");
        server.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
