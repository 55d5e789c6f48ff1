//! Execution: walks a tree with a dot and variables, as Go's
//! `text/template` `exec.go` does, within a budget.

use std::sync::Arc;
use std::time::Instant;

use crate::fmt::print_value;
use crate::parse::{Arg, BranchKind, Command, Node, Pipeline};
use crate::value::Value;
use crate::{Limits, MissingKey, Named, Templates};

/// What stops execution: a message, and whether it already says where.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) message: String,
    located: bool,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            located: false,
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// Shared by an execution and every template it includes: the limits and
/// what has been spent of them.
pub(crate) struct Budget {
    limits: Limits,
    started: Instant,
    steps: u64,
    written: usize,
    depth: usize,
    /// The random sequence of this execution (see [`crate::Options::seed`]).
    random: u64,
    /// The template the execution started from.
    executed: String,
}

impl Budget {
    /// A budget for executing the template `name`; its random sequence
    /// starts from `seed` and the name.
    pub(crate) fn new(limits: Limits, seed: u64, name: &str) -> Budget {
        let named = name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Budget {
            limits,
            started: Instant::now(),
            steps: 0,
            written: 0,
            depth: 0,
            random: named,
            executed: name.to_string(),
        }
    }

    /// The template the execution started from.
    pub(crate) fn executed(&self) -> &str {
        &self.executed
    }

    /// The next number of the execution's random sequence (splitmix64).
    pub(crate) fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(Failure::new(format!(
                "template execution exceeded {} steps",
                self.limits.max_steps
            )));
        }
        if self.steps.is_multiple_of(1024) && self.started.elapsed() > self.limits.timeout {
            return Err(Failure::new(format!(
                "template execution took longer than {:?}",
                self.limits.timeout
            )));
        }
        Ok(())
    }

    fn write(&mut self, bytes: usize) -> Result<()> {
        self.written += bytes;
        if self.written > self.limits.max_output {
            return Err(Failure::new(format!(
                "template output exceeded {} bytes",
                self.limits.max_output
            )));
        }
        Ok(())
    }
}

/// How a walk of a list ended.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// One template being executed.
pub(crate) struct Exec<'a> {
    pub(crate) set: &'a Templates,
    pub(crate) budget: &'a mut Budget,
    /// The executing template's name (`executing "name"` in errors).
    pub(crate) name: &'a str,
    source: Arc<crate::Source>,
    vars: Vec<(&'a str, Value)>,
    out: String,
    /// Where the command being evaluated starts (errors name it).
    at: usize,
}

impl<'a> Exec<'a> {
    /// Executes the template `name` of `set` with `dot`.
    pub(crate) fn run(
        set: &'a Templates,
        budget: &'a mut Budget,
        name: &str,
        dot: &Value,
    ) -> std::result::Result<String, crate::Error> {
        let Some(template) = set.template(name) else {
            return Err(crate::Error::exec(format!(
                "template: no template {name:?} associated with template {:?}",
                set.first_name().unwrap_or(name)
            )));
        };
        Exec::run_template(set, budget, name, template, dot)
    }

    /// Runs `template` (of `set`, or parsed for it) as `name`.
    fn run_template(
        set: &'a Templates,
        budget: &'a mut Budget,
        name: &'a str,
        template: &'a Named,
        dot: &Value,
    ) -> std::result::Result<String, crate::Error> {
        output_of(set, budget, name, template, dot).map_err(|f| crate::Error::exec(f.message))
    }

    /// Runs a template from within this one (`{{template}}`, `include`),
    /// sharing the budget; returns its output.
    pub(crate) fn nested(&mut self, name: &str, dot: &Value) -> Result<String> {
        let Some(template) = self.set.template(name) else {
            return Err(Failure::new(format!("template {name:?} not defined")));
        };
        if self.budget.depth >= self.budget.limits.max_depth {
            return Err(Failure::new(format!(
                "exceeded maximum template depth ({})",
                self.budget.limits.max_depth
            )));
        }
        self.budget.depth += 1;
        let result = output_of(
            self.set,
            &mut *self.budget,
            &template.tree.name,
            template,
            dot,
        );
        self.budget.depth -= 1;
        result
    }

    /// Executes `text`, parsed into a copy of the set under this template's
    /// source name (Helm's `tpl`). The text itself runs even when it is
    /// empty (its templates join the copy only where they have a body, as
    /// in Go, but Go executes the new template it parsed).
    pub(crate) fn render_text(&mut self, text: &str, dot: &Value) -> Result<String> {
        let mut set = self.set.clone();
        let name = self.source.name.clone();
        let parsed = set
            .parse_apart(&name, text)
            .map_err(|e| Failure::new(e.to_string()))?;
        set.add_parsed(&parsed);
        let Some(main) = parsed.main() else {
            return Ok(String::new());
        };
        if self.budget.depth >= self.budget.limits.max_depth {
            return Err(Failure::new(format!(
                "exceeded maximum template depth ({})",
                self.budget.limits.max_depth
            )));
        }
        self.budget.depth += 1;
        let result = Exec::run_template(&set, &mut *self.budget, &name, main, dot)
            .map_err(|e| Failure::new(e.to_string()));
        self.budget.depth -= 1;
        result
    }

    /// Adds the location of `pos` and the node to a failure that has none.
    fn locate(&self, failure: Failure, pos: usize, node: &dyn std::fmt::Display) -> Failure {
        if failure.located {
            return failure;
        }
        let (line, col) = self.source.line_col(pos);
        Failure {
            message: format!(
                "template: {}:{line}:{col}: executing {:?} at <{node}>: {}",
                self.source.name, self.name, failure.message
            ),
            located: true,
        }
    }

    fn write(&mut self, text: &str) -> Result<()> {
        self.budget.write(text.len())?;
        self.out.push_str(text);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &'a [Node]) -> Result<Flow> {
        for node in nodes {
            self.budget.step()?;
            match node {
                Node::Text(text) => self.write(text)?,
                Node::Action(pipe) => {
                    let value = self.pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match value {
                            Value::Missing | Value::Nil => self.write("<no value>")?,
                            // A string prints as itself: write it without a copy.
                            Value::String(text) => self.write(&text)?,
                            v => self.write(&print_value(&v))?,
                        }
                    }
                }
                Node::Branch {
                    kind,
                    pipe,
                    then,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let value = self.pipeline(dot, pipe)?;
                    let flow = if value.is_true() {
                        let inner = if *kind == BranchKind::With {
                            &value
                        } else {
                            dot
                        };
                        self.walk(inner, then)?
                    } else {
                        self.walk(dot, otherwise)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let flow = self.range(dot, pipe, body, otherwise)?;
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Template { pos, name, pipe } => {
                    let value = match pipe {
                        Some(pipe) => self.pipeline(dot, pipe)?,
                        None => Value::Nil,
                    };
                    let text = self
                        .nested(name, &value)
                        .map_err(|f| self.locate(f, *pos, &template_node(name, pipe.as_ref())))?;
                    self.write(&text)?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        dot: &Value,
        pipe: &'a Pipeline,
        body: &'a [Node],
        otherwise: &'a [Node],
    ) -> Result<Flow> {
        let value = self.pipeline(dot, pipe)?;
        let items: Vec<(Value, Value)> = match &value {
            Value::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(map) => map
                .entries()
                .into_iter()
                .map(|(k, v)| (Value::string(k), v))
                .collect(),
            Value::Int(n) | Value::Int64(n) => {
                if pipe.decl.len() > 1 {
                    return Err(self.locate(
                        Failure::new(format!(
                            "can't use {n} to iterate over more than one variable"
                        )),
                        pipe.pos,
                        pipe,
                    ));
                }
                (0..*n.max(&0))
                    .map(|i| (value.clone(), Value::Int(i)))
                    .collect()
            }
            Value::Missing | Value::Nil => Vec::new(),
            Value::Object(o) if o.elements().is_some() => o
                .elements()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v))
                .collect(),
            Value::Object(o) if o.entries().is_some() => o
                .entries()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (Value::string(k), v))
                .collect(),
            other => {
                return Err(self.locate(
                    Failure::new(format!("range can't iterate over {}", print_value(other))),
                    pipe.pos,
                    pipe,
                ));
            }
        };
        if items.is_empty() {
            return self.walk(dot, otherwise);
        }
        let top = self.vars.len();
        for (index, element) in items {
            self.budget.step()?;
            match pipe.decl.len() {
                0 => {}
                1 => self.set_top(top, 1, element.clone()),
                _ => {
                    self.set_top(top, 2, index);
                    self.set_top(top, 1, element.clone());
                }
            }
            let mark = self.vars.len();
            let flow = self.walk(&element, body)?;
            self.vars.truncate(mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// Sets the n-th variable from the top of the range's scope.
    fn set_top(&mut self, top: usize, n: usize, value: Value) {
        if let Some(slot) = top.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = value;
        }
    }

    fn variable(&self, name: &str) -> Result<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| Failure::new(format!("undefined variable: {name}")))
    }

    fn pipeline(&mut self, dot: &Value, pipe: &'a Pipeline) -> Result<Value> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(dot, cmd, value)?);
        }
        // A nil interface is no value (Go unwraps the interface).
        let value = match value.unwrap_or_default() {
            Value::Nil => Value::Missing,
            v => v,
        };
        for name in &pipe.decl {
            if pipe.assign {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| Failure::new(format!("undefined variable: {name}")))?;
                slot.1 = value.clone();
            } else {
                self.vars.push((name, value.clone()));
            }
        }
        Ok(value)
    }

    fn command(&mut self, dot: &Value, cmd: &'a Command, last: Option<Value>) -> Result<Value> {
        self.at = cmd.pos;
        let first = &cmd.args[0];
        let result = match first {
            Arg::Field(names) => self.field_chain(dot, dot, names, &cmd.args[1..], last),
            Arg::Chain(base, names) => {
                let receiver = self.arg(dot, base)?;
                self.field_chain(dot, &receiver, names, &cmd.args[1..], last)
            }
            Arg::Variable(name, names) if !names.is_empty() => {
                let receiver = self.variable(name)?;
                self.field_chain(dot, &receiver, names, &cmd.args[1..], last)
            }
            Arg::Function(name) => self.function(dot, name, &cmd.args[1..], last),
            Arg::Nil => Err(Failure::new("nil is not a command")),
            other => {
                if cmd.args.len() > 1 || last.is_some() {
                    Err(Failure::new(format!(
                        "can't give argument to non-function {other}"
                    )))
                } else {
                    self.arg(dot, other)
                }
            }
        };
        // A function's own error names the whole call, as Go's does.
        let node: &dyn std::fmt::Display = match first {
            Arg::Function(_) => cmd,
            _ => first,
        };
        result.map_err(|f| self.locate(f, cmd.pos, node))
    }

    /// `.a.b.c` from `receiver`; the last field gets `args` (the
    /// command's other words: a method call).
    fn field_chain(
        &mut self,
        dot: &Value,
        receiver: &Value,
        names: &[String],
        args: &'a [Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        // Keys of nested maps are followed in one step; the last name is
        // left to `field` when it gets arguments (a method call), and
        // whatever the maps do not answer (a missing key, an object's
        // method, an error) too.
        let plain = args.is_empty() && last.is_none();
        let followable = if plain {
            names
        } else {
            &names[..names.len().saturating_sub(1)]
        };
        let (followed, mut receiver) = match receiver {
            Value::Map(map) => match map.follow(followable) {
                Some((followed, value)) => (followed, value),
                None => (0, receiver.clone()),
            },
            other => (0, other.clone()),
        };
        let Some((final_name, path)) = names[followed..].split_last() else {
            return Ok(receiver);
        };
        for name in path {
            receiver = self.field(dot, receiver, name, &[], None)?;
        }
        self.field(dot, receiver, final_name, args, last)
    }

    fn field(
        &mut self,
        dot: &Value,
        receiver: Value,
        name: &str,
        args: &'a [Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        let has_args = !args.is_empty() || last.is_some();
        match receiver {
            Value::Missing => {
                if self.set.options.missing_key == MissingKey::Error {
                    return Err(Failure::new(format!("nil data; no entry for key {name:?}")));
                }
                Ok(Value::Missing)
            }
            Value::Nil => Err(Failure::new(format!(
                "nil pointer evaluating interface {{}}.{name}"
            ))),
            Value::Object(object) => {
                let values = self.args(dot, args, last)?;
                match object.member(name, &values) {
                    Some(result) => {
                        result.map_err(|e| Failure::new(format!("error calling {name}: {e}")))
                    }
                    None => Err(Failure::new(format!(
                        "can't evaluate field {name} in type {}",
                        object.type_name()
                    ))),
                }
            }
            Value::Map(map) => {
                if has_args {
                    return Err(Failure::new(format!(
                        "{name} is not a method but has arguments"
                    )));
                }
                match map.get(name) {
                    Some(v) => Ok(v),
                    None => match self.set.options.missing_key {
                        MissingKey::Default => Ok(Value::Missing),
                        MissingKey::Zero => Ok(Value::Nil),
                        MissingKey::Error => {
                            Err(Failure::new(format!("map has no entry for key {name:?}")))
                        }
                    },
                }
            }
            other => Err(Failure::new(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            ))),
        }
    }

    /// The arguments' values, then `last` (the value piped in), if any.
    fn args(&mut self, dot: &Value, args: &'a [Arg], last: Option<Value>) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(args.len() + usize::from(last.is_some()));
        for arg in args {
            values.push(as_argument(self.arg(dot, arg)?));
        }
        values.extend(last.map(as_argument));
        Ok(values)
    }

    /// The value of one word used as an argument.
    fn arg(&mut self, dot: &Value, arg: &'a Arg) -> Result<Value> {
        let result = match arg {
            Arg::Dot => Ok(dot.clone()),
            Arg::Nil => Ok(Value::Nil),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Int(n, _) => Ok(Value::Int(*n)),
            Arg::Float(f, _) => Ok(Value::Float(*f)),
            Arg::Str(s) => Ok(Value::String(s.clone())),
            Arg::Field(names) => self.field_chain(dot, dot, names, &[], None),
            Arg::Variable(name, names) if names.is_empty() => self.variable(name),
            Arg::Variable(name, names) => {
                let receiver = self.variable(name)?;
                self.field_chain(dot, &receiver, names, &[], None)
            }
            Arg::Function(name) => self.function(dot, name, &[], None),
            Arg::Chain(base, names) => {
                let receiver = self.arg(dot, base)?;
                self.field_chain(dot, &receiver, names, &[], None)
            }
            Arg::Pipe(pipe) => {
                let mark = self.vars.len();
                let value = self.pipeline(dot, pipe);
                self.vars.truncate(mark);
                value
            }
        };
        result.map_err(|f| match arg {
            Arg::Field(_) | Arg::Variable(..) | Arg::Function(_) | Arg::Chain(..) => {
                self.locate(f, self.at, arg)
            }
            _ => f,
        })
    }

    fn function(
        &mut self,
        dot: &Value,
        name: &str,
        args: &'a [Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        if name == "and" || name == "or" {
            return self.and_or(dot, name == "and", args, last);
        }
        let function = self
            .set
            .function(name)
            .ok_or_else(|| Failure::new(format!("{name:?} is not a defined function")))?;
        let values = self.args(dot, args, last)?;
        self.refuse_field_nil_for_maps(name, args, &values)?;
        let mut context = crate::Context { exec: self };
        function(&mut context, &values)
            .map_err(|e| Failure::new(format!("error calling {name}: {e}")))
    }

    /// Go's check of a declared map parameter
    /// ([`Templates::declare_map_parameters`]): a nil read from a field is
    /// an `interface {}`, which a map parameter does not take.
    fn refuse_field_nil_for_maps(
        &self,
        name: &str,
        args: &'a [Arg],
        values: &[Value],
    ) -> Result<()> {
        let Some(positions) = self.set.map_parameters(name) else {
            return Ok(());
        };
        for (i, (arg, value)) in args.iter().zip(values).enumerate() {
            let from_field = match arg {
                Arg::Field(_) | Arg::Chain(..) => true,
                Arg::Variable(_, names) => !names.is_empty(),
                _ => false,
            };
            if from_field && value.is_nil() && positions.contains(&i) {
                let failure = Failure::new(
                    "wrong type for value; expected map[string]interface {}; got interface {}",
                );
                return Err(self.locate(failure, self.at, arg));
            }
        }
        Ok(())
    }

    /// `and` and `or` evaluate arguments only as far as needed and return
    /// the deciding one.
    fn and_or(
        &mut self,
        dot: &Value,
        and: bool,
        args: &'a [Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        let name = if and { "and" } else { "or" };
        let count = args.len() + usize::from(last.is_some());
        if count == 0 {
            return Err(Failure::new(format!(
                "wrong number of args for {name}: want at least 1 got 0"
            )));
        }
        let mut value = Value::Missing;
        for arg in args {
            value = as_argument(self.arg(dot, arg)?);
            if value.is_true() != and {
                return Ok(value);
            }
        }
        if let Some(last) = last {
            value = as_argument(last);
        }
        Ok(value)
    }
}

/// Runs `template` as `name` with `dot` on `budget`: its output, whose
/// length is remembered to size the next run's buffer.
fn output_of<'a>(
    set: &'a Templates,
    budget: &'a mut Budget,
    name: &'a str,
    template: &'a Named,
    dot: &Value,
) -> Result<String> {
    let mut exec = Exec {
        set,
        budget,
        name,
        source: template.source.clone(),
        vars: vec![("$", dot.clone())],
        out: template.output_buffer(),
        at: 0,
    };
    exec.walk(dot, &template.tree.root)?;
    template.remember_output_len(exec.out.len());
    Ok(exec.out)
}

/// How Go prints a `{{template}}` node in errors.
fn template_node(name: &str, pipe: Option<&Pipeline>) -> String {
    match pipe {
        Some(pipe) => format!("{{{{template {name:?} {pipe}}}}}"),
        None => format!("{{{{template {name:?}}}}}"),
    }
}

/// What a function receives for a value: Go passes a missing value to an
/// `interface {}` parameter as nil.
fn as_argument(value: Value) -> Value {
    match value {
        Value::Missing => Value::Nil,
        v => v,
    }
}
