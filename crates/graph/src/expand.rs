//! An instance expanded into the objects its graph stands for.
//!
//! The resources are visited in dependency order. For each: its
//! `includeWhen` decides whether it exists (a resource that depends on an
//! excluded one is excluded too), its `forEach` iterators make a collection
//! (their cartesian product), and its template's expressions are evaluated
//! with `schema` (the instance), the resources before it and the iterators.
//!
//! Expressions that read another resource read what [`Observed`] holds for
//! it: the live object when a controller expands against a cluster, the
//! desired object when expanding offline. A reference to a field that is
//! not there (a `status` only the cluster will write) leaves the resource
//! [`Outcome::Unresolved`], with the path it waits for: never invented.

use gitplane_cel::{Activation, CelError, Program};
use gitplane_object::{Object, split_api_version};
use serde_json::{Map, Value as Json, json};

use crate::error::{GraphError, Location};
use crate::openapi::{apply_defaults, validate};
use crate::rgd::{Body, Graph, Resource, Scope};
use crate::template::{Field, FieldError, FieldPath, remove_all, set_at};

/// Most objects one collection may hold (as kro).
pub const MAX_COLLECTION_SIZE: usize = 1000;

/// What the cluster holds, as far as an expansion needs to know.
pub trait Observed {
    /// The live object for a desired one, if it exists. `None` when
    /// expanding offline: then the desired object stands in for it.
    fn live(&self, desired: &Object) -> Option<Option<Json>>;
    /// An external object by name (`namespace` unset for cluster-scoped).
    fn external(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Json>;
    /// External objects by label selector.
    fn select(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &Json,
    ) -> Option<Vec<Json>>;
    /// Whether objects of a kind live in namespaces.
    fn is_namespaced(&self, api_version: &str, kind: &str) -> bool {
        !is_cluster_scoped_builtin(api_version, kind)
    }
}

/// Kinds known to be cluster-scoped without asking a cluster.
pub fn is_cluster_scoped_builtin(api_version: &str, kind: &str) -> bool {
    let (group, _) = split_api_version(api_version);
    matches!(
        (group, kind),
        ("", "Namespace" | "Node" | "PersistentVolume")
            | (
                "rbac.authorization.k8s.io",
                "ClusterRole" | "ClusterRoleBinding"
            )
            | (
                "storage.k8s.io",
                "StorageClass" | "CSIDriver" | "CSINode" | "VolumeAttachment"
            )
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("scheduling.k8s.io", "PriorityClass")
            | ("networking.k8s.io", "IngressClass")
            | ("node.k8s.io", "RuntimeClass")
            | ("apiregistration.k8s.io", "APIService")
            | (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration"
                    | "MutatingWebhookConfiguration"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            )
            | ("kyverno.io", "ClusterPolicy")
            | ("wgpolicyk8s.io", "ClusterPolicyReport")
            | ("cert-manager.io", "ClusterIssuer")
            | ("kro.run", "ResourceGraphDefinition")
    )
}

/// Offline: no cluster; external refs are looked up among the objects
/// rendered alongside the instance.
pub struct Offline<'a> {
    /// The objects rendered with the instance.
    pub objects: &'a [Object],
}

impl Observed for Offline<'_> {
    fn live(&self, _desired: &Object) -> Option<Option<Json>> {
        None
    }

    fn external(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Json> {
        self.objects
            .iter()
            .find(|o| {
                o.is_of(api_version, kind)
                    && o.name() == name
                    && (namespace.is_none() || o.namespace() == namespace)
            })
            .map(Object::to_value)
    }

    fn select(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &Json,
    ) -> Option<Vec<Json>> {
        let selector = gitplane_object::LabelSelector::from_json(selector).ok()?;
        let selected =
            gitplane_object::select(self.objects, api_version, kind, namespace, &selector);
        Some(selected.into_iter().map(Object::to_value).collect())
    }
}

/// A reference an expression could not resolve yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The field whose expression waits (`template.spec.host`, `readyWhen[0]`).
    pub field: String,
    /// The expression.
    pub expression: String,
    /// What it waits for (`deployment.status.availableReplicas`, or a
    /// resource that does not exist yet).
    pub waits_for: String,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.expression.is_empty() {
            write!(f, "waits for {}", self.waits_for)
        } else {
            write!(
                f,
                "{}: `{}` waits for {}",
                self.field, self.expression, self.waits_for
            )
        }
    }
}

/// What became of one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Objects to apply (one, or a collection's items).
    Desired(Vec<Object>),
    /// Objects read from the cluster for an `externalRef`.
    External(Vec<Json>),
    /// Not part of this instance (`includeWhen` false, or depends on an
    /// excluded resource); the reason says which.
    Excluded(String),
    /// Waits for data that is not there yet.
    Unresolved(Vec<Unresolved>),
}

/// One resource of the expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The resource id.
    pub id: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// An expanded instance.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The instance with the schema's defaults filled in.
    pub instance: Object,
    /// Every resource, in dependency order.
    pub nodes: Vec<Node>,
    /// The status fields that could be evaluated.
    pub status: Map<String, Json>,
    /// The status fields that could not (yet).
    pub unresolved_status: Vec<Unresolved>,
    /// What each resource id stood for in the expressions (the live object,
    /// or the list of a collection's), for the custom conditions.
    pub bound: Map<String, Json>,
}

impl Expansion {
    /// Every object to apply, in dependency order.
    pub fn desired(&self) -> Vec<&Object> {
        self.nodes
            .iter()
            .flat_map(|n| match &n.outcome {
                Outcome::Desired(objects) => objects.iter().collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Every unresolved reference, resources first.
    pub fn unresolved(&self) -> Vec<(&str, &Unresolved)> {
        let mut out: Vec<(&str, &Unresolved)> = Vec::new();
        for node in &self.nodes {
            if let Outcome::Unresolved(items) = &node.outcome {
                out.extend(items.iter().map(|u| (node.id.as_str(), u)));
            }
        }
        out.extend(self.unresolved_status.iter().map(|u| ("status", u)));
        out
    }
}

/// Whether an object is an instance of the graph.
pub fn is_instance(graph: &Graph, object: &Object) -> bool {
    object.kind() == graph.schema.kind && object.api_version() == graph.schema.api_version()
}

/// The instance with its spec defaulted and validated against the schema.
pub fn prepare_instance(graph: &Graph, instance: &Object) -> Result<Object, GraphError> {
    let mut instance = instance.clone();
    let mut spec = instance
        .get(&["spec"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    apply_defaults(&mut spec, &graph.schema.spec.openapi);
    let mut problems = Vec::new();
    validate(&spec, &graph.schema.spec.openapi, "spec", &mut problems);
    if graph.schema.scope == Scope::Namespaced && instance.namespace().is_none() {
        problems.push("metadata.namespace: required (the kind is namespaced)".to_string());
    }
    if !problems.is_empty() {
        return Err(GraphError::InvalidInstance {
            kind: graph.schema.kind.clone(),
            name: instance_name(&instance),
            problems,
        });
    }
    instance.set(&["spec"], spec);
    Ok(instance)
}

fn instance_name(instance: &Object) -> String {
    match instance.namespace() {
        Some(ns) => format!("{ns}/{}", instance.name()),
        None => instance.name().to_string(),
    }
}

/// Expands an instance: every resource's outcome, in dependency order, and
/// the status. Errors are mistakes no later state can fix: an invalid
/// instance, an expression that fails on data that is there, a string
/// template part that is not a string.
pub fn expand(
    graph: &Graph,
    instance: &Object,
    observed: &dyn Observed,
) -> Result<Expansion, GraphError> {
    let instance = prepare_instance(graph, instance)?;
    let mut activation = Activation::new();
    activation.set_json("schema", &schema_variable(&instance));
    let mut expander = Expander {
        graph,
        instance: &instance,
        observed,
        activation,
        bound: Map::new(),
        states: vec![State::Pending; graph.resources.len()],
    };
    let mut nodes = Vec::with_capacity(graph.resources.len());
    for &index in &graph.order {
        let outcome = expander.expand_resource(index)?;
        nodes.push(Node {
            id: graph.resources[index].id.clone(),
            outcome,
        });
    }
    let (status, unresolved_status) = expander.project_status()?;
    let bound = expander.bound;
    Ok(Expansion {
        instance,
        nodes,
        status,
        unresolved_status,
        bound,
    })
}

/// kro's custom conditions of an expanded instance, given kro's own
/// conditions (which `runtime.condition(schema, …)` reads). A condition
/// whose expression cannot be evaluated yet (a resource not there) is left
/// out; one that fails is an error naming it.
pub fn custom_conditions(
    graph: &Graph,
    expansion: &Expansion,
    builtin: &[Json],
) -> Result<Vec<Json>, String> {
    if graph.schema.custom_conditions.is_empty() {
        return Ok(Vec::new());
    }
    let mut schema = schema_variable(&expansion.instance);
    schema["status"] = json!({"conditions": builtin});
    let mut activation = Activation::new();
    activation.set_json("schema", &schema);
    for (id, value) in &expansion.bound {
        activation.set_json(id, value);
    }
    let mut out = Vec::new();
    for (path, field) in &graph.schema.custom_conditions {
        let waits = field.programs().iter().any(|p| {
            p.variables()
                .iter()
                .any(|v| v != "schema" && !expansion.bound.contains_key(v))
        });
        if waits {
            continue;
        }
        match field.evaluate(&activation) {
            Ok(Some(condition)) if condition.get("type").is_some() => out.push(condition),
            Ok(_) => {
                return Err(format!(
                    "{path}: not a condition (use runtime.newCondition)"
                ));
            }
            Err(FieldError::Cel(source, e)) => return Err(format!("{path}: `{source}`: {e}")),
            Err(FieldError::NotAString(source, _)) => {
                return Err(format!("{path}: `{source}`: not a condition"));
            }
        }
    }
    Ok(out)
}

/// `schema` in expressions: the instance's apiVersion, kind, metadata, spec.
fn schema_variable(instance: &Object) -> Json {
    json!({
        "apiVersion": instance.api_version(),
        "kind": instance.kind(),
        "metadata": instance.get(&["metadata"]).cloned().unwrap_or_else(|| json!({})),
        "spec": instance.get(&["spec"]).cloned().unwrap_or_else(|| json!({})),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Pending,
    /// Its data is bound in the activation.
    Bound,
    Excluded,
    /// Dependents must wait for it (it does not exist yet, or its own
    /// expressions wait).
    Waiting,
}

struct Expander<'a> {
    graph: &'a Graph,
    instance: &'a Object,
    observed: &'a dyn Observed,
    activation: Activation,
    /// The data bound for each resource id, as JSON (to tell which field
    /// an expression read is missing).
    bound: Map<String, Json>,
    states: Vec<State>,
}

/// Why an evaluation did not produce a value.
enum Failed {
    Waits(Unresolved),
    Error(Box<GraphError>),
}

impl Failed {
    fn error(error: GraphError) -> Failed {
        Failed::Error(Box::new(error))
    }
}

impl Expander<'_> {
    fn location(&self, resource: &Resource, field: &str, expression: &str) -> Location {
        Location {
            graph: self.graph.name.clone(),
            resource: Some(resource.id.clone()),
            field: Some(field.to_string()),
            expression: Some(expression.to_string()),
        }
    }

    fn expand_resource(&mut self, index: usize) -> Result<Outcome, GraphError> {
        let resource = &self.graph.resources[index];
        if let Some(&dep) = resource
            .dependencies
            .iter()
            .find(|&&d| self.states[d] == State::Excluded)
        {
            self.states[index] = State::Excluded;
            return Ok(Outcome::Excluded(format!(
                "depends on {:?}, which is excluded",
                self.graph.resources[dep].id
            )));
        }
        let waiting: Vec<Unresolved> = resource
            .dependencies
            .iter()
            .filter(|&&d| self.states[d] == State::Waiting)
            .map(|&d| Unresolved {
                field: "dependencies".to_string(),
                expression: String::new(),
                waits_for: self.graph.resources[d].id.clone(),
            })
            .collect();
        if !waiting.is_empty() {
            self.states[index] = State::Waiting;
            return Ok(Outcome::Unresolved(waiting));
        }
        match self.included(resource) {
            Err(Failed::Waits(unresolved)) => {
                self.states[index] = State::Waiting;
                return Ok(Outcome::Unresolved(vec![unresolved]));
            }
            Err(Failed::Error(e)) => return Err(*e),
            Ok(Some(reason)) => {
                self.states[index] = State::Excluded;
                return Ok(Outcome::Excluded(reason));
            }
            Ok(None) => {}
        }
        let combinations = match self.iterations(resource) {
            Ok(c) => c,
            Err(Failed::Waits(unresolved)) => {
                self.states[index] = State::Waiting;
                return Ok(Outcome::Unresolved(vec![unresolved]));
            }
            Err(Failed::Error(e)) => return Err(*e),
        };
        let mut objects = Vec::with_capacity(combinations.len());
        let mut unresolved = Vec::new();
        let size = combinations.len();
        for (position, bindings) in combinations.into_iter().enumerate() {
            let mut activation = self.activation.clone();
            for (name, value) in &bindings {
                activation.set_json(name, value);
            }
            match self.render_template(resource, &activation) {
                Ok(value) => objects.push(value),
                Err(Failed::Waits(u)) => unresolved.push(u),
                Err(Failed::Error(e)) => return Err(*e),
            }
            if let (Body::Template, Some(last)) = (&resource.body, objects.last_mut()) {
                let collection = (!resource.for_each.is_empty()).then_some((position, size));
                *last = self.finish_object(resource, last.clone(), collection)?;
            }
        }
        if !unresolved.is_empty() {
            self.states[index] = State::Waiting;
            return Ok(Outcome::Unresolved(unresolved));
        }
        match resource.body {
            Body::Template => self.bind_template(index, objects),
            Body::External { by_selector } => self.bind_external(index, objects, by_selector),
        }
    }

    /// `None` when every includeWhen holds, else why the resource is excluded.
    fn included(&self, resource: &Resource) -> Result<Option<String>, Failed> {
        for (i, program) in resource.include_when.iter().enumerate() {
            let field = format!("includeWhen[{i}]");
            match self.evaluate(resource, &field, program, &self.activation)? {
                Json::Bool(true) => {}
                Json::Bool(false) => return Ok(Some(format!("{field} is false"))),
                other => {
                    return Err(Failed::error(GraphError::Evaluation {
                        location: self.location(resource, &field, program.source()),
                        message: format!(
                            "must be a bool, found {}",
                            crate::template::type_name(&other)
                        ),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The iterator bindings of each collection item (one empty binding for
    /// a plain resource).
    fn iterations(&self, resource: &Resource) -> Result<Vec<Vec<(String, Json)>>, Failed> {
        let mut combinations: Vec<Vec<(String, Json)>> = vec![Vec::new()];
        for (i, (name, program)) in resource.for_each.iter().enumerate() {
            let field = format!("forEach[{i}]");
            let values = match self.evaluate(resource, &field, program, &self.activation)? {
                Json::Array(values) => values,
                other => {
                    return Err(Failed::error(GraphError::Evaluation {
                        location: self.location(resource, &field, program.source()),
                        message: format!(
                            "must be a list, found {}",
                            crate::template::type_name(&other)
                        ),
                    }));
                }
            };
            let total = combinations.len().saturating_mul(values.len());
            if total > MAX_COLLECTION_SIZE {
                return Err(Failed::error(GraphError::Evaluation {
                    location: self.location(resource, &field, program.source()),
                    message: format!(
                        "the collection would have {total} items; at most {MAX_COLLECTION_SIZE}"
                    ),
                }));
            }
            let mut next = Vec::with_capacity(total);
            for combination in &combinations {
                for value in &values {
                    let mut bindings = combination.clone();
                    bindings.push((name.clone(), value.clone()));
                    next.push(bindings);
                }
            }
            combinations = next;
        }
        Ok(combinations)
    }

    /// The template with its expressions evaluated.
    fn render_template(
        &self,
        resource: &Resource,
        activation: &Activation,
    ) -> Result<Object, Failed> {
        let mut value = resource.template.clone();
        let base = match resource.body {
            Body::Template => "template",
            Body::External { .. } => "externalRef",
        };
        let mut omitted = Vec::new();
        for (path, field) in &resource.fields {
            match self.evaluate_field(resource, &format!("{base}.{path}"), field, activation)? {
                Some(result) => set_at(&mut value, &path.0, result),
                None => omitted.push(path.0.clone()),
            }
        }
        remove_all(&mut value, omitted);
        match value {
            Json::Object(body) => Ok(Object::new(body)),
            _ => Err(Failed::error(GraphError::Evaluation {
                location: self.location(resource, base, ""),
                message: "the template must be a mapping".to_string(),
            })),
        }
    }

    /// The desired object with the instance's namespace (where it has none
    /// and its kind is namespaced) and kro's ownership labels.
    fn finish_object(
        &self,
        resource: &Resource,
        mut object: Object,
        collection: Option<(usize, usize)>,
    ) -> Result<Object, GraphError> {
        if object.name().is_empty() && object.str_at(&["metadata", "generateName"]).is_none() {
            return Err(GraphError::Evaluation {
                location: self.location(resource, "template.metadata.name", ""),
                message: "the object has no name".to_string(),
            });
        }
        if object.namespace().is_none()
            && let Some(namespace) = self.instance.namespace()
            && self
                .observed
                .is_namespaced(object.api_version(), object.kind())
        {
            object.set_namespace(namespace);
        }
        for (key, value) in ownership_labels(self.graph, self.instance, &resource.id) {
            object.set_label(key, &value);
        }
        if let Some((index, size)) = collection {
            object.set_label("kro.run/collection-index", &index.to_string());
            object.set_label("kro.run/collection-size", &size.to_string());
        }
        Ok(object)
    }

    fn bind_template(&mut self, index: usize, objects: Vec<Object>) -> Result<Outcome, GraphError> {
        let resource = &self.graph.resources[index];
        let mut bound = Vec::with_capacity(objects.len());
        let mut missing = false;
        for object in &objects {
            match self.observed.live(object) {
                None => bound.push(object.to_value()),
                Some(Some(live)) => bound.push(live),
                Some(None) => missing = true,
            }
        }
        if missing {
            self.states[index] = State::Waiting;
        } else {
            let value = if resource.is_collection() {
                Json::Array(bound)
            } else {
                bound.pop().unwrap_or(Json::Null)
            };
            self.activation.set_json(&resource.id, &value);
            self.bound.insert(resource.id.clone(), value);
            self.states[index] = State::Bound;
        }
        Ok(Outcome::Desired(objects))
    }

    fn bind_external(
        &mut self,
        index: usize,
        refs: Vec<Object>,
        by_selector: bool,
    ) -> Result<Outcome, GraphError> {
        let resource = &self.graph.resources[index];
        let Some(reference) = refs.into_iter().next() else {
            return Ok(Outcome::External(Vec::new()));
        };
        let namespace = reference.namespace().map(str::to_string).or_else(|| {
            self.observed
                .is_namespaced(reference.api_version(), reference.kind())
                .then(|| self.instance.namespace().map(str::to_string))
                .flatten()
        });
        let found = if by_selector {
            let selector = reference
                .get(&["metadata", "selector"])
                .cloned()
                .unwrap_or(Json::Null);
            self.observed
                .select(
                    reference.api_version(),
                    reference.kind(),
                    namespace.as_deref(),
                    &selector,
                )
                .map(Json::Array)
        } else {
            self.observed.external(
                reference.api_version(),
                reference.kind(),
                namespace.as_deref(),
                reference.name(),
            )
        };
        match found {
            Some(value) => {
                self.activation.set_json(&resource.id, &value);
                self.bound.insert(resource.id.clone(), value.clone());
                self.states[index] = State::Bound;
                Ok(Outcome::External(match value {
                    Json::Array(items) => items,
                    single => vec![single],
                }))
            }
            None => {
                self.states[index] = State::Waiting;
                let target = match &namespace {
                    Some(ns) => format!("{} {ns}/{}", reference.kind(), reference.name()),
                    None => format!("{} {}", reference.kind(), reference.name()),
                };
                Ok(Outcome::Unresolved(vec![Unresolved {
                    field: "externalRef".to_string(),
                    expression: String::new(),
                    waits_for: format!("{target} to exist"),
                }]))
            }
        }
    }

    fn evaluate(
        &self,
        resource: &Resource,
        field: &str,
        program: &Program,
        activation: &Activation,
    ) -> Result<Json, Failed> {
        program
            .evaluate_json(activation)
            .map_err(|e| self.failure(resource, field, program, e))
    }

    fn evaluate_field(
        &self,
        resource: &Resource,
        field_name: &str,
        field: &Field,
        activation: &Activation,
    ) -> Result<Option<Json>, Failed> {
        field.evaluate(activation).map_err(|e| match e {
            FieldError::Cel(source, error) => {
                let program = field.programs().into_iter().find(|p| p.source() == source);
                match program {
                    Some(program) => self.failure(resource, field_name, program, error),
                    None => Failed::error(GraphError::Evaluation {
                        location: self.location(resource, field_name, &source),
                        message: error.to_string(),
                    }),
                }
            }
            FieldError::NotAString(source, found) => Failed::error(GraphError::Evaluation {
                location: self.location(resource, field_name, &source),
                message: format!(
                    "a part of a string template must be a string, found {found} (wrap it in string(…))"
                ),
            }),
        })
    }

    /// An evaluation error as "waits for data" when it read a resource
    /// field that is not there, else as an error.
    fn failure(
        &self,
        resource: &Resource,
        field: &str,
        program: &Program,
        error: CelError,
    ) -> Failed {
        if let CelError::Evaluation(_) = &error
            && let Some(missing) = missing_resource_path(program, self.graph, &self.bound)
        {
            return Failed::Waits(Unresolved {
                field: field.to_string(),
                expression: program.source().to_string(),
                waits_for: missing,
            });
        }
        Failed::error(GraphError::Evaluation {
            location: self.location(resource, field, program.source()),
            message: error.to_string(),
        })
    }

    fn project_status(&self) -> Result<(Map<String, Json>, Vec<Unresolved>), GraphError> {
        let mut status = match &self.graph.schema.status_template {
            Json::Object(fields) => Json::Object(fields.clone()),
            _ => Json::Object(Map::new()),
        };
        let mut unresolved = Vec::new();
        let mut missing_paths: Vec<FieldPath> = Vec::new();
        let pseudo = Resource {
            id: "status".to_string(),
            body: Body::Template,
            template: Json::Null,
            fields: Vec::new(),
            ready_when: Vec::new(),
            include_when: Vec::new(),
            for_each: Vec::new(),
            dependencies: Vec::new(),
        };
        for (path, field) in &self.graph.schema.status_fields {
            // Paths start with `status`.
            let inner = &path.0[1..];
            let unavailable = field
                .programs()
                .iter()
                .flat_map(|p| p.variables())
                .find(|v| {
                    self.graph
                        .index_of(v)
                        .is_some_and(|i| self.states[i] != State::Bound)
                });
            if let Some(id) = unavailable {
                unresolved.push(Unresolved {
                    field: path.to_string(),
                    expression: field.source(),
                    waits_for: id.clone(),
                });
                missing_paths.push(FieldPath(inner.to_vec()));
                continue;
            }
            match self.evaluate_field(
                &pseudo,
                &format!("spec.schema.{path}"),
                field,
                &self.activation,
            ) {
                Ok(Some(value)) => set_at(&mut status, inner, value),
                Ok(None) => missing_paths.push(FieldPath(inner.to_vec())),
                Err(Failed::Waits(u)) => {
                    unresolved.push(u);
                    missing_paths.push(FieldPath(inner.to_vec()));
                }
                Err(Failed::Error(e)) => return Err(*e),
            }
        }
        remove_all(
            &mut status,
            missing_paths.into_iter().map(|p| p.0).collect(),
        );
        match status {
            Json::Object(fields) => Ok((fields, unresolved)),
            _ => Ok((Map::new(), unresolved)),
        }
    }
}

/// The labels kro puts on every object it creates for an instance: the
/// instance's identity (`kro.run/instance-*`, the namespace only for a
/// namespaced graph), `app.kubernetes.io/managed-by: kro`, the node id, and
/// the labels of [`instance_labels`].
pub fn ownership_labels(
    graph: &Graph,
    instance: &Object,
    node_id: &str,
) -> Vec<(&'static str, String)> {
    let mut labels = vec![
        ("kro.run/instance-name", instance.name().to_string()),
        ("kro.run/instance-group", graph.schema.group.clone()),
        ("kro.run/instance-version", graph.schema.version.clone()),
        ("kro.run/instance-kind", graph.schema.kind.clone()),
        ("app.kubernetes.io/managed-by", "kro".to_string()),
        ("kro.run/node-id", node_id.to_string()),
    ];
    if graph.schema.scope == Scope::Namespaced {
        labels.push((
            "kro.run/instance-namespace",
            instance.namespace().unwrap_or_default().to_string(),
        ));
    }
    if let Some(uid) = instance.str_at(&["metadata", "uid"]) {
        labels.push(("kro.run/instance-id", uid.to_string()));
    }
    labels.extend(instance_labels(graph));
    labels
}

/// The labels kro puts on an instance (and on the CRD of its graph):
/// `kro.run/owned`, `kro.run/kro-version` and the graph's name and uid.
pub fn instance_labels(graph: &Graph) -> Vec<(&'static str, String)> {
    let mut labels = vec![
        ("kro.run/owned", "true".to_string()),
        (
            "kro.run/kro-version",
            format!("gitplane-{}", env!("CARGO_PKG_VERSION")),
        ),
        ("kro.run/resource-graph-definition-name", graph.name.clone()),
    ];
    if let Some(uid) = &graph.uid {
        labels.push(("kro.run/resource-graph-definition-id", uid.clone()));
    }
    labels
}

/// The first path the program reads from a resource that the bound data
/// lacks, printed (`deployment.status.availableReplicas`).
fn missing_resource_path(
    program: &Program,
    graph: &Graph,
    bound: &Map<String, Json>,
) -> Option<String> {
    for path in program.field_paths() {
        let Some(root) = path.first() else { continue };
        if graph.index_of(root).is_none() {
            continue;
        }
        let Some(mut node) = bound.get(root) else {
            return Some(path.join("."));
        };
        for (depth, step) in path.iter().enumerate().skip(1) {
            let next = match node {
                Json::Object(fields) => fields.get(step),
                Json::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(child) => node = child,
                None => return Some(path[..=depth].join(".")),
            }
        }
    }
    None
}
