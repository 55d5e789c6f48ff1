//! Expanding every instance of a rendered set offline, for
//! `gitplane render --expand-graphs`: each instance whose graph is in the
//! set (or given apart) is replaced by the objects it stands for.

use gitplane_cel::Env;
use gitplane_object::Object;

use crate::error::GraphError;
use crate::expand::{Offline, Outcome, Unresolved, expand, is_instance};
use crate::rgd::{Graph, Scope};

/// The rendered set with every instance expanded.
#[derive(Debug, Clone, Default)]
pub struct OfflineExpansion {
    /// The objects: the instances' children in their place, in dependency
    /// order; everything else as it was.
    pub objects: Vec<Object>,
    /// How many instances were expanded.
    pub instances: usize,
    /// What could not be resolved offline, by instance and resource id; those
    /// resources are left out of `objects`.
    pub unresolved: Vec<(String, String, Unresolved)>,
    /// Resources left out because their `includeWhen` is false, by instance
    /// and resource id, with the reason.
    pub excluded: Vec<(String, String, String)>,
}

/// Expands every instance in `objects` whose graph is among `objects` or
/// `graphs`. An instance of a namespaced graph without `metadata.namespace`
/// is placed in `namespace`, as `kubectl apply` places it in the context's
/// namespace (`default` unless told otherwise).
pub fn expand_offline(
    objects: Vec<Object>,
    graphs: &[Object],
    env: &Env,
    namespace: &str,
) -> Result<OfflineExpansion, GraphError> {
    let mut compiled: Vec<Graph> = Vec::new();
    for object in objects.iter().chain(graphs).filter(|o| Graph::is_rgd(o)) {
        let graph = Graph::compile(object, env)?;
        if let Some(other) = compiled.iter().find(|g| {
            g.schema.kind == graph.schema.kind
                && g.schema.api_version() == graph.schema.api_version()
        }) {
            if other.name == graph.name {
                continue;
            }
            return Err(GraphError::Invalid {
                location: crate::error::Location {
                    graph: graph.name.clone(),
                    ..Default::default()
                },
                message: format!(
                    "defines {} {}, which ResourceGraphDefinition {} defines too",
                    graph.schema.api_version(),
                    graph.schema.kind,
                    other.name
                ),
            });
        }
        compiled.push(graph);
    }
    let mut out = OfflineExpansion::default();
    let offline = Offline { objects: &objects };
    for object in &objects {
        let Some(graph) = compiled.iter().find(|g| is_instance(g, object)) else {
            out.objects.push(object.clone());
            continue;
        };
        let placed;
        let object = if graph.schema.scope == Scope::Namespaced && object.namespace().is_none() {
            placed = {
                let mut copy = object.clone();
                copy.set_namespace(namespace);
                copy
            };
            &placed
        } else {
            object
        };
        let expansion = expand(graph, object, &offline)?;
        out.instances += 1;
        let instance = match object.namespace() {
            Some(ns) => format!("{} {ns}/{}", object.kind(), object.name()),
            None => format!("{} {}", object.kind(), object.name()),
        };
        for node in expansion.nodes {
            match node.outcome {
                Outcome::Desired(children) => out.objects.extend(children),
                Outcome::External(_) => {}
                Outcome::Excluded(reason) => out.excluded.push((instance.clone(), node.id, reason)),
                Outcome::Unresolved(items) => {
                    out.unresolved.extend(
                        items
                            .into_iter()
                            .map(|u| (instance.clone(), node.id.clone(), u)),
                    );
                }
            }
        }
    }
    Ok(out)
}
