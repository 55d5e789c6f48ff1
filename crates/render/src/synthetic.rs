//! A synthetic platform repository for benchmarks: N services, each a
//! Kustomize base (Deployment, Service, ServiceAccount, HPA, PodDisruptionBudget
//! and a generated ConfigMap) plus a `prod` overlay with a prefix, labels, an
//! image override, a strategic merge patch, a JSON 6902 patch and a merged
//! generator; a top kustomization lists every overlay. About six objects per
//! service, the shape of a real platform repository.

use std::fs;
use std::io;
use std::path::Path;

/// Writes the platform under `dir`; returns the directory to render.
pub fn write_synthetic_platform(dir: &Path, services: usize) -> io::Result<std::path::PathBuf> {
    let mut top = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for i in 0..services {
        let name = format!("svc{i:04}");
        write_service(&dir.join("services").join(&name), &name, i)?;
        top.push_str(&format!("- services/{name}/overlays/prod\n"));
    }
    fs::write(dir.join("kustomization.yaml"), top)?;
    Ok(dir.to_path_buf())
}

fn write_service(dir: &Path, name: &str, index: usize) -> io::Result<()> {
    let base = dir.join("base");
    let prod = dir.join("overlays/prod");
    fs::create_dir_all(&base)?;
    fs::create_dir_all(&prod)?;
    fs::write(
        base.join("kustomization.yaml"),
        format!(
            "resources:\n- deployment.yaml\n- service.yaml\n- rbac.yaml\n- scaling.yaml\nconfigMapGenerator:\n- name: {name}-config\n  literals:\n  - LOG_LEVEL=info\n  - SERVICE_NAME={name}\n  - PORT=8080\nlabels:\n- pairs:\n    app.kubernetes.io/name: {name}\n  includeSelectors: true\n"
        ),
    )?;
    fs::write(
        base.join("deployment.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: {name}\n      securityContext:\n        runAsNonRoot: true\n      containers:\n      - name: app\n        image: registry.example.com/team{team}/{name}:1.0.{index}\n        ports:\n        - containerPort: 8080\n          name: http\n        envFrom:\n        - configMapRef:\n            name: {name}-config\n        readinessProbe:\n          httpGet:\n            path: /healthz\n            port: http\n        resources:\n          requests:\n            cpu: 100m\n            memory: 128Mi\n",
            team = index % 10
        ),
    )?;
    fs::write(
        base.join("service.yaml"),
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - name: http\n    port: 80\n    targetPort: http\n"
        ),
    )?;
    fs::write(
        base.join("rbac.yaml"),
        format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n"),
    )?;
    fs::write(
        base.join("scaling.yaml"),
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: {name}\n  minReplicas: 2\n  maxReplicas: 10\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 70\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {name}\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: {name}\n"
        ),
    )?;
    fs::write(
        prod.join("kustomization.yaml"),
        format!(
            "resources:\n- ../../base\nnamespace: team{team}-prod\nnamePrefix: prod-\ncommonLabels:\n  env: prod\ncommonAnnotations:\n  owner: team{team}\nimages:\n- name: registry.example.com/team{team}/{name}\n  newTag: 2.0.{index}\nconfigMapGenerator:\n- name: {name}-config\n  behavior: merge\n  literals:\n  - LOG_LEVEL=warn\npatches:\n- path: resources.yaml\n- target:\n    kind: HorizontalPodAutoscaler\n  patch: |-\n    - op: replace\n      path: /spec/maxReplicas\n      value: 20\n",
            team = index % 10
        ),
    )?;
    fs::write(
        prod.join("resources.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: app\n        resources:\n          limits:\n            cpu: \"1\"\n            memory: 512Mi\n"
        ),
    )?;
    Ok(())
}
