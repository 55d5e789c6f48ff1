//! Compiling (once per source) and evaluating expressions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube_cel::KubeCelExt;
use kube_cel::cel::common::ast::{Expr, IdedExpr};
use kube_cel::cel::parser::Parser;
use kube_cel::cel::{Context, ResolveResult, Value};

use crate::ast::for_each_child;
use crate::limits::{self, Limits};
use crate::{CelError, from_json, to_json};

/// How many compiled programs an [`Env`] keeps before it starts over.
const CACHE_CAPACITY: usize = 4096;

/// The CEL environment: limits and a cache of compiled programs, shared by
/// every caller (it is cheap to clone and safe to share across threads).
#[derive(Debug, Clone, Default)]
pub struct Env {
    limits: Limits,
    library: Library,
    cache: Arc<Mutex<HashMap<String, Arc<Program>>>>,
}

impl Env {
    /// An environment with these limits.
    pub fn new(limits: Limits) -> Self {
        Env {
            limits,
            library: Library::Standard,
            cache: Arc::default(),
        }
    }

    /// An environment with these limits whose programs also see `library`'s
    /// functions.
    pub fn with_library(limits: Limits, library: Library) -> Self {
        Env {
            library,
            ..Env::new(limits)
        }
    }

    /// The limits every program of this environment runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles `source`, or returns the program compiled for it before.
    pub fn compile(&self, source: &str) -> Result<Arc<Program>, CelError> {
        if let Some(program) = self.lock_cache().get(source) {
            return Ok(program.clone());
        }
        let program = Arc::new(Program::compile_with(source, self.limits, self.library)?);
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(source.to_string(), program.clone());
        Ok(program)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Program>>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (inserts and clears are single calls), so a poisoned lock is usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which functions a program sees besides CEL's standard ones and the
/// Kubernetes libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Library {
    /// What the Kubernetes API server offers (ValidatingAdmissionPolicy,
    /// CRD validation rules, Kyverno's CEL).
    #[default]
    Standard,
    /// Also kro's functions (see [`crate::kro`]), for resource graphs.
    Kro,
}

/// A compiled, instrumented expression.
#[derive(Debug)]
pub struct Program {
    source: String,
    limits: Limits,
    library: Library,
    /// The expression as evaluated: metered by [`limits::instrument`].
    metered: IdedExpr,
    /// The top-level variables it reads, sorted.
    variables: Vec<String>,
    /// The field paths it reads from them, sorted.
    paths: Vec<Vec<String>>,
}

impl Program {
    /// Parses and checks `source` under `limits`, with the standard library.
    pub fn compile(source: &str, limits: Limits) -> Result<Program, CelError> {
        Program::compile_with(source, limits, Library::Standard)
    }

    /// Parses and checks `source` under `limits`, for `library`.
    pub fn compile_with(
        source: &str,
        limits: Limits,
        library: Library,
    ) -> Result<Program, CelError> {
        limits::check_source(source, &limits)?;
        let recursion = u16::try_from(limits.max_nesting * 2).unwrap_or(u16::MAX);
        let parsed = Parser::new()
            .enable_optional_syntax(true)
            .max_recursion_depth(recursion)
            .parse(source)
            .map_err(|e| CelError::Syntax(one_line(&e.to_string())))?;
        let mut parsed = parsed;
        crate::ast::apply_configurations_as_maps(&mut parsed);
        limits::check_supported(&parsed)?;
        if library == Library::Kro {
            crate::kro::condition_keys_as_strings(&mut parsed).map_err(CelError::Syntax)?;
        }
        let mut paths = Vec::new();
        collect_paths(&parsed, &mut Vec::new(), &mut paths);
        paths.sort();
        paths.dedup();
        // Every free identifier starts a path of its own.
        let mut variables: Vec<String> = paths.iter().filter_map(|p| p.first().cloned()).collect();
        variables.dedup();
        let metered = limits::instrument(parsed);
        Ok(Program {
            source: source.to_string(),
            limits,
            library,
            metered,
            variables,
            paths,
        })
    }

    /// The source it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression calls a function of namespace `ns`
    /// (`runtime.newCondition(…)` for `runtime`).
    pub fn calls_namespace(&self, ns: &str) -> bool {
        let mut found = false;
        crate::ast::visit(&self.metered, &mut |node| {
            if let Expr::Call(call) = &node.expr
                && matches!(call.target.as_deref(), Some(IdedExpr { expr: Expr::Ident(t), .. }) if t == ns)
            {
                found = true;
            }
        });
        found
    }

    /// The top-level variables the expression reads (not those a macro binds).
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Every field path the expression reads from a top-level variable: for
    /// `a.b.c > 1 && has(a.d)` that is `[a, b, c]` and `[a, d]`. Optional
    /// selects (`a.?b`) and constant indexes (`a["b"]`, `a[0]`) count as steps.
    pub fn field_paths(&self) -> &[Vec<String>] {
        &self.paths
    }

    /// Evaluates the expression with these variables.
    pub fn evaluate(&self, activation: &Activation) -> Result<Value, CelError> {
        self.evaluate_costed(activation).0
    }

    /// Evaluates the expression and says how many units of work (see
    /// [`Limits::cost_budget`]) it took, also when it failed.
    pub fn evaluate_costed(&self, activation: &Activation) -> (Result<Value, CelError>, u64) {
        let root = match self.library {
            Library::Standard => &ROOT,
            Library::Kro => &KRO_ROOT,
        };
        root.with(|root| {
            let mut context = root.new_inner_scope();
            for (name, value) in &activation.variables {
                if self.variables.iter().any(|w| w == name) {
                    context.add_variable_from_value(name.clone(), value.clone());
                }
            }
            limits::start(self.limits);
            let result = Value::resolve(&self.metered, &context);
            let (cost, stopped) = limits::finish();
            let result = match (result, stopped) {
                (_, Some(stop)) => Err(limits::stop_error(
                    stop,
                    &self.limits,
                    &size_detail(&self.source),
                )),
                (Ok(value), None) => Ok(value),
                (Err(e), None) => Err(CelError::Evaluation(describe_execution_error(&e))),
            };
            (result, cost)
        })
    }

    /// Evaluates the expression and returns its value as JSON.
    pub fn evaluate_json(&self, activation: &Activation) -> Result<serde_json::Value, CelError> {
        to_json(&self.evaluate(activation)?)
    }
}

fn size_detail(source: &str) -> String {
    let short: String = source.chars().take(80).collect();
    format!("a value built by `{short}` is too large")
}

/// Named values an expression is evaluated with.
#[derive(Debug, Clone, Default)]
pub struct Activation {
    variables: Vec<(String, Value)>,
}

impl Activation {
    /// No variables.
    pub fn new() -> Self {
        Activation::default()
    }

    /// Adds (or replaces) a variable from JSON.
    pub fn with_json(mut self, name: &str, value: &serde_json::Value) -> Self {
        self.set(name, from_json(value));
        self
    }

    /// Adds (or replaces) a variable.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.variables.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.variables.push((name.to_string(), value)),
        }
    }

    /// Adds (or replaces) a variable from JSON.
    pub fn set_json(&mut self, name: &str, value: &serde_json::Value) {
        self.set(name, from_json(value));
    }

    /// Whether a variable is set.
    pub fn has(&self, name: &str) -> bool {
        self.variables.iter().any(|(n, _)| n == name)
    }
}

thread_local! {
    /// The functions, registered once per thread: CEL's standard library, the
    /// Kubernetes libraries, and the metering functions.
    static ROOT: Context<'static> = build_root();
    /// The same, plus kro's functions.
    static KRO_ROOT: Context<'static> = {
        let mut context = build_root();
        crate::kro::register(&mut context);
        context
    };
}

fn build_root() -> Context<'static> {
    let mut context = Context::default();
    context.register_all();
    context.add_function(limits::GUARD, limits::guard);
    context.add_function(limits::TICK, limits::tick);
    context.add_function(limits::LIST_BEGIN, limits::list_begin);
    context.add_function(limits::LIST_TICK, limits::list_tick);
    context.add_function("replace", limits::guarded_replace);
    context.add_function("lists.range", limits::guarded_range);
    // CEL's `dyn(x)`: a type-checker hint, the identity when evaluating.
    context.add_function("dyn", identity);
    context.add_function("orValue", or_value);
    crate::supplied::register(&mut context);
    context
}

/// `x.orValue(default)`: an optional's value, or the default when it has
/// none. Called on a value that is not optional (`container.volumeMounts
/// .orValue([])`), it gives that value, as Kyverno's policy library expects
/// (its tests pass such policies); cel-go's checker would refuse it.
fn or_value(
    kube_cel::cel::extractors::This(this): kube_cel::cel::extractors::This<Value>,
    default: Value,
) -> ResolveResult {
    match <&kube_cel::cel::objects::OptionalValue>::try_from(&this) {
        Ok(optional) => Ok(optional.value().cloned().unwrap_or(default)),
        Err(_) => Ok(this),
    }
}

/// `dyn(x)`: `x`.
fn identity(value: Value) -> ResolveResult {
    Ok(value)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An interpreter error in words a user can act on.
fn describe_execution_error(error: &kube_cel::cel::ExecutionError) -> String {
    use kube_cel::cel::ExecutionError as E;
    match error {
        E::NoSuchKey(key) => format!("no such key: {key}"),
        E::UndeclaredReference(name) => format!("undeclared reference to '{name}'"),
        E::NoSuchOverload => "no matching overload (wrong argument types)".to_string(),
        other => one_line(&other.to_string()),
    }
}

/// Prefixes of the namespaced functions (`lists.range(3)`, `optional.of(x)`):
/// the prefix is not a variable.
const FUNCTION_NAMESPACES: &[&str] = &[
    "base64",
    "format",
    "hash",
    "ip",
    "json",
    "jsonpatch",
    "lists",
    "math",
    "optional",
    "random",
    "runtime",
    "sets",
    "strings",
];

fn is_namespaced_call(call: &kube_cel::cel::common::ast::CallExpr) -> bool {
    matches!(call.target.as_deref(), Some(IdedExpr { expr: Expr::Ident(ns), .. }) if FUNCTION_NAMESPACES.contains(&ns.as_str()))
}

/// Field paths from free identifiers (see [`Program::field_paths`]).
fn collect_paths(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Some(path) = select_path(expr, bound) {
        out.push(path);
        // Indexes inside the chain (`a[b.c]`) may hold paths of their own.
        for_each_index_argument(expr, |arg| collect_paths(arg, bound, out));
        return;
    }
    match &expr.expr {
        Expr::Comprehension(c) => {
            collect_paths(&c.iter_range, bound, out);
            collect_paths(&c.accu_init, bound, out);
            let mark = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(second) = &c.iter_var2 {
                bound.push(second.clone());
            }
            bound.push(c.accu_var.clone());
            collect_paths(&c.loop_cond, bound, out);
            collect_paths(&c.loop_step, bound, out);
            collect_paths(&c.result, bound, out);
            bound.truncate(mark);
        }
        Expr::Call(call) if is_namespaced_call(call) => {
            call.args.iter().for_each(|a| collect_paths(a, bound, out));
        }
        _ => for_each_child(expr, |child| collect_paths(child, bound, out)),
    }
}

/// `a.b["c"].?d` as `[a, b, c, d]`, when it starts at a free identifier.
fn select_path(expr: &IdedExpr, bound: &[String]) -> Option<Vec<String>> {
    match &expr.expr {
        Expr::Ident(name) if !bound.contains(name) => Some(vec![name.clone()]),
        Expr::Select(select) => {
            let mut path = select_path(&select.operand, bound)?;
            path.push(select.field.clone());
            Some(path)
        }
        Expr::Call(call) if is_index(&call.func_name) && call.args.len() == 2 => {
            let mut path = select_path(&call.args[0], bound)?;
            match &call.args[1].expr {
                Expr::Literal(literal) => path.push(literal_text(literal)),
                _ => return Some(path),
            }
            Some(path)
        }
        _ => None,
    }
}

fn for_each_index_argument(expr: &IdedExpr, mut f: impl FnMut(&IdedExpr)) {
    let mut node = expr;
    loop {
        match &node.expr {
            Expr::Select(select) => node = &select.operand,
            Expr::Call(call) if is_index(&call.func_name) && call.args.len() == 2 => {
                if !matches!(call.args[1].expr, Expr::Literal(_)) {
                    f(&call.args[1]);
                }
                node = &call.args[0];
            }
            _ => return,
        }
    }
}

fn is_index(name: &str) -> bool {
    name == "_[_]" || name == "_[?_]" || name == "_?._"
}

fn literal_text(literal: &kube_cel::cel::common::ast::LiteralValue) -> String {
    use kube_cel::cel::common::ast::LiteralValue as L;
    match literal {
        L::String(s) => s.to_string(),
        L::Int(i) => i.to_string(),
        L::UInt(u) => u.to_string(),
        other => format!("{other:?}"),
    }
}
