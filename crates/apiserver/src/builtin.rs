//! The built-in kinds. Names, scope, group and version come from k8s-openapi's
//! `Resource` trait and the schemas from its schemars implementation, so they are
//! the upstream API's; this file adds what the API's discovery also publishes
//! (short names, categories, subresources).

use std::sync::Arc;

use serde_json::Value;

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, autoscaling::v2 as autoscaling,
    batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, networking::v1 as networking, policy::v1 as policy,
    rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;

use crate::registry::{ResourceType, ScaleSubresource};

/// Whether a k8s-openapi scope is namespaced.
trait Scope {
    const NAMESPACED: bool;
}
impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

struct Extra {
    short_names: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
    generation: bool,
}

const PLAIN: Extra = Extra {
    short_names: &[],
    all: false,
    status: false,
    scale: false,
    generation: false,
};

/// k8s-openapi describes apiextensions' `JSON` (a CRD schema's `default`,
/// `example` and `enum` values) as an object; upstream's OpenAPI lets it be any
/// value, which `default: blue` needs.
fn allow_any_json(schema: &mut Value) {
    const JSON: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON";
    if let Some(Value::Object(def)) = schema.pointer_mut(&format!("/$defs/{JSON}")) {
        def.shift_remove("type");
        def.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
}

fn def<T>(extra: Extra) -> ResourceType
where
    T: k8s_openapi::Resource + schemars::JsonSchema,
    T::Scope: Scope,
{
    let schema = serde_json::to_value(schemars::schema_for!(T))
        .ok()
        .map(|mut schema| {
            allow_any_json(&mut schema);
            Arc::new(schema)
        });
    let scale = extra.scale.then(|| ScaleSubresource {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: Some(".status.selector".into()),
    });
    ResourceType {
        group: T::GROUP.to_string(),
        versions: vec![T::VERSION.to_string()],
        kind: T::KIND.to_string(),
        list_kind: format!("{}List", T::KIND),
        plural: T::URL_PATH_SEGMENT.to_string(),
        singular: T::KIND.to_lowercase(),
        namespaced: <T::Scope as Scope>::NAMESPACED,
        short_names: extra.short_names.iter().map(|s| s.to_string()).collect(),
        categories: if extra.all {
            vec!["all".to_string()]
        } else {
            Vec::new()
        },
        status_subresource: extra.status,
        scale,
        tracks_generation: extra.generation || extra.status,
        schema,
        schema_name: T::schema_name().to_string(),
        printer_columns: Vec::new(),
        crd: None,
    }
}

const WORKLOAD: Extra = Extra {
    short_names: &[],
    all: true,
    status: true,
    scale: true,
    generation: true,
};

/// Every built-in type.
pub fn types() -> Vec<ResourceType> {
    vec![
        def::<core::Namespace>(Extra {
            short_names: &["ns"],
            status: true,
            ..PLAIN
        }),
        def::<core::ConfigMap>(Extra {
            short_names: &["cm"],
            ..PLAIN
        }),
        def::<core::Secret>(PLAIN),
        def::<core::Service>(Extra {
            short_names: &["svc"],
            all: true,
            status: true,
            ..PLAIN
        }),
        def::<core::ServiceAccount>(Extra {
            short_names: &["sa"],
            ..PLAIN
        }),
        def::<core::Pod>(Extra {
            short_names: &["po"],
            all: true,
            status: true,
            ..PLAIN
        }),
        def::<core::PersistentVolumeClaim>(Extra {
            short_names: &["pvc"],
            status: true,
            ..PLAIN
        }),
        def::<core::PersistentVolume>(Extra {
            short_names: &["pv"],
            status: true,
            ..PLAIN
        }),
        def::<core::Endpoints>(Extra {
            short_names: &["ep"],
            ..PLAIN
        }),
        def::<core::Event>(Extra {
            short_names: &["ev"],
            ..PLAIN
        }),
        def::<core::LimitRange>(Extra {
            short_names: &["limits"],
            ..PLAIN
        }),
        def::<core::ResourceQuota>(Extra {
            short_names: &["quota"],
            status: true,
            ..PLAIN
        }),
        def::<core::ReplicationController>(Extra {
            short_names: &["rc"],
            ..WORKLOAD
        }),
        def::<core::Node>(Extra {
            short_names: &["no"],
            status: true,
            ..PLAIN
        }),
        def::<apps::Deployment>(Extra {
            short_names: &["deploy"],
            ..WORKLOAD
        }),
        def::<apps::ReplicaSet>(Extra {
            short_names: &["rs"],
            ..WORKLOAD
        }),
        def::<apps::StatefulSet>(Extra {
            short_names: &["sts"],
            ..WORKLOAD
        }),
        def::<apps::DaemonSet>(Extra {
            short_names: &["ds"],
            scale: false,
            ..WORKLOAD
        }),
        def::<apps::ControllerRevision>(PLAIN),
        def::<batch::Job>(Extra {
            scale: false,
            ..WORKLOAD
        }),
        def::<batch::CronJob>(Extra {
            short_names: &["cj"],
            scale: false,
            ..WORKLOAD
        }),
        def::<networking::Ingress>(Extra {
            short_names: &["ing"],
            status: true,
            ..PLAIN
        }),
        def::<networking::IngressClass>(PLAIN),
        def::<networking::NetworkPolicy>(Extra {
            short_names: &["netpol"],
            generation: true,
            ..PLAIN
        }),
        def::<policy::PodDisruptionBudget>(Extra {
            short_names: &["pdb"],
            status: true,
            ..PLAIN
        }),
        def::<autoscaling::HorizontalPodAutoscaler>(Extra {
            short_names: &["hpa"],
            all: true,
            status: true,
            ..PLAIN
        }),
        def::<rbac::Role>(PLAIN),
        def::<rbac::ClusterRole>(PLAIN),
        def::<rbac::RoleBinding>(PLAIN),
        def::<rbac::ClusterRoleBinding>(PLAIN),
        def::<apiextensions::CustomResourceDefinition>(Extra {
            short_names: &["crd", "crds"],
            status: true,
            ..PLAIN
        }),
        def::<admission::ValidatingWebhookConfiguration>(PLAIN),
        def::<admission::MutatingWebhookConfiguration>(PLAIN),
        def::<admission::ValidatingAdmissionPolicy>(Extra {
            status: true,
            ..PLAIN
        }),
        def::<admission::ValidatingAdmissionPolicyBinding>(Extra {
            generation: true,
            ..PLAIN
        }),
        def::<coordination::Lease>(PLAIN),
        def::<discovery::EndpointSlice>(PLAIN),
        def::<storage::StorageClass>(Extra {
            short_names: &["sc"],
            ..PLAIN
        }),
        def::<scheduling::PriorityClass>(Extra {
            short_names: &["pc"],
            ..PLAIN
        }),
    ]
}
