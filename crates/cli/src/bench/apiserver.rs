//! `gitplane bench apiserver`: the embedded API server under load through
//! kube-rs, with etcd (the store behind every real cluster) measured in the
//! same run as the durable-write floor.
//!
//! Both servers run as separate processes on loopback. gitplane is driven the
//! way controllers drive it (kube-rs, TLS, JSON objects); etcd through its v3
//! JSON gateway with the same number of concurrent clients and values of the
//! same size, so the ratio compares two durable stores behind an HTTP API.
//! (`etcdctl put` in a loop would mostly measure process start-up.)

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use super::measure::find_in_path;

/// Arguments of `gitplane bench apiserver`.
#[derive(Debug, clap::Args)]
pub struct ApiserverBenchArgs {
    /// Objects to create (and then list).
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Concurrent watchers for the delivery-latency test.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Writes the watchers must each see.
    #[arg(long, default_value_t = 200)]
    watch_writes: usize,
}

/// Bytes of payload in every object (and every etcd value).
const PAYLOAD: usize = 256;
/// Writes done one at a time for the latency figures.
const SEQUENTIAL: usize = 300;

/// Runs the benchmark.
pub fn run(args: &ApiserverBenchArgs) -> Result<ExitCode> {
    if args.objects == 0 || args.writers == 0 || args.watchers == 0 || args.watch_writes == 0 {
        bail!("--objects, --writers, --watchers and --watch-writes must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: &ApiserverBenchArgs) -> Result<ExitCode> {
    let temp = tempfile::tempdir()?;
    eprintln!("starting gitplane apiserver (workload simulation off)");
    let mut server = Process::gitplane(&temp.path().join("gitplane"))?;
    let result = measure_gitplane(args, &temp.path().join("gitplane")).await;
    let gitplane_rss = server.peak_rss_mib();
    server.stop();
    let ours = result?;

    let etcd = match find_in_path("etcd") {
        Some(etcd) => {
            eprintln!("starting etcd ({})", etcd.display());
            let mut process = Process::etcd(&etcd, &temp.path().join("etcd"))?;
            let result = measure_etcd(args, process.port).await;
            let rss = process.peak_rss_mib();
            process.stop();
            Some((result?, rss))
        }
        None => {
            eprintln!("etcd not found: install Debian's etcd-server for the comparison");
            None
        }
    };

    println!(
        "apiserver: {} objects of {PAYLOAD} B payload, {} writers, {} watchers",
        args.objects, args.writers, args.watchers
    );
    println!("{:<34} {:>14} {:>14}", "MEASURE", "GITPLANE", "ETCD");
    let peer = |f: fn(&StoreNumbers) -> String| {
        etcd.as_ref().map_or_else(|| "-".to_string(), |(e, _)| f(e))
    };
    println!(
        "{:<34} {:>14} {:>14}",
        format!("creates/s ({} writers, fsync)", args.writers),
        format!("{:.0}", ours.store.writes_per_second),
        peer(|e| format!("{:.0}", e.writes_per_second))
    );
    println!(
        "{:<34} {:>14} {:>14}",
        "create latency p50/p99 (1 writer)",
        ours.store.sequential.show(),
        peer(|e| e.sequential.show())
    );
    println!(
        "{:<34} {:>14} {:>14}",
        format!("server-side applies/s ({} writers)", args.writers),
        format!("{:.0}", ours.applies_per_second),
        "-"
    );
    println!(
        "{:<34} {:>14} {:>14}",
        format!("list {} objects p50/p99", args.objects),
        ours.list.show(),
        "-"
    );
    println!(
        "{:<34} {:>14} {:>14}",
        "list in pages of 500, total p50",
        format!("{:.1}ms", ours.paged_list.as_secs_f64() * 1000.0),
        "-"
    );
    println!(
        "{:<34} {:>14} {:>14}",
        format!("watch delivery p50/p99 ({} w.)", args.watchers),
        ours.watch.show(),
        "-"
    );
    println!(
        "{:<34} {:>14} {:>14}",
        "peak RSS",
        format!("{gitplane_rss:.0} MiB"),
        etcd.as_ref()
            .map_or_else(|| "-".to_string(), |(_, rss)| format!("{rss:.0} MiB"))
    );
    if let Some((e, _)) = &etcd {
        println!(
            "ratio (gitplane creates/s / etcd puts/s): {:.2}",
            ours.store.writes_per_second / e.writes_per_second
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Durable-write figures measured on both servers.
struct StoreNumbers {
    writes_per_second: f64,
    sequential: Percentiles,
}

/// Everything measured on gitplane.
struct GitplaneNumbers {
    store: StoreNumbers,
    applies_per_second: f64,
    list: Percentiles,
    paged_list: Duration,
    watch: Percentiles,
}

/// The 50th and 99th percentile of some latencies.
struct Percentiles {
    p50: Duration,
    p99: Duration,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort();
        let at = |q: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Percentiles {
            p50: at(0.5),
            p99: at(0.99),
        }
    }

    fn show(&self) -> String {
        format!(
            "{:.1}/{:.1}ms",
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0
        )
    }
}

/// A server process that stops when dropped.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    /// `gitplane apiserver` on a free loopback port.
    fn gitplane(data: &Path) -> Result<Process> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["apiserver", "--listen", "127.0.0.1:0", "--no-simulate"])
            .arg("--data-dir")
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().context("the server exited")??;
        let port = first
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow!("unexpected first line: {first}"))?;
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Process { child, port })
    }

    /// A single-member etcd on free loopback ports.
    fn etcd(program: &Path, data: &Path) -> Result<Process> {
        let (client, peer) = (free_port()?, free_port()?);
        let child = Command::new(program)
            .arg("--name=bench")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
            ))
            .arg(format!("--initial-cluster=bench=http://127.0.0.1:{peer}"))
            .args(["--logger=zap", "--log-level=error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting etcd")?;
        Ok(Process {
            child,
            port: client,
        })
    }

    /// Peak resident memory so far (`VmHWM`), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn payload() -> String {
    "x".repeat(PAYLOAD)
}

fn config_map(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_string());
    cm.data = Some([("payload".to_string(), payload())].into());
    cm
}

/// Runs `count` operations over `writers` concurrent workers; returns ops/s.
async fn concurrently<F, Fut>(count: usize, writers: usize, op: F) -> Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(op)
        .buffer_unordered(writers)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Latencies of `count` operations run one after another.
async fn one_at_a_time<F, Fut>(count: usize, op: F) -> Result<Percentiles>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        op(i).await?;
        samples.push(started.elapsed());
    }
    Ok(Percentiles::of(samples))
}

async fn client(data: &Path) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(data.join("kubeconfig"))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn create_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_string());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

async fn measure_gitplane(args: &ApiserverBenchArgs, data: &Path) -> Result<GitplaneNumbers> {
    let client = client(data).await?;
    for ns in ["bench", "sequential", "watch"] {
        create_namespace(&client, ns).await?;
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");

    eprintln!(
        "  gitplane: {} creates, {} writers",
        args.objects, args.writers
    );
    let writes_per_second = concurrently(args.objects, args.writers, |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &config_map(&format!("cm-{i}")))
                .await?;
            Ok(())
        }
    })
    .await?;

    eprintln!("  gitplane: {SEQUENTIAL} creates one at a time");
    let sequential_api: Api<ConfigMap> = Api::namespaced(client.clone(), "sequential");
    let sequential = one_at_a_time(SEQUENTIAL, |i| {
        let api = sequential_api.clone();
        async move {
            api.create(&PostParams::default(), &config_map(&format!("cm-{i}")))
                .await?;
            Ok(())
        }
    })
    .await?;

    let applies = args.objects.min(5_000);
    eprintln!("  gitplane: {applies} server-side applies");
    let applies_per_second = concurrently(applies, args.writers, |i| {
        let api = api.clone();
        async move {
            let name = format!("cm-{i}");
            let mut cm = config_map(&name);
            cm.data = Some([("applied".to_string(), format!("{i}"))].into());
            let mut config = serde_json::to_value(&cm)?;
            config["apiVersion"] = json!("v1");
            config["kind"] = json!("ConfigMap");
            api.patch(
                &name,
                &PatchParams::apply("bench").force(),
                &Patch::Apply(config),
            )
            .await?;
            Ok(())
        }
    })
    .await?;

    eprintln!("  gitplane: listing {} objects", args.objects);
    let list = one_at_a_time(10, |_| {
        let api = api.clone();
        async move {
            let listed = api.list(&ListParams::default()).await?;
            if listed.items.len() != args.objects {
                bail!(
                    "listed {} objects, expected {}",
                    listed.items.len(),
                    args.objects
                );
            }
            Ok(())
        }
    })
    .await?;
    let paged = one_at_a_time(5, |_| {
        let api = api.clone();
        async move {
            let mut params = ListParams::default().limit(500);
            let mut total = 0;
            loop {
                let page = api.list(&params).await?;
                total += page.items.len();
                match page.metadata.continue_ {
                    Some(token) if !token.is_empty() => params = params.continue_token(&token),
                    _ => break,
                }
            }
            if total != args.objects {
                bail!("paged through {total} objects, expected {}", args.objects);
            }
            Ok(())
        }
    })
    .await?;

    eprintln!(
        "  gitplane: {} watchers, {} writes",
        args.watchers, args.watch_writes
    );
    let watch = watch_latency(&client, args.watchers, args.watch_writes).await?;
    Ok(GitplaneNumbers {
        store: StoreNumbers {
            writes_per_second,
            sequential,
        },
        applies_per_second,
        list,
        paged_list: paged.p50,
        watch,
    })
}

/// Starts `watchers` watches, writes `writes` objects one by one, and measures
/// the time from sending each write to each watcher receiving it.
async fn watch_latency(
    client: &kube::Client,
    watchers: usize,
    writes: usize,
) -> Result<Percentiles> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "watch");
    let version = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let stream = api.watch(&WatchParams::default(), &version).await?;
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut samples = Vec::with_capacity(writes);
            while samples.len() < writes {
                match stream.try_next().await? {
                    Some(WatchEvent::Added(cm)) => {
                        let name = cm.metadata.name.unwrap_or_default();
                        let at = sent
                            .lock()
                            .map_err(|_| anyhow!("poisoned"))?
                            .get(&name)
                            .copied();
                        if let Some(at) = at {
                            samples.push(at.elapsed());
                        }
                    }
                    Some(_) => {}
                    None => bail!("a watch ended early"),
                }
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    for i in 0..writes {
        let name = format!("w-{i}");
        sent.lock()
            .map_err(|_| anyhow!("poisoned"))?
            .insert(name.clone(), Instant::now());
        api.create(&PostParams::default(), &config_map(&name))
            .await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut samples = Vec::new();
    for task in tasks {
        let received = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .context("watchers did not receive every write within 60s")???;
        samples.extend(received);
    }
    Ok(Percentiles::of(samples))
}

/// A minimal etcd v3 JSON-gateway client on one HTTP/1.1 connection.
struct Etcd {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    port: u16,
}

impl Etcd {
    async fn connect(port: u16) -> Result<Etcd> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Etcd { sender, port })
    }

    async fn post(&mut self, path: &str, body: serde_json::Value) -> Result<()> {
        let request = http::Request::post(path)
            .header("host", format!("127.0.0.1:{}", self.port))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body()).await?;
        if !status.is_success() {
            bail!(
                "etcd {path}: {status}: {}",
                String::from_utf8_lossy(&body.to_bytes())
            );
        }
        Ok(())
    }

    async fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.post(
            "/v3/kv/put",
            json!({"key": b64.encode(key), "value": b64.encode(value)}),
        )
        .await
    }
}

async fn wait_for_etcd(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut etcd) = Etcd::connect(port).await
            && etcd.put("/bench/ready", b"1").await.is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("etcd did not become ready within 20s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn measure_etcd(args: &ApiserverBenchArgs, port: u16) -> Result<StoreNumbers> {
    wait_for_etcd(port).await?;
    // The value is what an API server would store for the same ConfigMap.
    let value = serde_json::to_vec(&config_map("cm-00000"))?;
    eprintln!("  etcd: {} puts, {} writers", args.objects, args.writers);
    let per_writer = args.objects.div_ceil(args.writers);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let value = value.clone();
        let count = per_writer.min(args.objects.saturating_sub(w * per_writer));
        tasks.push(tokio::spawn(async move {
            let mut etcd = Etcd::connect(port).await?;
            for i in 0..count {
                etcd.put(&format!("/registry/configmaps/bench/cm-{w}-{i}"), &value)
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let writes_per_second = args.objects as f64 / started.elapsed().as_secs_f64();

    eprintln!("  etcd: {SEQUENTIAL} puts one at a time");
    let etcd = Arc::new(tokio::sync::Mutex::new(Etcd::connect(port).await?));
    let sequential = one_at_a_time(SEQUENTIAL, |i| {
        let (etcd, value) = (etcd.clone(), value.clone());
        async move {
            etcd.lock()
                .await
                .put(&format!("/registry/configmaps/sequential/cm-{i}"), &value)
                .await
        }
    })
    .await?;
    Ok(StoreNumbers {
        writes_per_second,
        sequential,
    })
}
