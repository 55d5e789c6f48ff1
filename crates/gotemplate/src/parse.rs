//! The parser: tokens into trees, with Go's checks made at parse time
//! (functions must be defined, variables declared, `break` inside `range`).

use std::fmt;
use std::sync::Arc;

use crate::lex::{Tok, Token};

/// A node of a template's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Text copied to the output.
    Text(String),
    /// `{{pipeline}}`: the value is printed unless the pipeline declares.
    Action(Pipeline),
    /// `{{if}}`, `{{with}}`: the body when the value is true, else `otherwise`.
    Branch {
        /// `if` or `with` (which also sets dot).
        kind: BranchKind,
        /// The condition.
        pipe: Pipeline,
        /// Executed when true.
        then: Vec<Node>,
        /// Executed when false (`else`, `else if`, `else with`).
        otherwise: Vec<Node>,
    },
    /// `{{range}}`.
    Range {
        /// The collection (and the variables it declares).
        pipe: Pipeline,
        /// Executed per element.
        body: Vec<Node>,
        /// Executed when there is no element.
        otherwise: Vec<Node>,
    },
    /// `{{template "name" pipeline}}`.
    Template {
        /// Where the action starts.
        pos: usize,
        /// The template executed.
        name: String,
        /// Its dot (nil without a pipeline).
        pipe: Option<Pipeline>,
    },
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
}

/// `if` or `with`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchKind {
    /// `{{if}}`.
    If,
    /// `{{with}}`.
    With,
}

/// A pipeline: commands joined by `|`, optionally declaring variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Where it starts.
    pub pos: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    pub decl: Vec<String>,
    /// Whether `decl` are assigned rather than declared.
    pub assign: bool,
    /// The commands.
    pub cmds: Vec<Command>,
}

/// One command of a pipeline: a function, field or value and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Where it starts.
    pub pos: usize,
    /// The words; the first is what is called.
    pub args: Vec<Arg>,
}

/// A word of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.`.
    Dot,
    /// `nil`.
    Nil,
    /// `true`, `false`.
    Bool(bool),
    /// An integer constant (also a character constant).
    Int(i64, String),
    /// A floating-point constant.
    Float(f64, String),
    /// A string constant.
    Str(Arc<str>),
    /// `.a.b`.
    Field(Vec<String>),
    /// `$x.a.b`.
    Variable(String, Vec<String>),
    /// A function's name.
    Function(String),
    /// `(pipeline).a.b`.
    Chain(Box<Arg>, Vec<String>),
    /// `(pipeline)`.
    Pipe(Box<Pipeline>),
}

/// One parsed template: its name and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// The template's name.
    pub name: String,
    /// The body.
    pub root: Vec<Node>,
}

impl Tree {
    /// Whether the body is only whitespace (an empty `define` does not
    /// replace an earlier one).
    pub fn is_empty(&self) -> bool {
        self.root
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
    }
}

/// A parse error at a byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub pos: usize,
}

type Result<T> = std::result::Result<T, ParseError>;

/// Parses `tokens` of a source named `name`: the main tree and every
/// `define`d (or `block`) tree, main first. `is_function` says whether a name is a function of the set (names are
/// checked at parse time, as in Go).
pub fn parse(
    name: &str,
    tokens: Vec<Token>,
    is_function: &dyn Fn(&str) -> bool,
) -> Result<Vec<Tree>> {
    let mut parser = Parser {
        tokens,
        at: 0,
        is_function,
        vars: vec!["$".to_string()],
        range_depth: 0,
        defined: Vec::new(),
    };
    let (root, end) = parser.list(true)?;
    if let Some(end) = end {
        return Err(ParseError {
            message: format!("unexpected {{{{{}}}}}", end.word()),
            pos: end.pos,
        });
    }
    let mut trees = vec![Tree {
        name: name.to_string(),
        root,
    }];
    trees.append(&mut parser.defined);
    Ok(trees)
}

/// What ended a list: `{{end}}` or `{{else}}`.
struct Ending {
    pos: usize,
    is_else: bool,
}

impl Ending {
    fn word(&self) -> &'static str {
        if self.is_else { "else" } else { "end" }
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    is_function: &'a dyn Fn(&str) -> bool,
    vars: Vec<String>,
    range_depth: usize,
    defined: Vec<Tree>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.tokens
            .get(self.at)
            .or(self.tokens.last())
            .map_or(0, |t| t.pos)
    }

    /// The next token, taken: the parser never steps back over a token it
    /// took (the one step back, in `declarations`, is over peeked ones).
    fn next(&mut self) -> Option<Tok> {
        let tok = self
            .tokens
            .get_mut(self.at)
            .map(|t| std::mem::replace(&mut t.tok, Tok::Space));
        self.at += 1;
        tok
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(&Tok::Space) {
            self.at += 1;
        }
    }

    fn peek_non_space(&mut self) -> Option<&Tok> {
        self.skip_space();
        self.peek()
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(ParseError {
            message: message.into(),
            pos: self.pos(),
        })
    }

    fn expect_close(&mut self, context: &str) -> Result<()> {
        match self.peek_non_space() {
            Some(Tok::Close) => {
                self.at += 1;
                Ok(())
            }
            other => {
                let found = other.map_or("EOF".to_string(), describe);
                self.error(format!("unexpected {found} in {context}"))
            }
        }
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of input.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Option<Ending>)> {
        let mut nodes = Vec::new();
        while let Some(tok) = self.next() {
            match tok {
                Tok::Text(text) => nodes.push(Node::Text(text)),
                Tok::Open => {
                    let pos = self.pos();
                    match self.peek_non_space().cloned() {
                        Some(Tok::Ident(word)) if word == "end" || word == "else" => {
                            self.at += 1;
                            if word == "end" {
                                self.expect_close("end")?;
                            }
                            return Ok((
                                nodes,
                                Some(Ending {
                                    pos,
                                    is_else: word == "else",
                                }),
                            ));
                        }
                        Some(Tok::Ident(word)) if word == "define" => {
                            if !top {
                                return self.error("unexpected <define> in command");
                            }
                            self.at += 1;
                            self.define()?;
                        }
                        _ => {
                            if let Some(node) = self.action()? {
                                nodes.push(node);
                            }
                        }
                    }
                }
                other => return self.error(format!("unexpected {}", describe(&other))),
            }
        }
        Ok((nodes, None))
    }

    /// A list that must end with `{{end}}`.
    fn list_to_end(&mut self, context: &str) -> Result<Vec<Node>> {
        match self.list(false)? {
            (nodes, Some(Ending { is_else: false, .. })) => Ok(nodes),
            (_, Some(_)) => self.error(format!("expected end; found {{{{else}}}} in {context}")),
            (_, None) => self.error(format!("unexpected EOF in {context}")),
        }
    }

    fn define(&mut self) -> Result<()> {
        let name = self.template_name("define clause")?;
        self.expect_close("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let root = self.list_to_end("define")?;
        self.vars = saved;
        self.defined.push(Tree { name, root });
        Ok(())
    }

    fn template_name(&mut self, context: &str) -> Result<String> {
        match self.peek_non_space().cloned() {
            Some(Tok::Str(name)) => {
                self.at += 1;
                Ok(name)
            }
            other => {
                let found = other.map_or("EOF".to_string(), |t| describe(&t));
                self.error(format!("unexpected {found} in {context}"))
            }
        }
    }

    /// An action after `{{`; `None` for one that produces no node.
    fn action(&mut self) -> Result<Option<Node>> {
        let keyword = match self.peek() {
            Some(Tok::Ident(word)) => word.clone(),
            _ => String::new(),
        };
        let node = match keyword.as_str() {
            "if" => {
                self.at += 1;
                self.branch(BranchKind::If)?
            }
            "with" => {
                self.at += 1;
                self.branch(BranchKind::With)?
            }
            "range" => {
                self.at += 1;
                self.range()?
            }
            "template" => {
                let pos = self.pos();
                self.at += 1;
                let name = self.template_name("template clause")?;
                let pipe = self.optional_pipeline("template clause")?;
                Node::Template { pos, name, pipe }
            }
            "block" => {
                let pos = self.pos();
                self.at += 1;
                let name = self.template_name("block clause")?;
                let pipe = self.pipeline("block clause", &Tok::Close)?;
                let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
                let root = self.list_to_end("block clause")?;
                self.vars = saved;
                self.defined.push(Tree {
                    name: name.clone(),
                    root,
                });
                Node::Template {
                    pos,
                    name,
                    pipe: Some(pipe),
                }
            }
            "break" | "continue" => {
                self.at += 1;
                if self.range_depth == 0 {
                    return self.error(format!("{{{{{keyword}}}}} outside {{{{range}}}}"));
                }
                self.expect_close(&keyword)?;
                if keyword == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }
            }
            _ => Node::Action(self.pipeline("command", &Tok::Close)?),
        };
        Ok(Some(node))
    }

    fn optional_pipeline(&mut self, context: &str) -> Result<Option<Pipeline>> {
        if self.peek_non_space() == Some(&Tok::Close) {
            self.at += 1;
            return Ok(None);
        }
        self.pipeline(context, &Tok::Close).map(Some)
    }

    fn branch(&mut self, kind: BranchKind) -> Result<Node> {
        let context = match kind {
            BranchKind::If => "if",
            BranchKind::With => "with",
        };
        let scope = self.vars.len();
        let pipe = self.pipeline(context, &Tok::Close)?;
        let (then, ending) = self.list(false)?;
        let otherwise = match ending {
            None => return self.error(format!("unexpected EOF in {context}")),
            Some(Ending { is_else: false, .. }) => Vec::new(),
            Some(Ending { is_else: true, .. }) => {
                match self.peek_non_space() {
                    // `{{else if}}` / `{{else with}}`: a nested branch that
                    // takes the shared `{{end}}`.
                    Some(Tok::Ident(word)) if word == context => {
                        self.at += 1;
                        vec![self.branch(kind)?]
                    }
                    _ => {
                        self.expect_close("else")?;
                        self.list_to_end(context)?
                    }
                }
            }
        };
        self.vars.truncate(scope);
        Ok(Node::Branch {
            kind,
            pipe,
            then,
            otherwise,
        })
    }

    fn range(&mut self) -> Result<Node> {
        let scope = self.vars.len();
        let pipe = self.pipeline("range", &Tok::Close)?;
        self.range_depth += 1;
        let (body, ending) = self.list(false)?;
        self.range_depth -= 1;
        let otherwise = match ending {
            None => return self.error("unexpected EOF in range"),
            Some(Ending { is_else: false, .. }) => Vec::new(),
            Some(Ending { is_else: true, .. }) => {
                self.expect_close("else")?;
                self.list_to_end("range")?
            }
        };
        self.vars.truncate(scope);
        Ok(Node::Range {
            pipe,
            body,
            otherwise,
        })
    }

    /// A pipeline up to `end` (`}}` or `)`), which is consumed.
    fn pipeline(&mut self, context: &str, end: &Tok) -> Result<Pipeline> {
        let pos = self.pos();
        let mut decl = Vec::new();
        let mut assign = false;
        self.declarations(context, &mut decl, &mut assign)?;
        let mut cmds = Vec::new();
        loop {
            match self.peek_non_space() {
                Some(t) if t == end => {
                    self.at += 1;
                    break;
                }
                None => return self.error(format!("unclosed action in {context}")),
                _ => cmds.push(self.command(end)?),
            }
        }
        if cmds.is_empty() {
            return self.error(format!("missing value for {context}"));
        }
        for (i, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args[0],
                Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Int(..) | Arg::Float(..) | Arg::Str(_)
            ) {
                return self.error(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        // Declared only now: `$x := $x` reads an outer `$x`.
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline {
            pos,
            decl,
            assign,
            cmds,
        })
    }

    /// `$x :=`, `$x =`, and in `range` `$i, $e :=`.
    fn declarations(
        &mut self,
        context: &str,
        decl: &mut Vec<String>,
        assign: &mut bool,
    ) -> Result<()> {
        let start = self.at;
        let Some(Tok::Variable(name)) = self.peek_non_space().cloned() else {
            return Ok(());
        };
        self.at += 1;
        match self.peek_non_space() {
            Some(Tok::Declare | Tok::Assign) => {
                *assign = self.next() == Some(Tok::Assign);
                if *assign && !self.vars.contains(&name) {
                    return self.error(format!("undefined variable {name:?}"));
                }
                decl.push(name);
            }
            Some(Tok::Comma) if context == "range" && decl.is_empty() => {
                self.at += 1;
                decl.push(name);
                return self.declarations(context, decl, assign);
            }
            Some(Tok::Comma) => return self.error(format!("too many declarations in {context}")),
            _ => self.at = start,
        }
        Ok(())
    }

    fn command(&mut self, end: &Tok) -> Result<Command> {
        let mut pos = self.pos();
        let mut args = Vec::new();
        loop {
            self.skip_space();
            let start = self.at;
            if let Some(operand) = self.operand()? {
                // Go places `.a.b` and `$x.a` at their first chained field.
                let chained = matches!(&operand, Arg::Field(f) if f.len() > 1)
                    || matches!(&operand, Arg::Variable(_, f) if !f.is_empty());
                if args.is_empty() && chained {
                    pos = self.tokens.get(start + 1).map_or(pos, |t| t.pos);
                }
                args.push(operand);
            }
            match self.peek() {
                Some(Tok::Space) => continue,
                Some(Tok::Pipe) => {
                    self.at += 1;
                    break;
                }
                Some(t) if t == end => break,
                Some(other) => {
                    let found = describe(&other.clone());
                    return self.error(format!("unexpected {found} in operand"));
                }
                None => return self.error("unclosed action"),
            }
        }
        if args.is_empty() {
            return self.error("empty command");
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Some(Tok::Field(name)) = self.peek() {
            fields.push(name.clone());
            self.at += 1;
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut first) => {
                first.extend(fields);
                Arg::Field(first)
            }
            Arg::Variable(name, mut first) => {
                first.extend(fields);
                Arg::Variable(name, first)
            }
            Arg::Bool(_) | Arg::Int(..) | Arg::Float(..) | Arg::Str(_) | Arg::Dot | Arg::Nil => {
                return self.error(format!("unexpected . after term {:?}", term.to_string()));
            }
            other => Arg::Chain(Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>> {
        let Some(tok) = self.peek().cloned() else {
            return Ok(None);
        };
        let arg = match tok {
            Tok::Ident(name) => {
                if !(self.is_function)(&name) {
                    return self.error(format!("function {name:?} not defined"));
                }
                Arg::Function(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.error(format!("undefined variable {name:?}"));
                }
                Arg::Variable(name, Vec::new())
            }
            Tok::Field(name) => Arg::Field(vec![name]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Char(c) => Arg::Int(i64::from(u32::from(c)), format!("{c:?}")),
            Tok::Number(text) => self.number(&text)?,
            Tok::Str(s) => Arg::Str(s.into()),
            Tok::LParen => {
                self.at += 1;
                let pipe = self.pipeline("parenthesized pipeline", &Tok::RParen)?;
                return Ok(Some(Arg::Pipe(Box::new(pipe))));
            }
            _ => return Ok(None),
        };
        self.at += 1;
        Ok(Some(arg))
    }

    fn number(&self, text: &str) -> Result<Arg> {
        match parse_number(text) {
            Some(arg) => Ok(arg),
            None => self.error(format!("bad number syntax: {text:?}")),
        }
    }
}

/// A Go number literal: an `int` unless it is written as a float (with a
/// `.`, or an exponent outside a hex integer).
fn parse_number(text: &str) -> Option<Arg> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.contains("__") || body.starts_with('_') || body.ends_with('_') {
        return None;
    }
    let clean = body.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let radix = |prefix: &str, radix: u32| {
        lower
            .strip_prefix(prefix)
            .and_then(|digits| i64::from_str_radix(digits, radix).ok())
    };
    let int = if lower.starts_with("0x") && !lower.contains('p') && !lower.contains('.') {
        radix("0x", 16)
    } else if lower.starts_with("0b") {
        radix("0b", 2)
    } else if lower.starts_with("0o") {
        radix("0o", 8)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|b| b.is_ascii_digit()) {
        lower.parse().ok()
    } else {
        None
    };
    if let Some(n) = int {
        return Some(Arg::Int(if negative { -n } else { n }, text.to_string()));
    }
    let float = if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        lower.parse::<f64>().ok()?
    };
    Some(Arg::Float(
        if negative { -float } else { float },
        text.to_string(),
    ))
}

/// The digits of a hex float after `0x`: `1.8p3` is 12.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (mantissa, exponent) = text.split_once('p')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut value = 0f64;
    for digit in whole.chars() {
        value = value * 16.0 + f64::from(digit.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for digit in fraction.chars() {
        value += f64::from(digit.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(value * 2f64.powi(exponent))
}

/// How an unexpected token is named in errors.
fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Text(_) => "text".into(),
        Tok::Open => "\"{{\"".into(),
        Tok::Close => "\"}}\"".into(),
        Tok::Ident(w) => format!("<{w}>"),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Variable(v) => format!("<{v}>"),
        Tok::Dot => "<.>".into(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Number(n) => format!("<{n}>"),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Space => "space".into(),
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields =
            |names: &[String]| -> String { names.iter().map(|n| format!(".{n}")).collect() };
        match self {
            Arg::Dot => write!(f, "."),
            Arg::Nil => write!(f, "nil"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Int(_, text) | Arg::Float(_, text) => write!(f, "{text}"),
            Arg::Str(s) => write!(f, "{s:?}"),
            Arg::Field(names) => write!(f, "{}", fields(names)),
            Arg::Variable(name, names) => write!(f, "{name}{}", fields(names)),
            Arg::Function(name) => write!(f, "{name}"),
            Arg::Chain(base, names) => write!(f, "{base}{}", fields(names)),
            Arg::Pipe(pipe) => write!(f, "({pipe})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.args.iter().map(ToString::to_string).collect();
        write!(f, "{}", words.join(" "))
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            let op = if self.assign { "=" } else { ":=" };
            write!(f, "{} {op} ", self.decl.join(", "))?;
        }
        let cmds: Vec<String> = self.cmds.iter().map(ToString::to_string).collect();
        write!(f, "{}", cmds.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::lex;

    fn trees(src: &str) -> Result<Vec<Tree>> {
        let is_function = |name: &str| ["printf", "len", "eq"].contains(&name);
        parse("t", lex(src).expect("lexes"), &is_function)
    }

    fn error(src: &str) -> String {
        trees(src).expect_err("an error").message
    }

    #[test]
    fn pipelines_print_back_as_written() {
        let t = trees(r#"{{$x := printf "%d" (len .a.b) | printf "%s" }}"#).unwrap();
        let Node::Action(pipe) = &t[0].root[0] else {
            panic!("{t:?}")
        };
        assert_eq!(
            pipe.to_string(),
            r#"$x := printf "%d" (len .a.b) | printf "%s""#
        );
    }

    #[test]
    fn defines_become_trees_of_their_own() {
        let t = trees(r#"a{{define "x"}}X{{end}}b{{block "y" .}}Y{{end}}"#).unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t", "x", "y"]);
    }

    #[test]
    fn else_if_nests_and_shares_the_end() {
        let t = trees("{{if .a}}1{{else if .b}}2{{else}}3{{end}}").unwrap();
        let Node::Branch { otherwise, .. } = &t[0].root[0] else {
            panic!()
        };
        assert!(
            matches!(&otherwise[0], Node::Branch { otherwise, .. } if otherwise == &vec![Node::Text("3".into())])
        );
    }

    #[test]
    fn numbers_are_ints_unless_written_as_floats() {
        for (text, expected) in [
            ("42", Arg::Int(42, "42".into())),
            ("0x1F", Arg::Int(31, "0x1F".into())),
            ("017", Arg::Int(15, "017".into())),
            ("1_000", Arg::Int(1000, "1_000".into())),
            ("1e3", Arg::Float(1000.0, "1e3".into())),
            ("-2.5", Arg::Float(-2.5, "-2.5".into())),
            ("0x1p-2", Arg::Float(0.25, "0x1p-2".into())),
        ] {
            assert_eq!(parse_number(text), Some(expected), "{text}");
        }
        assert_eq!(parse_number("1__0"), None);
    }

    #[test]
    fn go_parse_errors() {
        assert_eq!(error("{{nope 1}}"), "function \"nope\" not defined");
        assert_eq!(error("{{$x}}"), "undefined variable \"$x\"");
        assert_eq!(
            error("{{if .a}}{{$x := 1}}{{end}}{{$x}}"),
            "undefined variable \"$x\""
        );
        assert_eq!(error("{{break}}"), "{{break}} outside {{range}}");
        assert_eq!(
            error("{{.a | 3}}"),
            "non executable command in pipeline stage 2"
        );
        assert_eq!(error("{{end}}"), "unexpected {{end}}");
        assert_eq!(error("{{if .a}}"), "unexpected EOF in if");
        assert_eq!(error("{{if}}{{end}}"), "missing value for if");
        assert_eq!(error("{{\"s\".x}}"), r#"unexpected . after term "\"s\"""#);
        assert_eq!(
            error("{{range $i, $e, $f := .}}{{end}}"),
            "too many declarations in range"
        );
        assert!(trees("{{range $i, $e := .}}{{$i}}{{$e}}{{break}}{{end}}").is_ok());
        assert!(trees("{{$x := 1}}{{$x = 2}}{{with $y := .}}{{$y}}{{end}}").is_ok());
    }
}
