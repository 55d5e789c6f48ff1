//! Platform repositories of many applications behind one app-of-apps
//! (`bootstrap/`, which `gitplane up` points its root Application at), for
//! `gitplane bench reconcile`, for the scale tests, and for anyone who wants
//! to see gitplane at scale: `gitplane bench generate DIR`.
//!
//! Three shapes:
//! - `plain`: each app a Kustomize overlay of six objects (ConfigMap, Secret,
//!   ServiceAccount, Service, Deployment) in a namespace of its own;
//! - `platform`: what a platform team's repository looks like — each app a
//!   Kustomize overlay of a shared base (Deployment, Service, ConfigMap,
//!   HorizontalPodAutoscaler, PodDisruptionBudget), ten apps per team
//!   namespace (`team-00`, `team-01`, …, created by `CreateNamespace=true`);
//! - `helm`: the same objects from one shared Helm chart (`charts/service`),
//!   each app a release with its own values file (`apps/<app>/values.yaml`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use super::sync::write_app;

/// The shape of a generated repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Six objects per app, a namespace per app.
    Plain,
    /// Deployment, Service, ConfigMap, HPA and PDB per app; ten apps per
    /// team namespace.
    Platform,
    /// The platform's objects from one Helm chart, a values file per app.
    Helm,
}

/// Apps per team namespace in the platform shape.
const APPS_PER_TEAM: usize = 10;

/// Arguments of `gitplane bench generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The directory to write the repository to (created; must be empty).
    pub dir: PathBuf,
    /// Applications.
    #[arg(long, default_value_t = 200)]
    pub apps: usize,
    /// The repository's shape.
    #[arg(long, value_enum, default_value_t = Shape::Platform)]
    pub shape: Shape,
}

/// The name of app `i`.
pub fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

/// The namespace app `i` deploys to.
pub fn namespace_of(shape: Shape, i: usize) -> String {
    match shape {
        Shape::Plain => app_name(i),
        Shape::Platform | Shape::Helm => format!("team-{:02}", i / APPS_PER_TEAM),
    }
}

/// The file of app `i` that [`overlay`] writes.
pub fn app_file(shape: Shape) -> &'static str {
    match shape {
        Shape::Plain | Shape::Platform => "kustomization.yaml",
        Shape::Helm => "values.yaml",
    }
}

/// Runs `gitplane bench generate`.
pub fn run(args: &GenerateArgs) -> Result<ExitCode> {
    if args.dir.exists() && std::fs::read_dir(&args.dir)?.next().is_some() {
        bail!("{} is not empty", args.dir.display());
    }
    std::fs::create_dir_all(&args.dir)?;
    write_repo(&args.dir, args.apps, args.shape)?;
    println!(
        "{} apps ({:?} shape) in {}; try: gitplane up --repo {}",
        args.apps,
        args.shape,
        args.dir.display(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .context("running git")?;
    if !status.success() {
        bail!("git {} failed", args.join(" "));
    }
    Ok(())
}

/// App `i`'s overlay (its values file in the helm shape): its namespace
/// and instance label, and (to see a commit reach the cluster) an optional
/// annotation.
pub fn overlay(shape: Shape, i: usize, annotation: Option<&str>) -> String {
    if shape == Shape::Helm {
        return helm_values(i, annotation);
    }
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {}\nresources:\n- ../base\n",
        namespace_of(shape, i)
    );
    match shape {
        Shape::Plain => text.push_str(&format!(
            "labels:\n- pairs:\n    app.kubernetes.io/instance: {}\n",
            app_name(i)
        )),
        // Apps share namespaces: their names and selectors must differ.
        Shape::Platform | Shape::Helm => text.push_str(&format!(
            "namePrefix: {}-\nlabels:\n- pairs:\n    app.kubernetes.io/instance: {}\n  includeSelectors: true\n",
            app_name(i),
            app_name(i)
        )),
    }
    if let Some(value) = annotation {
        text.push_str(&format!(
            "commonAnnotations:\n  bench/revision: \"{value}\"\n"
        ));
    }
    text
}

/// App `i`'s values in the helm shape: its own replicas, image and log
/// level; the annotation as a value.
fn helm_values(i: usize, annotation: Option<&str>) -> String {
    let mut text = format!(
        "replicas: {}\nimage:\n  tag: 1.{}.0\nlogLevel: {}\n",
        2 + i % 3,
        i % 7,
        ["info", "debug", "warn"][i % 3]
    );
    if let Some(value) = annotation {
        text.push_str(&format!("revision: \"{value}\"\n"));
    }
    text
}

/// The object whose annotation [`overlay`] sets, in app 0: (kind, namespace,
/// name).
pub fn probe(shape: Shape) -> (&'static str, String, String) {
    match shape {
        Shape::Plain => ("ConfigMap", namespace_of(shape, 0), "svc-0".into()),
        Shape::Platform | Shape::Helm => (
            "ConfigMap",
            namespace_of(shape, 0),
            format!("{}-settings", app_name(0)),
        ),
    }
}

/// The shared chart of the helm shape: the platform's objects, named after
/// the release, with the values each app sets.
const SERVICE_CHART: [(&str, &str); 8] = [
    (
        "Chart.yaml",
        "apiVersion: v2\nname: service\nversion: 1.0.0\n",
    ),
    (
        "values.yaml",
        "replicas: 2\nimage:\n  repository: ghcr.io/example/web\n  tag: 1.0.0\nlogLevel: info\nrevision: \"\"\n",
    ),
    (
        "templates/_helpers.tpl",
        "{{- define \"service.labels\" -}}\napp.kubernetes.io/name: service\napp.kubernetes.io/instance: {{ .Release.Name }}\n{{- end }}\n{{- define \"service.annotations\" -}}\n{{- with .Values.revision }}\nannotations:\n  bench/revision: {{ . | quote }}\n{{- end }}\n{{- end }}\n",
    ),
    (
        "templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n  labels:\n    {{- include \"service.labels\" . | nindent 4 }}\n  {{- include \"service.annotations\" . | nindent 2 }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels:\n      {{- include \"service.labels\" . | nindent 6 }}\n  template:\n    metadata:\n      labels:\n        {{- include \"service.labels\" . | nindent 8 }}\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n        ports:\n        - containerPort: 8080\n        envFrom:\n        - configMapRef:\n            name: {{ .Release.Name }}-settings\n        resources:\n          requests: {cpu: 100m, memory: 128Mi}\n          limits: {cpu: 500m, memory: 256Mi}\n",
    ),
    (
        "templates/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-web\n  labels:\n    {{- include \"service.labels\" . | nindent 4 }}\nspec:\n  selector:\n    {{- include \"service.labels\" . | nindent 4 }}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n",
    ),
    (
        "templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n  labels:\n    {{- include \"service.labels\" . | nindent 4 }}\n  {{- include \"service.annotations\" . | nindent 2 }}\ndata:\n  LOG_LEVEL: {{ .Values.logLevel | quote }}\n",
    ),
    (
        "templates/hpa.yaml",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: {{ .Release.Name }}-web\n  minReplicas: {{ .Values.replicas }}\n  maxReplicas: {{ add .Values.replicas 2 }}\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 70\n",
    ),
    (
        "templates/pdb.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      {{- include \"service.labels\" . | nindent 6 }}\n",
    ),
];

/// Where app `i`'s Application points: its path, and its `helm` options.
fn app_source(shape: Shape, i: usize) -> String {
    match shape {
        Shape::Plain | Shape::Platform => format!("path: apps/{}", app_name(i)),
        Shape::Helm => format!(
            "path: charts/service\n    helm:\n      releaseName: {name}\n      valueFiles: [/apps/{name}/values.yaml]",
            name = app_name(i)
        ),
    }
}

const PLATFORM_BASE: [(&str, &str); 6] = [
    (
        "kustomization.yaml",
        "resources:\n- deployment.yaml\n- service.yaml\n- configmap.yaml\n- hpa.yaml\n- pdb.yaml\n",
    ),
    (
        "deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: ghcr.io/example/web:1.0.0\n        ports:\n        - containerPort: 8080\n        envFrom:\n        - configMapRef:\n            name: settings\n        resources:\n          requests: {cpu: 100m, memory: 128Mi}\n          limits: {cpu: 500m, memory: 256Mi}\n",
    ),
    (
        "service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n",
    ),
    (
        "configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  LOG_LEVEL: info\n",
    ),
    (
        "hpa.yaml",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: web\n  minReplicas: 2\n  maxReplicas: 4\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 70\n",
    ),
    (
        "pdb.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: web\n",
    ),
];

/// Writes the repository and commits it.
pub fn write_repo(repo: &Path, apps: usize, shape: Shape) -> Result<()> {
    let base = repo.join("apps/base");
    match shape {
        Shape::Plain => {
            write_app(&base, 6)?;
            std::fs::write(
                base.join("kustomization.yaml"),
                "resources:\n- objects.yaml\n",
            )?;
        }
        Shape::Platform => {
            std::fs::create_dir_all(&base)?;
            for (file, text) in PLATFORM_BASE {
                std::fs::write(base.join(file), text)?;
            }
        }
        Shape::Helm => {
            let chart = repo.join("charts/service");
            std::fs::create_dir_all(chart.join("templates"))?;
            for (file, text) in SERVICE_CHART {
                std::fs::write(chart.join(file), text)?;
            }
        }
    }
    std::fs::create_dir_all(repo.join("bootstrap"))?;
    for i in 0..apps {
        let dir = repo.join(format!("apps/{}", app_name(i)));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(app_file(shape)), overlay(shape, i, None))?;
        let app = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    {source}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {namespace}\n  syncPolicy:\n    automated: {{prune: true, selfHeal: true}}\n    syncOptions: [CreateNamespace=true]\n",
            name = app_name(i),
            url = repo.display(),
            source = app_source(shape, i),
            namespace = namespace_of(shape, i),
        );
        std::fs::write(repo.join(format!("bootstrap/{}.yaml", app_name(i))), app)?;
    }
    git(repo, &["init", "-q", "-b", "main"])?;
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-qm", "bench"])
}
