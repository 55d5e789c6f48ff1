//! A ResourceGraphDefinition (`kro.run/v1alpha1`) read, checked and
//! compiled into a [`Graph`]: every expression parsed once, every
//! reference resolved to a resource or the schema, and the resources put in
//! dependency order.

use std::sync::Arc;

use gitplane_cel::{Env, Program};
use gitplane_object::Object;
use serde_json::{Map, Value as Json};

use crate::dag;
use crate::error::{GraphError, Location};
use crate::simpleschema::{SpecSchema, spec_to_openapi};
use crate::template::{Field, FieldPath, Step, compile_string, compile_value};

/// `kro.run`.
pub const KRO_GROUP: &str = "kro.run";
/// `kro.run/v1alpha1`.
pub const RGD_API_VERSION: &str = "kro.run/v1alpha1";
/// `ResourceGraphDefinition`.
pub const RGD_KIND: &str = "ResourceGraphDefinition";
/// The annotation that lets a graph change its schema incompatibly.
pub const ALLOW_BREAKING_CHANGES: &str = "kro.run/allow-breaking-changes";

/// Names a resource id may not take (they mean something in expressions or
/// in kro's own vocabulary).
const RESERVED_IDS: &[&str] = &[
    // kro's words.
    "apiVersion",
    "context",
    "dependency",
    "dependencies",
    "each",
    "externalRef",
    "externalReference",
    "externalRefs",
    "externalReferences",
    "graph",
    "graphengine",
    "instance",
    "item",
    "items",
    "kind",
    "kro",
    "metadata",
    "namespace",
    "object",
    "resource",
    "resourcegraphdefinition",
    "resourceGraphDefinition",
    "resources",
    "root",
    "runtime",
    "schema",
    "self",
    "serviceAccountName",
    "spec",
    "status",
    "this",
    "variables",
    "vars",
    "version",
    // CEL's reserved symbols.
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "return",
    "var",
    "void",
    "while",
];

/// Whether the instance kind is namespaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Instances live in a namespace (the default).
    Namespaced,
    /// Instances are cluster-wide.
    Cluster,
}

/// The instance API a graph defines.
#[derive(Debug, Clone)]
pub struct InstanceSchema {
    /// `v1alpha1`.
    pub version: String,
    /// `WebApp`.
    pub kind: String,
    /// `kro.run` unless set.
    pub group: String,
    /// Namespaced or cluster-wide.
    pub scope: Scope,
    /// The OpenAPI of `spec` and its printer columns.
    pub spec: SpecSchema,
    /// `status` as written (expressions included).
    pub status_template: Json,
    /// The expressions of `status`, by path (`status.url`).
    pub status_fields: Vec<(FieldPath, Field)>,
    /// kro's custom conditions: the `${runtime.newCondition(…)}` entries of
    /// `status.conditions`, evaluated once kro's own conditions are known
    /// (see [`crate::custom_conditions`]).
    pub custom_conditions: Vec<(FieldPath, Field)>,
    /// `additionalPrinterColumns`, as written.
    pub printer_columns: Vec<Json>,
    /// `shortNames`.
    pub short_names: Vec<String>,
    /// `categories`.
    pub categories: Vec<String>,
    /// `metadata` for the CRD (labels, annotations).
    pub crd_metadata: Json,
}

impl InstanceSchema {
    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

/// What a resource stands for.
#[derive(Debug, Clone)]
pub enum Body {
    /// An object the graph creates from a template.
    Template,
    /// An existing object the graph reads but never changes or deletes:
    /// by name (one object) or by label selector (a list).
    External {
        /// Whether it selects by labels (and so is a list).
        by_selector: bool,
    },
}

/// One entry of `spec.resources`.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Its id, the name other expressions refer to it by.
    pub id: String,
    /// Created from a template, or read from the cluster.
    pub body: Body,
    /// The template (for an external ref: `{apiVersion, kind, metadata}`).
    pub template: Json,
    /// The template's expressions, by path.
    pub fields: Vec<(FieldPath, Field)>,
    /// All must be true for the resource to be ready.
    pub ready_when: Vec<Arc<Program>>,
    /// All must be true for the resource to exist.
    pub include_when: Vec<Arc<Program>>,
    /// Iterators: each makes one dimension of a collection.
    pub for_each: Vec<(String, Arc<Program>)>,
    /// Indexes of the resources this one refers to.
    pub dependencies: Vec<usize>,
}

impl Resource {
    /// Whether this resource stands for a list of objects.
    pub fn is_collection(&self) -> bool {
        !self.for_each.is_empty() || matches!(self.body, Body::External { by_selector: true })
    }
}

/// A compiled ResourceGraphDefinition.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The RGD's name.
    pub name: String,
    /// The RGD's uid, when it came from a cluster.
    pub uid: Option<String>,
    /// The instance API.
    pub schema: InstanceSchema,
    /// The resources, in declaration order.
    pub resources: Vec<Resource>,
    /// Indexes into `resources`, in the order they are applied.
    pub order: Vec<usize>,
    /// Whether `kro.run/allow-breaking-changes: "true"` is set.
    pub allow_breaking_changes: bool,
}

impl Graph {
    /// Whether an object is a ResourceGraphDefinition.
    pub fn is_rgd(object: &Object) -> bool {
        object.kind() == RGD_KIND && object.api_version() == RGD_API_VERSION
    }

    /// Reads and checks a ResourceGraphDefinition, compiling its expressions
    /// in `env`.
    pub fn compile(object: &Object, env: &Env) -> Result<Graph, GraphError> {
        let name = object.name().to_string();
        let at = |field: &str| Location {
            graph: name.clone(),
            field: Some(field.to_string()),
            ..Location::default()
        };
        let spec = object
            .get(&["spec"])
            .and_then(Json::as_object)
            .ok_or_else(|| GraphError::invalid(at("spec"), "missing"))?;
        let schema = compile_schema(spec.get("schema"), &name, env)?;
        let resources_json = match spec.get("resources") {
            Some(Json::Array(items)) => items.as_slice(),
            None => &[],
            Some(_) => return Err(GraphError::invalid(at("spec.resources"), "must be a list")),
        };
        let mut ids: Vec<String> = Vec::with_capacity(resources_json.len());
        for (i, resource) in resources_json.iter().enumerate() {
            let id = resource
                .get("id")
                .and_then(Json::as_str)
                .unwrap_or_default();
            check_id(id)
                .map_err(|m| GraphError::invalid(at(&format!("spec.resources[{i}].id")), m))?;
            if ids.iter().any(|existing| existing == id) {
                return Err(GraphError::invalid(
                    at(&format!("spec.resources[{i}].id")),
                    format!("duplicate resource id {id:?}"),
                ));
            }
            ids.push(id.to_string());
        }
        let mut resources = Vec::with_capacity(ids.len());
        for (i, resource) in resources_json.iter().enumerate() {
            resources.push(compile_resource(resource, i, &ids, &schema, &name, env)?);
        }
        check_status_references(&schema, &ids, &name)?;
        for resource in &resources {
            check_no_runtime(resource, &name)?;
        }
        let dependencies: Vec<Vec<usize>> =
            resources.iter().map(|r| r.dependencies.clone()).collect();
        let order = dag::topological_order(&dependencies).map_err(|cycle| GraphError::Cycle {
            graph: name.clone(),
            cycle: cycle.iter().map(|&i| ids[i].clone()).collect(),
        })?;
        Ok(Graph {
            uid: object.str_at(&["metadata", "uid"]).map(str::to_string),
            allow_breaking_changes: object.annotation(ALLOW_BREAKING_CHANGES) == Some("true"),
            name,
            schema,
            resources,
            order,
        })
    }

    /// The resource ids in the order they are applied.
    pub fn topological_order(&self) -> Vec<&str> {
        self.order
            .iter()
            .map(|&i| self.resources[i].id.as_str())
            .collect()
    }

    /// Indexes of resources in the order they are deleted: groups whose
    /// members can go together, dependents before their dependencies.
    pub fn deletion_layers(&self) -> Vec<Vec<usize>> {
        let dependencies: Vec<Vec<usize>> = self
            .resources
            .iter()
            .map(|r| r.dependencies.clone())
            .collect();
        dag::deletion_layers(&dependencies, &self.order)
    }

    /// The index of a resource by id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.resources.iter().position(|r| r.id == id)
    }
}

fn check_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let well_formed = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if !well_formed {
        return Err(format!(
            "{id:?} is not a valid resource id (lowerCamelCase: a lowercase letter, then letters and digits)"
        ));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(format!(
            "{id:?} is a reserved word and cannot be a resource id"
        ));
    }
    Ok(())
}

/// kro's rules for `shortNames` and `categories` (from its CRD): at most 32,
/// each a lowercase DNS label of at most 63 characters, no repeats.
fn check_names(names: &[String]) -> Result<(), String> {
    if names.len() > 32 {
        return Err(format!("at most 32 entries, found {}", names.len()));
    }
    for (i, name) in names.iter().enumerate() {
        let well_formed = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            return Err(format!(
                "{name:?} is not valid (lowercase letters, digits and '-', starting with a letter, at most 63)"
            ));
        }
        if names[..i].contains(name) {
            return Err(format!("{name:?} is listed twice"));
        }
    }
    Ok(())
}

fn compile_schema(
    schema: Option<&Json>,
    graph: &str,
    env: &Env,
) -> Result<InstanceSchema, GraphError> {
    let at = |field: &str| Location {
        graph: graph.to_string(),
        field: Some(format!("spec.schema.{field}")),
        ..Location::default()
    };
    let schema = schema
        .and_then(Json::as_object)
        .ok_or_else(|| GraphError::invalid(at("").with_field("spec.schema"), "missing"))?;
    let text = |key: &str| {
        schema
            .get(key)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let kind = text("kind");
    if !is_kind(&kind) {
        return Err(GraphError::invalid(
            at("kind"),
            format!(
                "{kind:?} is not a valid kind (an uppercase letter, then up to 62 letters and digits)"
            ),
        ));
    }
    let version = text("apiVersion");
    if !is_version(&version) {
        return Err(GraphError::invalid(
            at("apiVersion"),
            format!("{version:?} is not a valid version (like v1, v1alpha1, v2beta3)"),
        ));
    }
    let group = match text("group") {
        g if g.is_empty() => KRO_GROUP.to_string(),
        g => g,
    };
    let scope = match text("scope").as_str() {
        "" | "Namespaced" => Scope::Namespaced,
        "Cluster" => Scope::Cluster,
        other => {
            return Err(GraphError::invalid(
                at("scope"),
                format!("must be Namespaced or Cluster, found {other:?}"),
            ));
        }
    };
    let spec = spec_to_openapi(
        schema.get("spec").unwrap_or(&Json::Null),
        schema.get("types"),
    )
    .map_err(|m| GraphError::invalid(at("spec"), m))?;
    let mut status_template = schema
        .get("status")
        .cloned()
        .unwrap_or(Json::Object(Map::new()));
    let mut status_fields = Vec::new();
    compile_value(
        &status_template,
        &FieldPath(vec![Step::Key("status".into())]),
        env,
        &mut status_fields,
    )
    .map_err(|(path, source, message)| GraphError::Invalid {
        location: Location {
            graph: graph.to_string(),
            field: Some(format!("spec.schema.{path}")),
            expression: Some(source),
            ..Location::default()
        },
        message,
    })?;
    // `status.conditions` holds kro's custom conditions, not fields.
    let is_condition =
        |path: &FieldPath| matches!(path.0.get(1), Some(Step::Key(k)) if k == "conditions");
    let (custom_conditions, status_fields): (Vec<_>, Vec<_>) = status_fields
        .into_iter()
        .partition(|(path, _)| is_condition(path));
    if let Json::Object(fields) = &mut status_template {
        fields.shift_remove("conditions");
    }
    for (path, field) in &status_fields {
        if field
            .programs()
            .iter()
            .any(|p| p.calls_namespace("runtime"))
        {
            return Err(GraphError::invalid(
                at(&path.to_string()),
                "runtime is only available in schema.status.conditions",
            ));
        }
    }
    let strings = |key: &str| -> Vec<String> {
        schema
            .get(key)
            .and_then(Json::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_names = strings("shortNames");
    let categories = strings("categories");
    for (key, names) in [("shortNames", &short_names), ("categories", &categories)] {
        check_names(names).map_err(|m| GraphError::invalid(at(key), m))?;
    }
    Ok(InstanceSchema {
        version,
        kind,
        group,
        scope,
        spec,
        status_template,
        status_fields,
        custom_conditions,
        printer_columns: schema
            .get("additionalPrinterColumns")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default(),
        short_names,
        categories,
        crd_metadata: schema.get("metadata").cloned().unwrap_or(Json::Null),
    })
}

impl Location {
    fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }
}

fn is_kind(kind: &str) -> bool {
    let mut chars = kind.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && kind.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric())
}

fn is_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let tail = &rest[digits..];
    tail.is_empty()
        || ["alpha", "beta"].iter().any(|stage| {
            tail.strip_prefix(stage)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
}

/// What an expression in a resource may refer to.
struct References<'a> {
    ids: &'a [String],
    own: usize,
    iterators: Vec<String>,
}

fn compile_resource(
    resource: &Json,
    index: usize,
    ids: &[String],
    schema: &InstanceSchema,
    graph: &str,
    env: &Env,
) -> Result<Resource, GraphError> {
    let id = ids[index].clone();
    let location = |field: String, expression: Option<String>| Location {
        graph: graph.to_string(),
        resource: Some(id.clone()),
        field: Some(field),
        expression,
    };
    let invalid = |field: &str, message: String| {
        GraphError::invalid(location(field.to_string(), None), message)
    };
    let (body, template) = match (resource.get("template"), resource.get("externalRef")) {
        (Some(template), None) => {
            if !template.get("apiVersion").is_some_and(Json::is_string)
                || !template.get("kind").is_some_and(Json::is_string)
            {
                return Err(invalid(
                    "template",
                    "must set apiVersion and kind".to_string(),
                ));
            }
            (Body::Template, template.clone())
        }
        (None, Some(external)) => {
            external_template(external).map_err(|m| invalid("externalRef", m))?
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "",
                "sets both template and externalRef; use one".to_string(),
            ));
        }
        (None, None) => {
            return Err(invalid(
                "",
                "needs a template or an externalRef".to_string(),
            ));
        }
    };
    if matches!(body, Body::External { .. }) && resource.get("forEach").is_some() {
        return Err(invalid(
            "forEach",
            "cannot be used with externalRef".to_string(),
        ));
    }
    if let Some(Json::Object(labels)) = template.get("metadata").and_then(|m| m.get("labels"))
        && let Some(key) = labels
            .keys()
            .find(|k| k.starts_with("kro.run/") || k.starts_with("internal.kro.run/"))
    {
        return Err(invalid(
            "template.metadata.labels",
            format!(
                "the label {key:?} is reserved: labels under kro.run/ are set by the controller"
            ),
        ));
    }
    let base = match body {
        Body::Template => "template",
        Body::External { .. } => "externalRef",
    };
    let mut fields = Vec::new();
    compile_value(&template, &FieldPath::default(), env, &mut fields).map_err(
        |(path, source, message)| {
            GraphError::invalid(location(format!("{base}.{path}"), Some(source)), message)
        },
    )?;
    let condition = |key: &str| -> Result<Vec<(String, Arc<Program>)>, GraphError> {
        let items = match resource.get(key) {
            None => return Ok(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(_) => return Err(invalid(key, "must be a list of expressions".to_string())),
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("{key}[{i}]");
            let program = standalone(item, env)
                .map_err(|(source, m)| GraphError::invalid(location(field.clone(), source), m))?;
            out.push((field, program));
        }
        Ok(out)
    };
    let include_when = condition("includeWhen")?;
    let ready_when = condition("readyWhen")?;
    let for_each = compile_for_each(resource.get("forEach"), env)
        .map_err(|(field, source, m)| GraphError::invalid(location(field, source), m))?;
    let scope = References {
        ids,
        own: index,
        iterators: for_each.iter().map(|(name, _, _)| name.clone()).collect(),
    };
    let mut dependencies = Vec::new();
    let mut check =
        |field: String, program: &Arc<Program>, allowed: Allowed| -> Result<(), GraphError> {
            check_references(program, &scope, allowed, schema, &mut dependencies).map_err(|m| {
                GraphError::invalid(location(field, Some(program.source().to_string())), m)
            })
        };
    for (path, field) in &fields {
        for program in field.programs() {
            check(format!("{base}.{path}"), program, Allowed::Template)?;
        }
    }
    for (field, program) in &include_when {
        check(field.clone(), program, Allowed::Condition)?;
    }
    for (name, field, program) in &for_each {
        if ids.contains(name) || name == "schema" {
            return Err(invalid(
                field,
                format!("the iterator {name:?} shadows a resource id or schema"),
            ));
        }
        check(field.clone(), program, Allowed::Condition)?;
    }
    let collection = !for_each.is_empty() || matches!(body, Body::External { by_selector: true });
    for (field, program) in &ready_when {
        check(field.clone(), program, Allowed::ReadyWhen { collection })?;
    }
    dependencies.sort_unstable();
    dependencies.dedup();
    Ok(Resource {
        id,
        body,
        template,
        fields,
        ready_when: ready_when.into_iter().map(|(_, p)| p).collect(),
        include_when: include_when.into_iter().map(|(_, p)| p).collect(),
        for_each: for_each.into_iter().map(|(name, _, p)| (name, p)).collect(),
        dependencies,
    })
}

/// An externalRef as the template of the object it reads.
fn external_template(external: &Json) -> Result<(Body, Json), String> {
    let api_version = external.get("apiVersion").and_then(Json::as_str);
    let kind = external.get("kind").and_then(Json::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err("must set apiVersion and kind".to_string());
    };
    let metadata = external.get("metadata").cloned().unwrap_or(Json::Null);
    let by_name = metadata.get("name").is_some();
    let by_selector = metadata.get("selector").is_some();
    if by_name == by_selector {
        return Err("metadata must set exactly one of name and selector".to_string());
    }
    let template =
        serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": metadata});
    Ok((Body::External { by_selector }, template))
}

/// `"${expr}"` as a program; anything else is an error.
fn standalone(item: &Json, env: &Env) -> Result<Arc<Program>, (Option<String>, String)> {
    let Some(text) = item.as_str() else {
        return Err((None, "must be an expression like ${…}".to_string()));
    };
    match compile_string(text, env).map_err(|(s, m)| (Some(s), m))? {
        Some(Field::Standalone(program)) => Ok(program),
        _ => Err((
            Some(text.to_string()),
            "must be exactly one expression, like ${a.b == 1}".to_string(),
        )),
    }
}

type ForEach = Vec<(String, String, Arc<Program>)>;

/// Maximum dimensions of a `forEach` (as kro).
pub const MAX_FOR_EACH_DIMENSIONS: usize = 10;

fn compile_for_each(
    value: Option<&Json>,
    env: &Env,
) -> Result<ForEach, (String, Option<String>, String)> {
    let items = match value {
        None => return Ok(Vec::new()),
        Some(Json::Array(items)) => items,
        Some(_) => {
            return Err((
                "forEach".into(),
                None,
                "must be a list of {name: ${expression}}".into(),
            ));
        }
    };
    if items.len() > MAX_FOR_EACH_DIMENSIONS {
        return Err((
            "forEach".into(),
            None,
            format!(
                "has {} iterators; at most {MAX_FOR_EACH_DIMENSIONS}",
                items.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("forEach[{i}]");
        let Some(entry) = item.as_object().filter(|m| m.len() == 1) else {
            return Err((
                field,
                None,
                "each entry must be a single {name: ${expression}}".into(),
            ));
        };
        let Some((name, expression)) = entry.iter().next() else {
            continue;
        };
        check_id(name).map_err(|m| {
            (
                field.clone(),
                None,
                m.replace("a resource id", "an iterator name")
                    .replace("valid resource id", "valid iterator name"),
            )
        })?;
        if out
            .iter()
            .any(|(existing, _, _): &(String, String, Arc<Program>)| existing == name)
        {
            return Err((field, None, format!("iterator {name:?} declared twice")));
        }
        let program = standalone(expression, env).map_err(|(s, m)| (field.clone(), s, m))?;
        out.push((name.clone(), field, program));
    }
    Ok(out)
}

/// Which names an expression may use.
#[derive(Clone, Copy)]
enum Allowed {
    /// Templates: schema, other resources, this resource's iterators.
    Template,
    /// includeWhen and forEach: schema and other resources.
    Condition,
    /// readyWhen: only the resource itself, or `each` for a collection.
    ReadyWhen { collection: bool },
}

fn check_references(
    program: &Program,
    scope: &References<'_>,
    allowed: Allowed,
    schema: &InstanceSchema,
    dependencies: &mut Vec<usize>,
) -> Result<(), String> {
    let own = &scope.ids[scope.own];
    for variable in program.variables() {
        match allowed {
            Allowed::ReadyWhen { collection } => {
                let ok = if collection {
                    variable == "each"
                } else {
                    variable == own
                };
                if !ok {
                    let expected = if collection {
                        "each (the collection's item)".to_string()
                    } else {
                        format!("{own:?}")
                    };
                    return Err(format!(
                        "readyWhen may only refer to {expected}, not {variable:?}"
                    ));
                }
            }
            Allowed::Template | Allowed::Condition => {
                if variable == "schema" {
                    continue;
                }
                if matches!(allowed, Allowed::Template) && scope.iterators.contains(variable) {
                    continue;
                }
                match scope.ids.iter().position(|id| id == variable) {
                    Some(i) if i == scope.own => {
                        return Err(format!("resource {own:?} refers to itself"));
                    }
                    Some(i) => dependencies.push(i),
                    None => {
                        return Err(format!(
                            "unknown identifier {variable:?} (expressions may use schema, resource ids{})",
                            if scope.iterators.is_empty() {
                                String::new()
                            } else {
                                format!(" and the iterators {}", scope.iterators.join(", "))
                            }
                        ));
                    }
                }
            }
        }
    }
    check_schema_paths(program, schema)
}

/// Every `schema.…` path must exist in the instance's schema.
fn check_schema_paths(program: &Program, schema: &InstanceSchema) -> Result<(), String> {
    for path in program.field_paths() {
        if path.first().map(String::as_str) != Some("schema") {
            continue;
        }
        match path.get(1).map(String::as_str) {
            None | Some("apiVersion" | "kind" | "metadata") => {}
            Some("spec") => check_spec_path(&schema.spec.openapi, &path[2..], "schema.spec")?,
            Some(other) => {
                return Err(format!(
                    "schema has no field {other:?} (expressions may read schema.spec, schema.metadata, schema.apiVersion and schema.kind)"
                ));
            }
        }
    }
    Ok(())
}

fn check_spec_path(schema: &Json, rest: &[String], at: &str) -> Result<(), String> {
    let Some((first, tail)) = rest.split_first() else {
        return Ok(());
    };
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Json::as_bool)
        == Some(true)
    {
        return Ok(());
    }
    match schema.get("type").and_then(Json::as_str) {
        Some("object") => {
            if let Some(child) = schema.get("properties").and_then(|p| p.get(first)) {
                return check_spec_path(child, tail, &format!("{at}.{first}"));
            }
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                return check_spec_path(values, tail, &format!("{at}[{first:?}]"));
            }
            // A method call on a map (`schema.spec.labels.size()`) is not a
            // path step; only named fields are checked.
            Err(format!("{at} has no field {first:?}"))
        }
        Some("array") => match schema.get("items") {
            Some(items) if first.parse::<usize>().is_ok() => {
                check_spec_path(items, tail, &format!("{at}[{first}]"))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// kro offers `runtime` only in `schema.status.conditions`.
fn check_no_runtime(resource: &Resource, graph: &str) -> Result<(), GraphError> {
    let programs = resource
        .fields
        .iter()
        .flat_map(|(_, f)| f.programs())
        .chain(&resource.ready_when)
        .chain(&resource.include_when)
        .chain(resource.for_each.iter().map(|(_, p)| p));
    for program in programs {
        if program.calls_namespace("runtime") {
            return Err(GraphError::invalid(
                Location {
                    graph: graph.to_string(),
                    resource: Some(resource.id.clone()),
                    expression: Some(program.source().to_string()),
                    ..Location::default()
                },
                "runtime is only available in schema.status.conditions",
            ));
        }
    }
    Ok(())
}

fn check_status_references(
    schema: &InstanceSchema,
    ids: &[String],
    graph: &str,
) -> Result<(), GraphError> {
    for (path, field) in schema.status_fields.iter().chain(&schema.custom_conditions) {
        for program in field.programs() {
            let checked = match program
                .variables()
                .iter()
                .find(|v| *v != "schema" && !ids.contains(v))
            {
                Some(variable) => Err(format!(
                    "unknown identifier {variable:?} (status may use schema and resource ids)"
                )),
                None => check_schema_paths(program, schema),
            };
            checked.map_err(|message| {
                let location = Location {
                    graph: graph.to_string(),
                    field: Some(format!("spec.schema.{path}")),
                    expression: Some(program.source().to_string()),
                    ..Location::default()
                };
                GraphError::invalid(location, message)
            })?;
        }
    }
    Ok(())
}
