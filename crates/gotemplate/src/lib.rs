//! Go's `text/template`, exactly as Go runs it, and bounded.
//!
//! Helm charts, ApplicationSet `goTemplate` and Argo CD notification
//! templates are Go templates; this crate runs them without Go. Start with
//! [`Templates`]: [`Templates::parse`] adds a named template (and every
//! `define` in it) to the set, [`Templates::execute`] runs one with a
//! [`Value`] as its data.
//!
//! - [`lex`] and [`parse`] turn text into trees, with the checks Go makes
//!   at parse time (functions defined, variables declared).
//! - `exec` walks a tree: Go's field and method lookup, `missingkey`, truth,
//!   variable scopes, `range` over lists, maps (sorted), integers, `break`
//!   and `continue`, and `and`/`or` that stop early.
//! - [`mod@fmt`] prints values as Go's `fmt` does (`1e+06`, `map[a:1]`,
//!   `<nil>`), and `funcs` holds Go's builtin functions.
//!
//! - [`sprig`] adds Sprig 3's library ([`add_sprig`]), and [`semver`] reads
//!   versions and constraints as Masterminds/semver does.
//!
//! Everything is bounded by [`Limits`]: steps, output bytes, nesting of
//! templates, time. A function map of one's own (Sprig, Helm's `include`)
//! is added with [`Templates::add_function`]; such functions reach the
//! executing set through [`Context`].

pub mod fmt;
mod funcs;
pub mod gotime;
pub mod lex;
mod memo;
pub mod parse;
pub mod semver;
pub mod sprig;
pub mod value;

mod exec;

// foldhash (randomly seeded, so names a chart chooses cannot collide on
// purpose) looks names up faster than SipHash on every call.
use foldhash::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use sprig::add_sprig;
pub use value::{Dict, GoObject, Value};

use exec::{Budget, Exec};
use parse::Tree;

/// A function callable from templates: the arguments in, a value or an
/// error message out (printed as `error calling NAME: message`).
pub type Function =
    Arc<dyn Fn(&mut Context<'_, '_>, &[Value]) -> Result<Value, String> + Send + Sync>;

/// What a missing map key gives (Go's `missingkey` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// No value: printed `<no value>`, and a field of it is no value too.
    #[default]
    Default,
    /// The map's zero value, nil: printed `<no value>`, and a field of it
    /// is an error (`nil pointer evaluating interface {}.x`). Helm's choice.
    Zero,
    /// An error.
    Error,
}

/// What one execution may spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Nodes executed and loop iterations, in all.
    pub max_steps: u64,
    /// Bytes written, by every template the execution runs.
    pub max_output: usize,
    /// Templates running inside one another (`template`, `include`, `tpl`).
    pub max_depth: usize,
    /// Wall time.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_steps: 10_000_000,
            max_output: 64 << 20,
            max_depth: 1_000,
            timeout: Duration::from_secs(30),
        }
    }
}

/// How a set executes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// What a missing map key gives.
    pub missing_key: MissingKey,
    /// The budget of each execution.
    pub limits: Limits,
    /// Where the random functions (`randAlphaNum`, `uuidv4`…) start: with
    /// the template's name it fixes their results, so rendering twice gives
    /// the same output (a generated password is not rotated on every
    /// sync). Give each release its own seed.
    pub seed: u64,
}

/// A template that failed to parse or to execute, in Go's words
/// (`template: NAME:LINE: …`, `template: NAME:LINE:COL: executing "NAME" at
/// <node>: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not a valid template.
    #[error("template: {name}:{line}: {message}")]
    Parse {
        /// The source's name.
        name: String,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Executing failed.
    #[error("{0}")]
    Exec(String),
}

impl Error {
    fn exec(message: String) -> Error {
        Error::Exec(message)
    }
}

/// The text a template was parsed from, for positions in errors.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    text: String,
}

impl Source {
    /// Go's position: line (1-based) and byte in the line (0-based).
    pub(crate) fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.text[..pos.min(self.text.len())];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
        (line, col)
    }
}

/// A parsed template and where it came from.
#[derive(Debug)]
pub(crate) struct Named {
    pub(crate) tree: Tree,
    pub(crate) source: Arc<Source>,
    /// How long its output was the last time it ran: the next run's
    /// buffer starts that large instead of growing step by step.
    last_output_len: AtomicUsize,
}

impl Named {
    /// An empty buffer for one run's output, sized by the last run.
    pub(crate) fn output_buffer(&self) -> String {
        String::with_capacity(self.last_output_len.load(Ordering::Relaxed))
    }

    /// Records how long one run's output was (see [`Named::output_buffer`]).
    pub(crate) fn remember_output_len(&self, len: usize) {
        self.last_output_len.store(len, Ordering::Relaxed);
    }
}

/// The templates of one source, parsed ([`Templates::parse_apart`]).
#[derive(Debug, Clone)]
pub struct Parsed(Vec<Arc<Named>>);

impl Parsed {
    /// The source's own template (the text outside its `define`s).
    pub(crate) fn main(&self) -> Option<&Named> {
        self.0.first().map(|named| &**named)
    }
}

/// A set's templates by name. A copy of a set (Helm's `tpl` makes one per
/// call) shares the templates of the set it was copied from and keeps what is
/// added to it in a layer of its own, so a copy costs what it adds, not the
/// size of the set.
#[derive(Clone, Default)]
struct ByName {
    shared: Arc<HashMap<String, Arc<Named>>>,
    own: HashMap<String, Arc<Named>>,
}

impl ByName {
    fn get(&self, name: &str) -> Option<&Arc<Named>> {
        self.own.get(name).or_else(|| self.shared.get(name))
    }

    fn insert(&mut self, name: String, named: Arc<Named>) {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) if self.own.is_empty() => {
                shared.insert(name, named);
            }
            _ => {
                self.own.insert(name, named);
            }
        }
    }

    /// Every name once, unsorted.
    fn names(&self) -> impl Iterator<Item = &String> {
        let shadowed = |name: &&String| !self.own.contains_key(name.as_str());
        self.own.keys().chain(self.shared.keys().filter(shadowed))
    }
}

/// A set of named templates sharing functions and options (Go's
/// `*template.Template` with its associated templates).
#[derive(Clone)]
pub struct Templates {
    templates: ByName,
    first: Option<String>,
    functions: Arc<HashMap<String, Function>>,
    /// Which parameters of a function are Go maps (`map[string]interface {}`):
    /// see [`Templates::declare_map_parameters`].
    map_parameters: Arc<HashMap<String, Range<usize>>>,
    pub(crate) options: Options,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.templates.names().collect();
        names.sort();
        f.debug_struct("Templates")
            .field("templates", &names)
            .field("options", &self.options)
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new(Options::default())
    }
}

impl Templates {
    /// An empty set with Go's builtin functions.
    pub fn new(options: Options) -> Templates {
        Templates {
            templates: ByName::default(),
            first: None,
            functions: Arc::new(funcs::builtins()),
            map_parameters: Arc::default(),
            options,
        }
    }

    /// Adds (or replaces) a function. Add functions before parsing
    /// templates that call them: names are checked at parse time, as in Go.
    pub fn add_function(&mut self, name: &str, function: Function) {
        Arc::make_mut(&mut self.functions).insert(name.to_string(), function);
    }

    /// Declares that the parameters of function `name` at `positions`
    /// (a range of argument indexes) are Go maps. Go refuses a nil read
    /// from a field (`.Values.none`, `$x.a`, `(…).a`: an `interface {}`
    /// holding nil) for such a parameter, while a nil from a variable, a
    /// parenthesized pipeline or the `nil` keyword is passed as a nil map;
    /// the function itself then sees nil either way. A function added
    /// again under the same name keeps the declaration.
    pub fn declare_map_parameters(&mut self, name: &str, positions: Range<usize>) {
        Arc::make_mut(&mut self.map_parameters).insert(name.to_string(), positions);
    }

    /// The argument indexes of `name` declared as Go maps, if any.
    pub(crate) fn map_parameters(&self, name: &str) -> Option<&Range<usize>> {
        self.map_parameters.get(name)
    }

    /// The function `name`, if the set has one (to wrap it).
    pub fn function(&self, name: &str) -> Option<Function> {
        self.functions.get(name).cloned()
    }

    /// Parses `text` as the template `name`, adding it and each template it
    /// defines to the set. A template whose body is only whitespace does not
    /// replace one of the same name (as in Go).
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let parsed = self.parse_apart(name, text)?;
        self.add_parsed(&parsed);
        Ok(())
    }

    /// Parses `text` as the template `name` without adding it: what
    /// [`Templates::add_parsed`] adds to this set, or to any set with the
    /// same function names (names are checked at parse time). A renderer
    /// that executes one source in many sets parses it once.
    pub fn parse_apart(&self, name: &str, text: &str) -> Result<Parsed, Error> {
        let source = Arc::new(Source {
            name: name.to_string(),
            text: text.to_string(),
        });
        let parse_error = |message: String, pos: usize| Error::Parse {
            name: name.to_string(),
            line: source.line_col(pos).0,
            message,
        };
        let tokens = lex::lex(text).map_err(|e| parse_error(e.message, e.pos))?;
        let is_function = |name: &str| self.functions.contains_key(name);
        let trees =
            parse::parse(name, tokens, &is_function).map_err(|e| parse_error(e.message, e.pos))?;
        Ok(Parsed(
            trees
                .into_iter()
                .map(|tree| {
                    Arc::new(Named {
                        tree,
                        source: source.clone(),
                        last_output_len: Default::default(),
                    })
                })
                .collect(),
        ))
    }

    /// Adds what [`Templates::parse_apart`] parsed, as [`Templates::parse`]
    /// would have.
    pub fn add_parsed(&mut self, parsed: &Parsed) {
        for named in &parsed.0 {
            let replaces_body = self
                .templates
                .get(&named.tree.name)
                .is_some_and(|old| named.tree.is_empty() && !old.tree.is_empty());
            if replaces_body {
                continue;
            }
            self.first.get_or_insert_with(|| named.tree.name.clone());
            self.templates
                .insert(named.tree.name.clone(), named.clone());
        }
    }

    /// Whether the set holds a template of that name.
    pub fn has(&self, name: &str) -> bool {
        self.templates.get(name).is_some()
    }

    /// The names of the set's templates, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.templates.names().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn template(&self, name: &str) -> Option<&Arc<Named>> {
        self.templates.get(name)
    }

    pub(crate) fn first_name(&self) -> Option<&str> {
        self.first.as_deref()
    }

    /// Executes the template `name` with `data` as dot (and `$`).
    /// Execution runs on its own thread with a stack deep enough for
    /// [`Limits::max_depth`] nested templates.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        let mut outputs = self.execute_each(&[(name, data)])?;
        Ok(outputs.pop().unwrap_or_default())
    }

    /// Executes each template with its dot, in order, as
    /// [`Templates::execute`] executes one (each with its own budget), on
    /// one thread; stops at the first error.
    pub fn execute_each(&self, jobs: &[(&str, &Value)]) -> Result<Vec<String>, Error> {
        self.execute_each_then(jobs, |_, output| output)
    }

    /// [`Templates::execute_each`], handing each output to `then` on the
    /// calling thread as soon as its template has run, while the next one
    /// runs: work on the outputs (parsing them, say) overlaps execution.
    /// `then` gets each job's index and output, in order; an execution
    /// error is returned even when `then` already handled earlier outputs.
    pub fn execute_each_then<T>(
        &self,
        jobs: &[(&str, &Value)],
        mut then: impl FnMut(usize, String) -> T,
    ) -> Result<Vec<T>, Error> {
        const STACK: usize = 256 << 20;
        const BATCH_BYTES: usize = 64 << 10;
        let (outputs, received) = std::sync::mpsc::channel::<Vec<String>>();
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("gotemplate".into())
                .stack_size(STACK)
                .spawn_scoped(scope, move || {
                    // Outputs go in batches: waking the calling thread for
                    // each small output costs more than handling it.
                    let mut batch = Vec::new();
                    let mut batch_bytes = 0;
                    for (name, data) in jobs {
                        let mut budget =
                            Budget::new(self.options.limits.clone(), self.options.seed, name);
                        let output = Exec::run(self, &mut budget, name, data)?;
                        batch_bytes += output.len();
                        batch.push(output);
                        if batch_bytes >= BATCH_BYTES {
                            batch_bytes = 0;
                            if outputs.send(std::mem::take(&mut batch)).is_err() {
                                return Ok(());
                            }
                        }
                    }
                    let _ = outputs.send(batch);
                    Ok(())
                })
                .map_err(|e| Error::exec(format!("template: cannot start execution: {e}")))?;
            let handled: Vec<T> = received
                .iter()
                .flatten()
                .enumerate()
                .map(|(index, output)| then(index, output))
                .collect();
            worker
                .join()
                .unwrap_or_else(|_| Err(Error::exec("template: execution panicked".into())))?;
            Ok(handled)
        })
    }
}

/// What a [`Function`] can do besides computing its result: run another
/// template of the executing set (Helm's `include`) or a text (`tpl`),
/// within the same budget.
pub struct Context<'e, 'a> {
    exec: &'e mut Exec<'a>,
}

impl Context<'_, '_> {
    /// Executes the set's template `name` with `dot`; its output.
    pub fn include(&mut self, name: &str, dot: &Value) -> Result<String, String> {
        if !self.exec.set.has(name) {
            let set = self.exec.set.first_name().unwrap_or(name);
            return Err(format!(
                "template: no template {name:?} associated with template {set:?}"
            ));
        }
        self.exec.nested(name, dot).map_err(|f| f.message)
    }

    /// Parses `text` into a copy of the set, under the executing template's
    /// source name, and executes it with `dot`; its output.
    pub fn render(&mut self, text: &str, dot: &Value) -> Result<String, String> {
        self.exec.render_text(text, dot).map_err(|f| f.message)
    }

    /// The name of the template being executed.
    pub fn template_name(&self) -> &str {
        self.exec.name
    }

    /// The name of the template the execution started from (the one
    /// [`Templates::execute`] was given; [`Context::template_name`] is the
    /// one running now, an included one perhaps).
    pub fn executed_name(&self) -> &str {
        self.exec.budget.executed()
    }

    /// The next number of the execution's random sequence (fixed by
    /// [`Options::seed`] and the executed template's name).
    pub fn random(&mut self) -> u64 {
        self.exec.budget.next_random()
    }
}
