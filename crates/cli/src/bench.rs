//! `gitplane bench`: measurements against a peer tool measured in the same run,
//! reported as ratios. Nothing here asserts a time; the numbers are for people.

mod apiserver;
mod generate;
mod graph;
mod helm;
mod measure;
mod policy;
mod reconcile;
mod render;
mod sync;

use std::process::ExitCode;

use anyhow::Result;

/// Arguments of `gitplane bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Debug, clap::Subcommand)]
enum BenchTarget {
    /// Render a synthetic platform (base + prod overlay per service) with gitplane
    /// and with `kubectl kustomize`, check the outputs are identical, and report
    /// both times, the ratio and peak memory.
    Render(render::RenderBenchArgs),
    /// Drive the embedded API server through kube-rs (creates, server-side
    /// applies, lists, watch delivery) and, when Debian's etcd-server is
    /// installed, the same durable writes against etcd in the same run.
    Apiserver(apiserver::ApiserverBenchArgs),
    /// One chart rendered as many releases: `gitplane helm template`
    /// against `helm template` (a process per release each, as a controller
    /// shelling out to Helm runs them), and gitplane's engine in process;
    /// checks the outputs are identical.
    Helm(helm::HelmBenchArgs),
    /// Sync one big application and many small ones into the embedded API
    /// server with `gitplane apply` and with `kubectl apply --server-side`:
    /// cold and no-op re-sync times, peak memory, and a check that no-op
    /// re-syncs write nothing.
    Sync(sync::SyncBenchArgs),
    /// `gitplane up` on a repository of N Kustomize apps: time to all Synced
    /// and Healthy (CPU, peak memory) against kubectl applying each app, a
    /// restart, and commit-to-applied via webhook and via polling.
    Reconcile(reconcile::ReconcileBenchArgs),
    /// Write a repository of N apps behind one app-of-apps (the shapes
    /// `bench reconcile` measures) to try gitplane at scale:
    /// `gitplane up --repo DIR`.
    Generate(generate::GenerateArgs),
    /// The WebApp golden path: N instances expanded offline (against
    /// `kubectl kustomize` building the same objects), and M instances
    /// reconciled by the graph controller to ACTIVE (against `kubectl apply
    /// --server-side` of their children).
    Graph(graph::GraphBenchArgs),
    /// Ten policies (Pod Security, Kyverno patterns, deny, foreach,
    /// anyPattern, ValidatingAdmissionPolicies with params) over N objects:
    /// `gitplane policy check` end to end and the evaluation alone
    /// (objects/s, CEL cost per object), against `kubectl kustomize`
    /// reading and printing the same objects.
    Policy(policy::PolicyBenchArgs),
}

/// Runs a benchmark.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    match &args.target {
        BenchTarget::Render(a) => render::run(a),
        BenchTarget::Helm(a) => helm::run(a),
        BenchTarget::Apiserver(a) => apiserver::run(a),
        BenchTarget::Sync(a) => sync::run_bench(a),
        BenchTarget::Reconcile(a) => reconcile::run(a),
        BenchTarget::Generate(a) => generate::run(a),
        BenchTarget::Graph(a) => graph::run(a),
        BenchTarget::Policy(a) => policy::run(a),
    }
}
