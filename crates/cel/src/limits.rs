//! Limits that keep a hostile expression from hanging or exhausting the
//! process, and how they are enforced.
//!
//! - **Before parsing**: the source length and its bracket nesting depth
//!   ([`check_source`]); the parser's own recursion limit is set below ours.
//! - **After parsing**: message construction (`Foo{…}`) is refused, since the
//!   interpreter cannot evaluate it ([`check_supported`]).
//! - **While running**: the expression is instrumented ([`instrument`]):
//!   every function call's result passes through a guard that charges one
//!   unit plus its size and refuses strings and lists over the size limits,
//!   and every iteration of a comprehension charges one unit. When the
//!   budget is spent, or every so often the clock says the deadline passed,
//!   the evaluation fails. `replace` and `lists.range`, whose results can be
//!   far larger than their inputs, check the size before building it.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_cel::cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use kube_cel::cel::extractors::{Arguments, This};
use kube_cel::cel::objects::Value;
use kube_cel::cel::{ExecutionError, ResolveResult};

use crate::CelError;

/// The limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest source accepted, in bytes.
    pub max_source_bytes: usize,
    /// Deepest nesting of brackets and parentheses in the source.
    pub max_nesting: usize,
    /// Units of work one evaluation may do: one per function call and per
    /// comprehension iteration, plus one per 64 bytes of every string and one
    /// per element of every list or map a call returns.
    pub cost_budget: u64,
    /// Largest string any call may return, in bytes.
    pub max_string_bytes: usize,
    /// Most elements a list or map returned by a call may hold.
    pub max_list_len: usize,
    /// Longest one evaluation may run.
    pub deadline: Duration,
}

impl Default for Limits {
    /// Kubernetes' per-expression cost limit is 1,000,000; gitplane's units
    /// are comparable. Strings up to 4 MiB (above any object the API server
    /// accepts), lists up to 100,000 elements, one second of wall time.
    fn default() -> Self {
        Limits {
            max_source_bytes: 64 * 1024,
            max_nesting: 48,
            cost_budget: 1_000_000,
            max_string_bytes: 4 * 1024 * 1024,
            max_list_len: 100_000,
            deadline: Duration::from_secs(1),
        }
    }
}

/// The name of the guard every function call's result goes through. A name
/// starting with `@` cannot be written in CEL source, so users cannot call
/// or shadow it.
pub(crate) const GUARD: &str = "@gp_guard";
/// The name of the function charged on every comprehension iteration.
pub(crate) const TICK: &str = "@gp_tick";
/// The start of a comprehension that builds a list.
pub(crate) const LIST_BEGIN: &str = "@gp_list_begin";
/// An iteration of a comprehension that builds a list.
pub(crate) const LIST_TICK: &str = "@gp_list_tick";

/// How often (in charges) the guard looks at the clock.
const CLOCK_EVERY: u64 = 256;

/// What stopped an evaluation, kept where the guard functions can see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Cost,
    Time,
    Size,
}

struct Meter {
    limits: Limits,
    spent: u64,
    started: Instant,
    stopped: Option<Stop>,
    /// Iterations so far of each running comprehension that builds a list,
    /// by the id of its node.
    list_loops: Vec<(i64, u64)>,
}

thread_local! {
    static METER: RefCell<Option<Meter>> = const { RefCell::new(None) };
}

/// Starts metering an evaluation on this thread; [`finish`] ends it.
pub(crate) fn start(limits: Limits) {
    METER.with(|m| {
        *m.borrow_mut() = Some(Meter {
            limits,
            spent: 0,
            started: Instant::now(),
            stopped: None,
            list_loops: Vec::new(),
        })
    });
}

/// Ends metering; returns the units spent and what stopped the
/// evaluation, if a limit did.
pub(crate) fn finish() -> (u64, Option<Stop>) {
    METER
        .with(|m| m.borrow_mut().take())
        .map_or((0, None), |meter| (meter.spent, meter.stopped))
}

/// The error a stop becomes.
pub(crate) fn stop_error(stop: Stop, limits: &Limits, detail: &str) -> CelError {
    match stop {
        Stop::Cost => CelError::CostLimit {
            limit: limits.cost_budget,
        },
        Stop::Time => CelError::TimeLimit {
            millis: limits.deadline.as_millis(),
        },
        Stop::Size => CelError::SizeLimit(detail.to_string()),
    }
}

/// Charges `units`; fails once the budget or the deadline is exceeded.
fn charge(units: u64) -> Result<(), ExecutionError> {
    with_meter(|meter| {
        let before = meter.spent;
        meter.spent = meter.spent.saturating_add(units);
        if meter.spent > meter.limits.cost_budget {
            meter.stopped = Some(Stop::Cost);
            Err(ExecutionError::function_error(
                "cost",
                "cost limit exceeded",
            ))
        } else if before / CLOCK_EVERY != meter.spent / CLOCK_EVERY
            && meter.started.elapsed() > meter.limits.deadline
        {
            meter.stopped = Some(Stop::Time);
            Err(ExecutionError::function_error(
                "time",
                "time limit exceeded",
            ))
        } else {
            Ok(())
        }
    })
    .unwrap_or(Ok(()))
}

/// Runs `f` on this thread's meter, if an evaluation is being metered.
fn with_meter<T>(f: impl FnOnce(&mut Meter) -> T) -> Option<T> {
    METER.with(|m| m.borrow_mut().as_mut().map(f))
}

/// The limits of the evaluation running on this thread.
pub(crate) fn current_limits() -> Limits {
    with_meter(|meter| meter.limits).unwrap_or_default()
}

fn size_error(what: String) -> ExecutionError {
    with_meter(|meter| meter.stopped = Some(Stop::Size));
    ExecutionError::function_error("size", what)
}

/// Refuses a value over the size limits; returns its size in cost units.
fn check_size(value: &Value, limits: &Limits) -> Result<u64, ExecutionError> {
    match value {
        Value::String(s) if s.len() > limits.max_string_bytes => Err(size_error(format!(
            "a string of {} bytes (the limit is {})",
            s.len(),
            limits.max_string_bytes
        ))),
        Value::String(s) => Ok(s.len() as u64 / 64),
        Value::Bytes(b) if b.len() > limits.max_string_bytes => Err(size_error(format!(
            "{} bytes (the limit is {})",
            b.len(),
            limits.max_string_bytes
        ))),
        Value::Bytes(b) => Ok(b.len() as u64 / 64),
        Value::List(items) if items.len() > limits.max_list_len => Err(size_error(format!(
            "a list of {} elements (the limit is {})",
            items.len(),
            limits.max_list_len
        ))),
        Value::List(items) => Ok(items.len() as u64),
        Value::Map(map) if map.map.len() > limits.max_list_len => Err(size_error(format!(
            "a map of {} entries (the limit is {})",
            map.map.len(),
            limits.max_list_len
        ))),
        Value::Map(map) => Ok(map.map.len() as u64),
        _ => Ok(0),
    }
}

/// `@gp_guard(v)`: charges for a call's result and checks its size.
pub(crate) fn guard(value: Value) -> ResolveResult {
    let limits = current_limits();
    let size = check_size(&value, &limits)?;
    charge(1 + size)?;
    Ok(value)
}

/// `@gp_tick()`: charges one comprehension iteration.
pub(crate) fn tick() -> ResolveResult {
    charge(1)?;
    Ok(Value::Bool(true))
}

/// `@gp_list_begin(id, init)`: a comprehension that builds a list (`map`,
/// `filter`) starts; returns its initial accumulator unchanged.
pub(crate) fn list_begin(id: i64, init: Value) -> ResolveResult {
    with_meter(
        |meter| match meter.list_loops.iter_mut().find(|(i, _)| *i == id) {
            Some(slot) => slot.1 = 0,
            None => meter.list_loops.push((id, 0)),
        },
    );
    Ok(init)
}

/// `@gp_list_tick(id)`: one iteration of a comprehension that builds a
/// list. The interpreter copies the list built so far on every iteration,
/// so the n-th iteration costs about n: it is charged n/8, which keeps the
/// budget's meaning (work done) for loops over a few thousand elements.
pub(crate) fn list_tick(id: i64) -> ResolveResult {
    let iterations =
        with_meter(
            |meter| match meter.list_loops.iter_mut().find(|(i, _)| *i == id) {
                Some(slot) => {
                    slot.1 += 1;
                    slot.1
                }
                None => 1,
            },
        )
        .unwrap_or(1);
    charge(1 + iterations / 8)?;
    Ok(Value::Bool(true))
}

/// `s.replace(old, new[, n])` that refuses, before building it, a result over
/// the string limit.
pub(crate) fn guarded_replace(
    This(this): This<Arc<String>>,
    Arguments(args): Arguments,
) -> ResolveResult {
    let (from, to, n) = match args.as_slice() {
        [Value::String(from), Value::String(to)] => (from, to, None),
        [Value::String(from), Value::String(to), Value::Int(n)] => (from, to, Some(*n)),
        _ => {
            return Err(ExecutionError::function_error(
                "replace",
                "expects (string, string) or (string, string, int)",
            ));
        }
    };
    let occurrences = if from.is_empty() {
        this.chars().count() + 1
    } else {
        this.matches(from.as_str()).count()
    };
    let replaced = match n {
        Some(n) if n >= 0 => occurrences.min(n as usize),
        _ => occurrences,
    };
    let limits = current_limits();
    let estimate = this.len().saturating_add(replaced.saturating_mul(to.len()));
    if estimate > limits.max_string_bytes {
        return Err(size_error(format!(
            "replace would build a string of about {estimate} bytes (the limit is {})",
            limits.max_string_bytes
        )));
    }
    charge(1 + estimate as u64 / 64)?;
    Ok(Value::String(Arc::new(match n {
        Some(n) if n >= 0 => this.replacen(from.as_str(), to.as_str(), n as usize),
        _ => this.replace(from.as_str(), to.as_str()),
    })))
}

/// `lists.range(n)` that refuses, before building it, a list over the limit.
pub(crate) fn guarded_range(n: i64) -> ResolveResult {
    let limits = current_limits();
    if n < 0 {
        return Err(ExecutionError::function_error(
            "lists.range",
            "range argument must be non-negative",
        ));
    }
    if n as u64 > limits.max_list_len as u64 {
        return Err(size_error(format!(
            "lists.range({n}) would build a list of {n} elements (the limit is {})",
            limits.max_list_len
        )));
    }
    charge(1 + n as u64)?;
    Ok(Value::List(Arc::new((0..n).map(Value::Int).collect())))
}

/// Refuses a source that is too long or too deeply nested, before the parser
/// (which recurses per nesting level) sees it.
pub(crate) fn check_source(source: &str, limits: &Limits) -> Result<(), CelError> {
    if source.len() > limits.max_source_bytes {
        return Err(CelError::TooLarge(format!(
            "{} bytes (the limit is {})",
            source.len(),
            limits.max_source_bytes
        )));
    }
    let mut depth = 0usize;
    let mut unary_run = 0usize;
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        if let Some(quote) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                in_string = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => in_string = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Chains of unary operators (`!!!!x`, `----x`) nest in the parser too.
        if c == '!' || c == '-' {
            unary_run += 1;
        } else if !c.is_whitespace() {
            unary_run = 0;
        }
        if depth > limits.max_nesting || unary_run > limits.max_nesting {
            return Err(CelError::TooLarge(format!(
                "nested more than {} levels deep",
                limits.max_nesting
            )));
        }
    }
    Ok(())
}

/// Refuses what parses but cannot be evaluated.
pub(crate) fn check_supported(expr: &IdedExpr) -> Result<(), CelError> {
    let mut result = Ok(());
    crate::ast::visit(expr, &mut |e| {
        if result.is_err() {
            return;
        }
        match &e.expr {
            Expr::Struct(s) => {
                result = Err(CelError::Unsupported(format!(
                    "message construction `{}{{…}}`",
                    s.type_name
                )))
            }
            Expr::Unspecified => {
                result = Err(CelError::Syntax("incomplete expression".to_string()))
            }
            _ => {}
        }
    });
    result
}

/// Rewrites an expression so that evaluating it is metered: every call is
/// wrapped in the guard, and every comprehension's loop condition charges a
/// tick; optional field selection is rewritten as the equivalent optional
/// index, which the interpreter gets right. Calls that a macro generates to carry its accumulator (they take
/// the accumulator itself as an argument) are not wrapped: guarding them
/// would copy the growing result on every iteration.
/// Whether an (uninstrumented) expression is an optional select or index,
/// or a step after one.
fn is_optional_chain(expr: &IdedExpr) -> bool {
    match &expr.expr {
        Expr::Call(call) if call.func_name == "_?._" || call.func_name == "_[?_]" => true,
        Expr::Call(call) if call.func_name == "_[_]" => {
            call.args.first().is_some_and(is_optional_chain)
        }
        Expr::Select(select) if !select.test => is_optional_chain(&select.operand),
        _ => false,
    }
}

pub(crate) fn instrument(expr: IdedExpr) -> IdedExpr {
    instrument_node(expr, None)
}

fn instrument_node(mut expr: IdedExpr, accumulator: Option<&str>) -> IdedExpr {
    let id = expr.id;
    expr.expr = match expr.expr {
        Expr::Call(mut call) => {
            // The interpreter fails `m.?missing` on a map without the key
            // (it should be an empty optional); `m[?"missing"]` is the same
            // operation and works.
            if call.func_name == "_?._" {
                call.func_name = "_[?_]".to_string();
            }
            // Indexing an optional is optional too (`a.?b[0]` is `a.?b[?0]`).
            if call.func_name == "_[_]" && call.args.first().is_some_and(is_optional_chain) {
                call.func_name = "_[?_]".to_string();
            }
            let plumbing = accumulator.is_some_and(|accu| {
                call.args
                    .iter()
                    .any(|a| matches!(&a.expr, Expr::Ident(n) if n == accu))
            });
            call.target = call
                .target
                .map(|t| Box::new(instrument_node(*t, accumulator)));
            call.args = call
                .args
                .into_iter()
                .map(|a| instrument_node(a, accumulator))
                .collect();
            if plumbing {
                Expr::Call(call)
            } else {
                call_guarded(id, call)
            }
        }
        // Once a chain is optional, every later step is (`a.?b.c` is
        // `a.?b.?c`, as in cel-go); the interpreter would make `.c` on an
        // optional a `false`.
        Expr::Select(select) if !select.test && is_optional_chain(&select.operand) => {
            let field = IdedExpr {
                id,
                expr: Expr::Literal(LiteralValue::String(select.field.as_str().into())),
            };
            let call = CallExpr {
                func_name: "_[?_]".to_string(),
                target: None,
                args: vec![*select.operand, field],
            };
            return instrument_node(
                IdedExpr {
                    id,
                    expr: Expr::Call(call),
                },
                accumulator,
            );
        }
        Expr::Select(mut select) => {
            select.operand = Box::new(instrument_node(*select.operand, accumulator));
            Expr::Select(select)
        }
        Expr::List(mut list) => {
            list.elements = list
                .elements
                .into_iter()
                .map(|e| instrument_node(e, accumulator))
                .collect();
            Expr::List(list)
        }
        Expr::Map(mut map) => {
            for entry in &mut map.entries {
                if let EntryExpr::MapEntry(e) = &mut entry.expr {
                    e.key = instrument_node(std::mem::take(&mut e.key), accumulator);
                    e.value = instrument_node(std::mem::take(&mut e.value), accumulator);
                }
            }
            Expr::Map(map)
        }
        Expr::Comprehension(mut c) => {
            c.iter_range = instrument_node(c.iter_range, accumulator);
            let builds_list = matches!(&c.accu_init.expr, Expr::List(l) if l.elements.is_empty());
            c.accu_init = instrument_node(c.accu_init, accumulator);
            let accu = c.accu_var.clone();
            c.loop_step = instrument_node(c.loop_step, Some(&accu));
            c.result = instrument_node(c.result, Some(&accu));
            let loop_id = IdedExpr {
                id,
                expr: Expr::Literal(LiteralValue::Int((id as i64).into())),
            };
            let tick = if builds_list {
                let init = std::mem::take(&mut c.accu_init);
                c.accu_init = call(id, LIST_BEGIN, vec![loop_id.clone(), init]);
                call(id, LIST_TICK, vec![loop_id])
            } else {
                call(id, TICK, Vec::new())
            };
            let condition = std::mem::take(&mut c.loop_cond);
            c.loop_cond = call(condition.id, "_&&_", vec![tick, condition]);
            Expr::Comprehension(c)
        }
        other => other,
    };
    expr
}

fn call_guarded(id: u64, inner: CallExpr) -> Expr {
    Expr::Call(CallExpr {
        func_name: GUARD.to_string(),
        target: None,
        args: vec![IdedExpr {
            id,
            expr: Expr::Call(inner),
        }],
    })
}

fn call(id: u64, function: &str, args: Vec<IdedExpr>) -> IdedExpr {
    IdedExpr {
        id,
        expr: Expr::Call(CallExpr {
            func_name: function.to_string(),
            target: None,
            args,
        }),
    }
}
