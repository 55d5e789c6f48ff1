//! `gitplane graph check RGD.yaml`: validate ResourceGraphDefinitions offline
//! and print their order, the status kro would write, or the CRD they make.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use gitplane_graph::{Graph, GraphError, Readiness, generate_crd, graph_status};
use gitplane_object::{LoadOptions, Object, Syntax, load_objects, yaml};

use crate::output::ReportFormat;

/// `gitplane graph`.
#[derive(Debug, clap::Args)]
pub struct GraphCommand {
    #[command(subcommand)]
    command: GraphSubcommand,
}

#[derive(Debug, clap::Subcommand)]
enum GraphSubcommand {
    /// Check every ResourceGraphDefinition in a file: its schema, its
    /// expressions and their references, and its dependency order. Prints
    /// the topological order (or, with -o, the status kro would write; with
    /// --crd, the CustomResourceDefinition it generates). Exit 1 on the
    /// first invalid graph, with the resource, field and expression at fault.
    Check(CheckArgs),
    /// Run the resource-graph controller against a cluster (any cluster,
    /// like kro): install the ResourceGraphDefinition CRD, serve each
    /// graph's kind, and keep every instance's children applied, ready and
    /// pruned, until interrupted. `gitplane up` runs the same controller.
    Run(RunArgs),
}

/// Arguments of `gitplane graph run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub cluster: crate::sync_cmd::ClusterArgs,
    /// Instances reconciled at once.
    #[arg(long, default_value_t = 4, env = "GITPLANE_WORKERS")]
    pub workers: usize,
    /// Every instance is reconciled this often without a reason.
    #[arg(long, value_parser = crate::sync_cmd::parse_duration, default_value = "60s", env = "GITPLANE_RESYNC_INTERVAL")]
    pub resync_interval: std::time::Duration,
}

/// Arguments of `gitplane graph check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A YAML or JSON file holding one or more ResourceGraphDefinitions.
    pub file: PathBuf,
    /// Print the CustomResourceDefinition each graph generates.
    #[arg(long, env = "GITPLANE_CRD")]
    pub crd: bool,
    /// Output format: text (the default), yaml or json.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text, env = "GITPLANE_OUTPUT")]
    pub output: ReportFormat,
}

/// Runs `gitplane graph`.
pub fn run(command: &GraphCommand) -> Result<ExitCode> {
    match &command.command {
        GraphSubcommand::Check(args) => check(args),
        GraphSubcommand::Run(args) => run_controller(args),
    }
}

fn run_controller(args: &RunArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cluster = std::sync::Arc::new(args.cluster.connect().await?);
        gitplane_controller::graphs::install_graph_crd(&cluster).await?;
        let options = gitplane_controller::graphs::GraphOptions {
            workers: args.workers,
            resync_interval: args.resync_interval,
            ..Default::default()
        };
        let controller =
            gitplane_controller::graphs::GraphController::new(cluster.clone(), options);
        println!("reconciling resource graphs on {}", cluster.server());
        tokio::select! {
            result = controller.run() => result?,
            _ = crate::apiserver_cmd::wait_for_shutdown() => println!("stopping"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    let objects = read_graphs(&args.file)?;
    let env = gitplane_graph::cel_env();
    let mut documents = Vec::new();
    let mut text = String::new();
    for object in &objects {
        let graph = Graph::compile(object, &env).map_err(|e| at_line(&args.file, &e))?;
        if args.crd {
            documents.push(generate_crd(&graph));
            continue;
        }
        let mut checked = object.to_value();
        checked["metadata"]["finalizers"] = serde_json::json!([FINALIZER]);
        let generation = object
            .get(&["metadata", "generation"])
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1);
        checked["status"] = graph_status(
            Ok(&graph),
            Readiness::default(),
            generation,
            &gitplane_object::time::now_rfc3339(),
        );
        documents.push(checked);
        text.push_str(&summary(&graph));
    }
    let out = match (args.output, args.crd) {
        (ReportFormat::Text, false) => text,
        (ReportFormat::Json, _) => json_documents(&documents)?,
        (ReportFormat::Yaml, _) | (ReportFormat::Text, true) => yaml::to_yaml_stream(&documents),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The finalizer kro (and gitplane's graph controller) puts on every graph.
const FINALIZER: &str = "kro.run/finalizer";

/// A graph's error prefixed with `FILE:LINE` where the line can be found.
fn at_line(file: &std::path::Path, error: &GraphError) -> anyhow::Error {
    let line = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| line_of(&text, error));
    match line {
        Some(line) => anyhow::anyhow!("{}:{line}: {error}", file.display()),
        None => anyhow::anyhow!("{}: {error}", file.display()),
    }
}

/// The line (1-based) a graph error points at: the graph's `name:`, then
/// its resource's `id:`, then each key of the field path in turn, then the
/// line holding the expression. A best effort on the text, since parsed
/// objects keep no positions; it stops at the last step it finds.
fn line_of(text: &str, error: &GraphError) -> Option<usize> {
    let (location, message) = match error {
        GraphError::Invalid { location, message }
        | GraphError::Evaluation { location, message } => (location, message.as_str()),
        _ => return None,
    };
    let lines: Vec<&str> = text.lines().collect();
    let find = |from: usize, wanted: &dyn Fn(&str) -> bool| {
        (from..lines.len()).find(|&i| wanted(lines[i].trim_start().trim_start_matches("- ")))
    };
    let name = location.graph.as_str();
    let mut at = find(0, &|l| {
        l.strip_prefix("name:")
            .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == name)
    })?;
    let mut keys: Vec<String> = Vec::new();
    if let Some(resource) = &location.resource {
        at = find(at, &|l| {
            l.strip_prefix("id:")
                .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == resource)
        })
        .unwrap_or(at);
    }
    if let Some(field) = &location.field {
        keys.extend(field_keys(field));
        // Schema errors name the field inside the schema first.
        if field.starts_with("spec.schema")
            && let Some((path, _)) = message.split_once(": ")
            && !path.contains(' ')
        {
            keys.extend(field_keys(path).into_iter().skip(1));
        }
    }
    for key in keys {
        let Some(next) = find(at + 1, &|l| {
            l.strip_prefix(key.as_str())
                .is_some_and(|r| r.starts_with(':'))
        }) else {
            break;
        };
        at = next;
    }
    if let Some(expression) = location
        .expression
        .as_deref()
        .and_then(|e| e.lines().next())
        && let Some(found) = (at..lines.len()).find(|&i| lines[i].contains(expression.trim()))
    {
        at = found;
    }
    Some(at + 1)
}

/// `template.spec.containers[0].image` as `[template, spec, containers, image]`.
fn field_keys(path: &str) -> Vec<String> {
    path.split('.')
        .map(|step| step.split('[').next().unwrap_or_default().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// The ResourceGraphDefinitions in a file (an error if there are none).
pub fn read_graphs(file: &std::path::Path) -> Result<Vec<Object>> {
    let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let name = file.display().to_string();
    let syntax = Syntax::from_file_name(&name);
    let objects = load_objects(&bytes, &name, syntax, &LoadOptions::default())?;
    let graphs: Vec<Object> = objects.into_iter().filter(Graph::is_rgd).collect();
    if graphs.is_empty() {
        bail!("{name}: no ResourceGraphDefinition (kro.run/v1alpha1) in the file");
    }
    Ok(graphs)
}

fn summary(graph: &Graph) -> String {
    let schema = &graph.schema;
    let scope = match schema.scope {
        gitplane_graph::Scope::Namespaced => "namespaced",
        gitplane_graph::Scope::Cluster => "cluster-scoped",
    };
    let mut out = format!(
        "ResourceGraphDefinition {}: valid\n  defines {} {} ({scope}, CRD {})\n  order: {}\n",
        graph.name,
        schema.api_version(),
        schema.kind,
        gitplane_graph::crd_name(graph),
        graph.topological_order().join(" -> ")
    );
    for &index in &graph.order {
        let resource = &graph.resources[index];
        let kind = resource
            .template
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("?");
        let mut notes = Vec::new();
        if matches!(resource.body, gitplane_graph::Body::External { .. }) {
            notes.push("external".to_string());
        }
        if !resource.dependencies.is_empty() {
            let deps: Vec<&str> = resource
                .dependencies
                .iter()
                .map(|&d| graph.resources[d].id.as_str())
                .collect();
            notes.push(format!("after {}", deps.join(", ")));
        }
        if !resource.include_when.is_empty() {
            notes.push("conditional".to_string());
        }
        if !resource.for_each.is_empty() {
            let names: Vec<&str> = resource.for_each.iter().map(|(n, _)| n.as_str()).collect();
            notes.push(format!("for each {}", names.join(" × ")));
        }
        if !resource.ready_when.is_empty() {
            notes.push(format!("{} readyWhen", resource.ready_when.len()));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        out.push_str(&format!("    {} {kind}{notes}\n", resource.id));
    }
    out
}

fn json_documents(documents: &[serde_json::Value]) -> Result<String> {
    let value = match documents {
        [one] => one.clone(),
        many => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": many}),
    };
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    Ok(text)
}
