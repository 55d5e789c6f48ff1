//! Which fields each transformer touches, per kind: kustomize's built-in
//! transformer configuration, extended by a kustomization's `configurations`
//! files and `crds`. The defaults below are facts about the Kubernetes API (where
//! pod templates, selectors and name references live), written as tables.

use serde::Deserialize;

use super::fieldspec::FieldSpec;
use super::file::FieldSpecArgs;

/// A kind other objects refer to by name, and the fields that refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameReference {
    /// Group of the referred kind (empty: any).
    pub group: String,
    /// Version of the referred kind (empty: any).
    pub version: String,
    /// The referred kind.
    pub kind: String,
    /// The fields that hold its name.
    pub referrers: Vec<FieldSpec>,
}

/// The field specs of every built-in transformer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformerConfig {
    /// `namePrefix` / `nameSuffix`.
    pub name_affix: Vec<FieldSpec>,
    /// `namespace`.
    pub namespace: Vec<FieldSpec>,
    /// `commonLabels` and `labels` with `includeSelectors`.
    pub common_labels: Vec<FieldSpec>,
    /// `labels` with `includeTemplates`.
    pub template_labels: Vec<FieldSpec>,
    /// `commonAnnotations`.
    pub common_annotations: Vec<FieldSpec>,
    /// Name references fixed after renames.
    pub name_references: Vec<NameReference>,
    /// `images`.
    pub images: Vec<FieldSpec>,
    /// `replicas`.
    pub replicas: Vec<FieldSpec>,
}

/// Kinds with a pod template at `spec/template` (besides CronJob's job template).
const TEMPLATED: [(&str, &str); 6] = [
    ("", "ReplicationController"),
    ("", "Deployment"),
    ("", "ReplicaSet"),
    ("", "DaemonSet"),
    ("apps", "StatefulSet"),
    ("batch", "Job"),
];

const AFFINITY_SELECTORS: [&str; 5] = [
    "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
];

fn spec(group: &str, kind: &str, path: &str, create: bool) -> FieldSpec {
    let version = if group.is_empty() && matches!(kind, "ReplicationController" | "Service") {
        "v1"
    } else {
        ""
    };
    FieldSpec::new(group, version, kind, path, create)
}

/// Labels on objects and their pod (and job, and claim) templates, not selectors.
fn template_label_specs() -> Vec<FieldSpec> {
    let mut out = vec![FieldSpec::any("metadata/labels", true)];
    for (group, kind) in TEMPLATED {
        out.push(spec(group, kind, "spec/template/metadata/labels", true));
        if kind == "StatefulSet" {
            out.push(spec(
                group,
                kind,
                "spec/volumeClaimTemplates[]/metadata/labels",
                true,
            ));
        }
    }
    out.push(spec(
        "batch",
        "CronJob",
        "spec/jobTemplate/metadata/labels",
        true,
    ));
    out.push(spec(
        "batch",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/labels",
        true,
    ));
    out
}

/// Labels everywhere `commonLabels` puts them: templates and selectors.
fn common_label_specs() -> Vec<FieldSpec> {
    let mut out = template_label_specs();
    out.push(spec("", "Service", "spec/selector", true));
    out.push(spec("", "ReplicationController", "spec/selector", true));
    for (group, kind) in [
        ("", "Deployment"),
        ("", "ReplicaSet"),
        ("", "DaemonSet"),
        ("apps", "StatefulSet"),
    ] {
        out.push(spec(group, kind, "spec/selector/matchLabels", true));
    }
    for kind in ["Deployment", "StatefulSet"] {
        for path in AFFINITY_SELECTORS {
            out.push(spec("apps", kind, path, false));
        }
    }
    out.push(spec("batch", "Job", "spec/selector/matchLabels", false));
    out.push(spec(
        "batch",
        "CronJob",
        "spec/jobTemplate/spec/selector/matchLabels",
        false,
    ));
    out.push(spec(
        "policy",
        "PodDisruptionBudget",
        "spec/selector/matchLabels",
        false,
    ));
    for path in [
        "spec/podSelector/matchLabels",
        "spec/ingress/from/podSelector/matchLabels",
        "spec/egress/to/podSelector/matchLabels",
    ] {
        out.push(spec("networking.k8s.io", "NetworkPolicy", path, false));
    }
    out
}

fn common_annotation_specs() -> Vec<FieldSpec> {
    let mut out = vec![FieldSpec::any("metadata/annotations", true)];
    for (group, kind) in TEMPLATED {
        out.push(spec(
            group,
            kind,
            "spec/template/metadata/annotations",
            true,
        ));
    }
    out.push(spec(
        "batch",
        "CronJob",
        "spec/jobTemplate/metadata/annotations",
        true,
    ));
    out.push(spec(
        "batch",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/annotations",
        true,
    ));
    out
}

/// Where each workload kind keeps its pod spec.
const POD_SPECS: [(&str, &str); 8] = [
    ("Pod", "spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("ReplicationController", "spec/template/spec"),
];

/// Referrers inside pod specs: `fields` under the pod spec of each of `kinds`.
fn in_pod_specs(kinds: &[&str], fields: &[&str]) -> Vec<FieldSpec> {
    let mut out = Vec::new();
    for (kind, prefix) in POD_SPECS {
        if !kinds.contains(&kind) {
            continue;
        }
        for field in fields {
            out.push(FieldSpec::new(
                "",
                "",
                kind,
                &format!("{prefix}/{field}"),
                false,
            ));
        }
    }
    out
}

fn kinds_fields(entries: &[(&str, &str, &str)]) -> Vec<FieldSpec> {
    entries
        .iter()
        .map(|(group, kind, path)| FieldSpec::new(group, "", kind, path, false))
        .collect()
}

fn reference(group: &str, version: &str, kind: &str, referrers: Vec<FieldSpec>) -> NameReference {
    NameReference {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        referrers,
    }
}

const WORKLOADS_BUT_RC: [&str; 7] = [
    "Pod",
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "CronJob",
];
const WORKLOADS_BUT_RS: [&str; 7] = [
    "Pod",
    "StatefulSet",
    "Deployment",
    "ReplicationController",
    "CronJob",
    "Job",
    "DaemonSet",
];

fn name_reference_specs() -> Vec<NameReference> {
    let scalers = [
        "Deployment",
        "ReplicationController",
        "ReplicaSet",
        "StatefulSet",
    ]
    .map(|kind| {
        reference(
            "",
            "",
            kind,
            kinds_fields(&[("", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name")]),
        )
    });
    let mut config_map = in_pod_specs(
        &WORKLOADS_BUT_RC,
        &[
            "volumes/configMap/name",
            "containers/env/valueFrom/configMapKeyRef/name",
            "initContainers/env/valueFrom/configMapKeyRef/name",
            "containers/envFrom/configMapRef/name",
            "initContainers/envFrom/configMapRef/name",
            "volumes/projected/sources/configMap/name",
        ],
    );
    config_map.extend(kinds_fields(&[
        ("", "Node", "spec/configSource/configMap"),
        ("", "Role", "rules/resourceNames"),
        ("", "ClusterRole", "rules/resourceNames"),
        (
            "",
            "Ingress",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
        ),
        (
            "serving.knative.dev",
            "Service",
            "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name",
        ),
        (
            "serving.knative.dev",
            "Service",
            "spec/template/spec/containers/envFrom/configMapRef/name",
        ),
    ]));
    let mut secret = in_pod_specs(
        &WORKLOADS_BUT_RC,
        &[
            "volumes/secret/secretName",
            "containers/env/valueFrom/secretKeyRef/name",
            "initContainers/env/valueFrom/secretKeyRef/name",
            "containers/envFrom/secretRef/name",
            "initContainers/envFrom/secretRef/name",
            "imagePullSecrets/name",
            "volumes/projected/sources/secret/name",
        ],
    );
    secret.extend(kinds_fields(&[
        ("", "Ingress", "spec/tls/secretName"),
        (
            "",
            "Ingress",
            "metadata/annotations/ingress.kubernetes.io\\/auth-secret",
        ),
        (
            "",
            "Ingress",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret",
        ),
        (
            "",
            "Ingress",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret",
        ),
        ("", "ServiceAccount", "imagePullSecrets/name"),
        ("", "StorageClass", "parameters/secretName"),
        ("", "StorageClass", "parameters/adminSecretName"),
        ("", "StorageClass", "parameters/userSecretName"),
        ("", "StorageClass", "parameters/secretRef"),
        ("", "Role", "rules/resourceNames"),
        ("", "ClusterRole", "rules/resourceNames"),
        (
            "serving.knative.dev",
            "Service",
            "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
        ),
        ("", "PersistentVolume", "spec/azureFile/secretName"),
    ]));
    let service = kinds_fields(&[
        ("apps", "StatefulSet", "spec/serviceName"),
        ("", "Ingress", "spec/rules/http/paths/backend/serviceName"),
        ("", "Ingress", "spec/backend/serviceName"),
        ("", "Ingress", "spec/rules/http/paths/backend/service/name"),
        ("", "Ingress", "spec/defaultBackend/service/name"),
        ("apiregistration.k8s.io", "APIService", "spec/service/name"),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            "webhooks/clientConfig/service",
        ),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
            "webhooks/clientConfig/service",
        ),
    ]);
    let rbac = "rbac.authorization.k8s.io";
    let mut service_account = kinds_fields(&[
        (rbac, "RoleBinding", "subjects"),
        (rbac, "ClusterRoleBinding", "subjects"),
    ]);
    service_account.extend(in_pod_specs(&WORKLOADS_BUT_RS, &["serviceAccountName"]));
    let mut out: Vec<NameReference> = scalers.into_iter().collect();
    out.extend([
        reference("", "v1", "ConfigMap", config_map),
        reference("", "v1", "Secret", secret),
        reference("", "v1", "Service", service),
        reference(
            rbac,
            "",
            "Role",
            kinds_fields(&[(rbac, "RoleBinding", "roleRef/name")]),
        ),
        reference(
            rbac,
            "",
            "ClusterRole",
            kinds_fields(&[
                (rbac, "RoleBinding", "roleRef/name"),
                (rbac, "ClusterRoleBinding", "roleRef/name"),
            ]),
        ),
        reference("", "v1", "ServiceAccount", service_account),
        reference(
            "",
            "v1",
            "PersistentVolumeClaim",
            in_pod_specs(
                &WORKLOADS_BUT_RS,
                &["volumes/persistentVolumeClaim/claimName"],
            ),
        ),
        reference(
            "",
            "v1",
            "PersistentVolume",
            kinds_fields(&[
                ("", "PersistentVolumeClaim", "spec/volumeName"),
                ("", "ClusterRole", "rules/resourceNames"),
            ]),
        ),
        reference(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            kinds_fields(&[
                ("", "PersistentVolume", "spec/storageClassName"),
                ("", "PersistentVolumeClaim", "spec/storageClassName"),
                (
                    "",
                    "StatefulSet",
                    "spec/volumeClaimTemplates/spec/storageClassName",
                ),
            ]),
        ),
        reference(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            in_pod_specs(&WORKLOADS_BUT_RS, &["priorityClassName"]),
        ),
        reference(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            kinds_fields(&[("", "Ingress", "spec/ingressClassName")]),
        ),
    ]);
    out
}

impl Default for TransformerConfig {
    fn default() -> Self {
        let image_paths = [
            "spec/containers[]/image",
            "spec/initContainers[]/image",
            "spec/template/spec/containers[]/image",
            "spec/template/spec/initContainers[]/image",
        ];
        TransformerConfig {
            name_affix: vec![FieldSpec::any("metadata/name", false)],
            namespace: vec![
                FieldSpec::new(
                    "apiregistration.k8s.io",
                    "",
                    "APIService",
                    "spec/service/namespace",
                    true,
                ),
                FieldSpec::new(
                    "apiextensions.k8s.io",
                    "",
                    "CustomResourceDefinition",
                    "spec/conversion/webhook/clientConfig/service/namespace",
                    false,
                ),
            ],
            common_labels: common_label_specs(),
            template_labels: template_label_specs(),
            common_annotations: common_annotation_specs(),
            name_references: name_reference_specs(),
            images: image_paths
                .iter()
                .map(|p| FieldSpec::any(p, false))
                .collect(),
            replicas: [
                "Deployment",
                "ReplicationController",
                "ReplicaSet",
                "StatefulSet",
            ]
            .iter()
            .map(|k| FieldSpec::new("", "", k, "spec/replicas", true))
            .collect(),
        }
    }
}

/// A `configurations` file: extra field specs for custom kinds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigurationFile {
    #[serde(default)]
    name_prefix: Vec<FieldSpecArgs>,
    #[serde(default)]
    name_suffix: Vec<FieldSpecArgs>,
    #[serde(default)]
    namespace: Vec<FieldSpecArgs>,
    #[serde(default)]
    common_labels: Vec<FieldSpecArgs>,
    #[serde(default)]
    template_labels: Vec<FieldSpecArgs>,
    #[serde(default)]
    common_annotations: Vec<FieldSpecArgs>,
    #[serde(default)]
    name_reference: Vec<NameReferenceArgs>,
    #[serde(default)]
    images: Vec<FieldSpecArgs>,
    #[serde(default)]
    replicas: Vec<FieldSpecArgs>,
    /// Only used by `vars`, which gitplane refuses; accepted so that such files load.
    #[serde(default, rename = "varReference")]
    _var_reference: serde::de::IgnoredAny,
}

/// A `nameReference` entry of a configurations file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameReferenceArgs {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    field_specs: Vec<FieldSpecArgs>,
}

fn merge_specs(into: &mut Vec<FieldSpec>, extra: impl IntoIterator<Item = FieldSpec>) {
    for spec in extra {
        if !into.iter().any(|s| s.same_target(&spec)) {
            into.push(spec);
        }
    }
}

impl TransformerConfig {
    /// The built-in configuration, built once and shared.
    pub fn shared_default() -> std::sync::Arc<TransformerConfig> {
        static DEFAULT: std::sync::OnceLock<std::sync::Arc<TransformerConfig>> =
            std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| std::sync::Arc::new(TransformerConfig::default()))
            .clone()
    }

    /// Adds the field specs of a `configurations` file.
    pub fn merge_file(&mut self, file: &ConfigurationFile) {
        let specs =
            |args: &[FieldSpecArgs]| args.iter().map(FieldSpec::from_args).collect::<Vec<_>>();
        merge_specs(&mut self.name_affix, specs(&file.name_prefix));
        merge_specs(&mut self.name_affix, specs(&file.name_suffix));
        merge_specs(&mut self.namespace, specs(&file.namespace));
        merge_specs(&mut self.common_labels, specs(&file.common_labels));
        merge_specs(&mut self.template_labels, specs(&file.template_labels));
        merge_specs(
            &mut self.common_annotations,
            specs(&file.common_annotations),
        );
        merge_specs(&mut self.images, specs(&file.images));
        merge_specs(&mut self.replicas, specs(&file.replicas));
        for r in &file.name_reference {
            self.add_name_reference(reference(
                &r.group,
                &r.version,
                &r.kind,
                specs(&r.field_specs),
            ));
        }
    }

    /// Adds referrers of a kind (merging with an existing entry for that kind).
    pub fn add_name_reference(&mut self, extra: NameReference) {
        match self
            .name_references
            .iter_mut()
            .find(|r| r.kind == extra.kind && r.group == extra.group && r.version == extra.version)
        {
            Some(existing) => merge_specs(&mut existing.referrers, extra.referrers),
            None => self.name_references.push(extra),
        }
    }

    /// Merges another configuration (from a sub-kustomization) into this one.
    pub fn merge(&mut self, other: &TransformerConfig) {
        merge_specs(&mut self.name_affix, other.name_affix.clone());
        merge_specs(&mut self.namespace, other.namespace.clone());
        merge_specs(&mut self.common_labels, other.common_labels.clone());
        merge_specs(&mut self.template_labels, other.template_labels.clone());
        merge_specs(
            &mut self.common_annotations,
            other.common_annotations.clone(),
        );
        merge_specs(&mut self.images, other.images.clone());
        merge_specs(&mut self.replicas, other.replicas.clone());
        for r in &other.name_references {
            self.add_name_reference(r.clone());
        }
    }
}
