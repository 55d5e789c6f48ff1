//! Helm's engine (`pkg/engine/engine.go`): every template of the chart and
//! its subcharts in one set, parsed in Helm's order, each non-`_` file
//! executed with its chart's scope, `<no value>` removed from the output.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine as _;
use gitplane_gotemplate::{
    Context, GoObject, Limits, MissingKey, Options, Parsed, Templates, Value, add_sprig,
    sprig::{CLOCK_FUNCTIONS, RANDOM_FUNCTIONS, reads_clock},
};
use globset::GlobBuilder;

use super::chart::{Chart, base_name};
use super::{Capabilities, Lookup, Release};

/// What the templates made, each output as [`render`]'s `then` made it.
pub struct Rendered<T> {
    /// Full path (`chart/templates/x.yaml`) → what `then` made of its text.
    pub files: BTreeMap<String, T>,
    /// (template, function) of each random function called.
    pub random_calls: BTreeSet<(String, String)>,
}

/// Renders every template, handing each output (without `<no value>`) and
/// its path to `then` while the next template runs.
pub fn render<T>(
    chart: &Chart,
    values: &Value,
    release: &Release,
    capabilities: &Capabilities,
    limits: &Limits,
    lookup: Option<&Lookup>,
    mut then: impl FnMut(&str, String) -> T,
) -> Result<Rendered<T>, String> {
    let mut set = Templates::new(Options {
        missing_key: MissingKey::Zero,
        limits: limits.clone(),
        seed: release.seed(),
    });
    add_sprig(&mut set);
    add_helm_functions(&mut set, lookup.cloned());
    let random_calls = note_random_calls(&mut set);
    let mut files = Vec::new();
    collect(
        chart,
        chart.name(),
        values,
        true,
        release,
        capabilities,
        &mut files,
    );
    // Helm's parse order: deeper paths first, then reverse lexical, so a
    // root chart's `define` beats a subchart's of the same name.
    files.sort_by_cached_key(|file| {
        let depth = file.path.bytes().filter(|b| *b == b'/').count();
        std::cmp::Reverse((depth, file.path.clone()))
    });
    for file in &files {
        let parsed =
            parse_once(&set, &file.path, file.text).map_err(|e| clean_error(&e.to_string()))?;
        set.add_parsed(&parsed);
    }
    // Partials (`_helpers.tpl`) only define templates; the rest run.
    let jobs: Vec<(&str, &Value)> = files
        .iter()
        .filter(|file| !base_name(&file.path).starts_with('_'))
        .map(|file| (file.path.as_str(), &file.scope))
        .collect();
    let outputs = set
        .execute_each_then(&jobs, |index, out| {
            let path = jobs[index].0;
            (path.to_string(), then(path, without_no_value(out)))
        })
        .map_err(|e| clean_error(&e.to_string()))?;
    let random_calls = std::mem::take(&mut *random_calls.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Rendered {
        files: outputs.into_iter().collect(),
        random_calls,
    })
}

/// Output without Go's `<no value>` (Helm removes it), copied only when
/// it has one.
fn without_no_value(out: String) -> String {
    if out.contains("<no value>") {
        out.replace("<no value>", "")
    } else {
        out
    }
}

/// Template sources parsed once, by path and text: every render of a
/// chart parses the same files, and a parse depends only on the text and
/// the set's function names, which are the same in every set this engine
/// makes. Holds at most [`PARSED_MAX_BYTES`] of source text, and starts
/// over past that. The texts it holds are those of the charts (shared), so
/// the renders of a cached chart find theirs without comparing them.
static PARSED: LazyLock<Mutex<ParsedSources>> = LazyLock::new(Mutex::default);

/// The most bytes of template source [`PARSED`] keeps.
const PARSED_MAX_BYTES: usize = 32 << 20;

#[derive(Default)]
struct ParsedSources {
    /// Path → (text, its templates) for each text seen at that path.
    by_path: HashMap<String, Vec<(Arc<str>, Parsed)>>,
    bytes: usize,
}

/// `text` (the template file `path`) parsed for `set`, now or earlier.
fn parse_once(
    set: &Templates,
    path: &str,
    text: &Arc<str>,
) -> Result<Parsed, gitplane_gotemplate::Error> {
    let lock = || PARSED.lock().unwrap_or_else(|p| p.into_inner());
    let known = lock()
        .by_path
        .get(path)
        .and_then(|texts| {
            texts
                .iter()
                .find(|(t, _)| Arc::ptr_eq(t, text) || t == text)
        })
        .map(|(_, parsed)| parsed.clone());
    if let Some(parsed) = known {
        return Ok(parsed);
    }
    let parsed = set.parse_apart(path, text)?;
    let mut sources = lock();
    if sources.bytes + text.len() > PARSED_MAX_BYTES {
        *sources = ParsedSources::default();
    }
    sources.bytes += text.len();
    sources
        .by_path
        .entry(path.to_string())
        .or_default()
        .push((text.clone(), parsed.clone()));
    Ok(parsed)
}

/// The random functions and clock readings called: (file executed,
/// function, and the template it was called in when that is an included
/// one).
type RandomCalls = BTreeSet<(String, String)>;

/// Wraps the random functions and those that may read the clock so each
/// call that is random or reads the clock is noted with the file being
/// executed.
fn note_random_calls(set: &mut Templates) -> Arc<Mutex<RandomCalls>> {
    let noted = Arc::new(Mutex::new(RandomCalls::default()));
    for name in RANDOM_FUNCTIONS.into_iter().chain(CLOCK_FUNCTIONS) {
        let Some(function) = set.function(name) else {
            continue;
        };
        let noted = noted.clone();
        set.add_function(
            name,
            Arc::new(move |context: &mut Context<'_, '_>, args: &[Value]| {
                if RANDOM_FUNCTIONS.contains(&name) || reads_clock(name, args) {
                    let (file, within) = (context.executed_name(), context.template_name());
                    let what = if within == file {
                        name.to_string()
                    } else {
                        format!("{name} (in {within})")
                    };
                    let call = (file.to_string(), what);
                    noted.lock().unwrap_or_else(|p| p.into_inner()).insert(call);
                }
                function(context, args)
            }),
        );
    }
    noted
}

/// A template file with the scope it executes in.
struct TemplateFile<'c> {
    path: String,
    text: &'c Arc<str>,
    scope: Value,
}

/// Adds the templates of `chart` (at `full_path`) and its subcharts.
fn collect<'c>(
    chart: &'c Chart,
    full_path: &str,
    values: &Value,
    is_root: bool,
    release: &Release,
    capabilities: &Capabilities,
    out: &mut Vec<TemplateFile<'c>>,
) {
    let mut base = BTreeMap::new();
    base.insert("Chart".to_string(), chart_object(chart, is_root));
    base.insert(
        "Files".to_string(),
        Value::Object(Arc::new(Files::of(chart))),
    );
    base.insert("Release".to_string(), release.value());
    base.insert("Capabilities".to_string(), capabilities.value());
    base.insert("Values".to_string(), values.clone());
    let mut subcharts = BTreeMap::new();
    for sub in &chart.dependencies {
        let name = sub.name().to_string();
        let sub_values = match values {
            Value::Map(d) => d.get(&name).unwrap_or(Value::Nil),
            _ => Value::Nil,
        };
        let sub_path = format!("{full_path}/charts/{name}");
        let before = out.len();
        collect(
            sub,
            &sub_path,
            &sub_values,
            false,
            release,
            capabilities,
            out,
        );
        if let Some(first) = out.get(before) {
            subcharts.insert(name, subchart_scope(&first.scope));
        }
    }
    base.insert("Subcharts".to_string(), Value::map(subcharts));
    for (path, text) in chart.templates.iter() {
        let full = format!("{full_path}/{path}");
        let mut scope = base.clone();
        scope.insert(
            "Template".to_string(),
            Value::map(BTreeMap::from([
                ("Name".to_string(), Value::from(full.as_str())),
                (
                    "BasePath".to_string(),
                    Value::from(format!("{full_path}/templates")),
                ),
            ])),
        );
        out.push(TemplateFile {
            path: full,
            text,
            scope: Value::map(scope),
        });
    }
}

/// A subchart's scope as its parent sees it in `.Subcharts`.
fn subchart_scope(scope: &Value) -> Value {
    match scope {
        Value::Map(d) => {
            let mut entries = d.entries();
            entries.remove("Template");
            Value::map(entries)
        }
        other => other.clone(),
    }
}

/// `.Chart` as Helm 4 builds it: a map with Go's field names, every field
/// present, plus `IsRoot`.
fn chart_object(chart: &Chart, is_root: bool) -> Value {
    let field = |key: &str| {
        chart
            .metadata
            .get(key)
            .map(Value::from_json)
            .unwrap_or(Value::Nil)
    };
    let text = |key: &str| match field(key) {
        Value::Nil => Value::from(""),
        v => v,
    };
    let mut map = BTreeMap::new();
    for (go, yaml) in [
        ("Name", "name"),
        ("Home", "home"),
        ("Version", "version"),
        ("Description", "description"),
        ("Icon", "icon"),
        ("APIVersion", "apiVersion"),
        ("Condition", "condition"),
        ("Tags", "tags"),
        ("AppVersion", "appVersion"),
        ("KubeVersion", "kubeVersion"),
        ("Type", "type"),
    ] {
        map.insert(go.to_string(), text(yaml));
    }
    for (go, yaml) in [
        ("Sources", "sources"),
        ("Keywords", "keywords"),
        ("Maintainers", "maintainers"),
        ("Annotations", "annotations"),
        ("Dependencies", "dependencies"),
    ] {
        map.insert(go.to_string(), field(yaml));
    }
    map.insert(
        "Deprecated".to_string(),
        Value::Bool(field("deprecated").is_true()),
    );
    map.insert("IsRoot".to_string(), Value::Bool(is_root));
    Value::map(map)
}

/// Helm's additions to Sprig: `include`, `tpl`, `required`, `fail`,
/// `lookup` (answered by `lookup` when given; else an empty map, as
/// `helm template` gives).
fn add_helm_functions(set: &mut Templates, lookup: Option<Lookup>) {
    set.add_function(
        "include",
        Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| match args {
            [Value::String(name), dot] => cx.include(name, dot).map(Value::from),
            [other, _] => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
            _ => Err(format!(
                "wrong number of args for include: want 2 got {}",
                args.len()
            )),
        }),
    );
    set.add_function(
        "tpl",
        Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| match args {
            [Value::String(text), dot] => cx
                .render(text, dot)
                .map(|out| Value::from(without_no_value(out))),
            [other, _] => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
            _ => Err(format!(
                "wrong number of args for tpl: want 2 got {}",
                args.len()
            )),
        }),
    );
    set.add_function(
        "required",
        Arc::new(|_: &mut Context<'_, '_>, args: &[Value]| match args {
            [Value::String(warn), value] => match value {
                Value::Nil | Value::Missing => Err(wrap_user_error(warn)),
                Value::String(s) if s.is_empty() => Err(wrap_user_error(warn)),
                v => Ok(v.clone()),
            },
            _ => Err(format!(
                "wrong number of args for required: want 2 got {}",
                args.len()
            )),
        }),
    );
    set.add_function(
        "fail",
        Arc::new(|_: &mut Context<'_, '_>, args: &[Value]| match args {
            [Value::String(message)] => Err(wrap_user_error(message)),
            _ => Err(format!(
                "wrong number of args for fail: want 1 got {}",
                args.len()
            )),
        }),
    );
    set.add_function(
        "lookup",
        Arc::new(move |_: &mut Context<'_, '_>, args: &[Value]| {
            let [api_version, kind, namespace, name] = args else {
                return Err(format!(
                    "wrong number of args for lookup: want 4 got {}",
                    args.len()
                ));
            };
            let Some(lookup) = &lookup else {
                return Ok(Value::map(BTreeMap::new()));
            };
            let text = |v: &Value| match v {
                Value::String(s) => Ok(s.to_string()),
                other => Err(format!(
                    "wrong type for value; expected string; got {}",
                    other.type_name()
                )),
            };
            let found = (lookup.0)(
                &text(api_version)?,
                &text(kind)?,
                &text(namespace)?,
                &text(name)?,
            )?;
            Ok(found.map_or_else(|| Value::map(BTreeMap::new()), |j| Value::from_json(&j)))
        }),
    );
}

const USER_ERROR_START: &str = "HELM_ERR_START";
const USER_ERROR_END: &str = "HELM_ERR_END";

fn wrap_user_error(message: &str) -> String {
    format!("{USER_ERROR_START}{message}{USER_ERROR_END}")
}

/// Helm's error cleanup: a `required`/`fail` message shown as
/// `execution error at (file:line:col): message`, a parse error as
/// `parse error at (file:line): message`, and any other execution error
/// as Helm 4 lays it out (location, then `executing … at <node>:`, then the
/// message, an `include` failing inside unfolded the same way).
fn clean_error(message: &str) -> String {
    if let Some(start) = message.find(USER_ERROR_START) {
        let inner = &message[start + USER_ERROR_START.len()..];
        let inner = inner.split(USER_ERROR_END).next().unwrap_or(inner);
        let location = message
            .strip_prefix("template: ")
            .and_then(|rest| rest.split(": ").next())
            .unwrap_or("");
        return format!("execution error at ({location}): {inner}");
    }
    reformat(message)
}

fn reformat(message: &str) -> String {
    let Some(rest) = message.strip_prefix("template: ") else {
        return message.to_string();
    };
    let Some((location, executing)) = rest.split_once(": executing ") else {
        return match rest.split_once(": ") {
            Some((location, why)) => format!("parse error at ({location}): {why}"),
            None => message.to_string(),
        };
    };
    let Some((what, why)) = executing.split_once(">: ") else {
        return message.to_string();
    };
    let why = match why.split_once(": template: ") {
        Some((call, inner)) if call.starts_with("error calling ") => {
            format!("{call}:\n{}", reformat(&format!("template: {inner}")))
        }
        _ => why.to_string(),
    };
    format!("{location}\n  executing {what}>:\n    {why}")
}

/// `.Files`: the chart's other files, with Helm's methods.
#[derive(Debug, Clone)]
struct Files {
    files: Arc<BTreeMap<String, Vec<u8>>>,
}

impl Files {
    fn of(chart: &Chart) -> Files {
        Files {
            files: chart.files.clone(),
        }
    }

    /// A YAML map of base names to contents (sorted), as `AsConfig` and
    /// `AsSecrets` write it.
    fn as_map(&self, encode: bool) -> Result<Value, String> {
        if self.files.is_empty() {
            return Ok("".into());
        }
        let map: serde_json::Map<String, serde_json::Value> = self
            .files
            .iter()
            .map(|(path, bytes)| {
                let content = if encode {
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                } else {
                    String::from_utf8_lossy(bytes).into_owned()
                };
                (
                    base_name(path).to_string(),
                    serde_json::Value::String(content),
                )
            })
            .collect();
        let text = gitplane_object::yaml::to_yaml(&serde_json::Value::Object(map));
        Ok(text.strip_suffix('\n').unwrap_or(&text).into())
    }
}

impl GoObject for Files {
    fn type_name(&self) -> &str {
        "common.Files"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let path = || match args {
            [Value::String(p)] => Ok(p.to_string()),
            _ => Err(format!(
                "wrong number of args for {name}: want 1 got {}",
                args.len()
            )),
        };
        Some(match name {
            "Get" | "GetBytes" => {
                path().map(|p| Value::from_bytes(self.files.get(&p).cloned().unwrap_or_default()))
            }
            "Lines" => path().map(|p| {
                let Some(bytes) = self.files.get(&p) else {
                    return Value::list(Vec::new());
                };
                let text = String::from_utf8_lossy(bytes);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                Value::list(text.split('\n').map(Value::from).collect())
            }),
            "Glob" => path().and_then(|pattern| {
                let glob = GlobBuilder::new(&pattern)
                    .literal_separator(true)
                    .build()
                    .or_else(|_| GlobBuilder::new("**").build())
                    .map_err(|e| e.to_string())?
                    .compile_matcher();
                let files = self
                    .files
                    .iter()
                    .filter(|(p, _)| glob.is_match(p.as_str()))
                    .map(|(p, b)| (p.clone(), b.clone()))
                    .collect();
                Ok(Value::Object(Arc::new(Files {
                    files: Arc::new(files),
                })))
            }),
            "AsConfig" => self.as_map(false),
            "AsSecrets" => self.as_map(true),
            _ => return None,
        })
    }

    fn print(&self) -> String {
        let entries: Vec<String> = self
            .files
            .iter()
            .map(|(p, b)| format!("{p}:{}", print_bytes(b)))
            .collect();
        format!("map[{}]", entries.join(" "))
    }

    /// `.Files` is a Go map of path to `[]byte`: ranging gives each file.
    fn entries(&self) -> Option<Vec<(String, Value)>> {
        let file = |path: &String| FileBytes {
            files: self.files.clone(),
            path: path.clone(),
        };
        Some(
            self.files
                .keys()
                .map(|path| (path.clone(), Value::Object(Arc::new(file(path)))))
                .collect(),
        )
    }
}

/// Bytes as Go's `%v` prints a `[]byte`: `[35 32 104]`.
fn print_bytes(bytes: &[u8]) -> String {
    let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", numbers.join(" "))
}

/// One file of `.Files` as the `[]byte` ranging over it gives (shared with
/// the chart's files, not copied).
#[derive(Debug)]
struct FileBytes {
    files: Arc<BTreeMap<String, Vec<u8>>>,
    path: String,
}

impl FileBytes {
    fn bytes(&self) -> &[u8] {
        self.files.get(&self.path).map_or(&[], Vec::as_slice)
    }
}

impl GoObject for FileBytes {
    fn type_name(&self) -> &str {
        "[]uint8"
    }

    fn member(&self, _: &str, _: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn print(&self) -> String {
        print_bytes(self.bytes())
    }

    fn elements(&self) -> Option<Vec<Value>> {
        Some(
            self.bytes()
                .iter()
                .map(|b| Value::Int(i64::from(*b)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_and_fail_read_as_helm_prints_them() {
        assert_eq!(
            clean_error(
                "template: c/templates/a.yaml:3:4: executing \"c/templates/a.yaml\" at <required \"x\" .Values.x>: error calling required: HELM_ERR_STARTx is requiredHELM_ERR_END"
            ),
            "execution error at (c/templates/a.yaml:3:4): x is required"
        );
        assert_eq!(
            clean_error("template: t:1: oops"),
            "parse error at (t:1): oops"
        );
        assert_eq!(
            clean_error(
                "template: c/a.yaml:1:6: executing \"c/a.yaml\" at <include \"inner\" .>: error calling include: template: c/_h.tpl:1:31: executing \"inner\" at <.Values.x.y>: nil pointer evaluating interface {}.y"
            ),
            "c/a.yaml:1:6\n  executing \"c/a.yaml\" at <include \"inner\" .>:\n    error calling include:\nc/_h.tpl:1:31\n  executing \"inner\" at <.Values.x.y>:\n    nil pointer evaluating interface {}.y"
        );
    }
}
