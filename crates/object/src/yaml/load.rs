//! Parsing YAML streams into JSON values, with hard limits.
//!
//! Simple text is read by the fast path in `fast.rs`; the rest by
//! saphyr-parser's event stream, from which this module builds
//! [`serde_json::Value`]s (field order preserved), resolves plain scalars by
//! [`Dialect`], expands aliases and `<<` merge keys, and enforces [`Limits`] so that
//! hostile input (a billion-laughs document, deep nesting, a huge file) is refused
//! with an error instead of exhausting memory.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

use super::scalar::{Dialect, Resolved, resolve_plain, resolved_to_value};

/// Hard limits applied while loading one file. All are configurable; the defaults
/// are generous for real manifests and small enough to refuse abuse quickly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes per file.
    pub max_bytes: usize,
    /// YAML documents per file.
    pub max_documents: usize,
    /// Nesting depth of mappings and sequences.
    pub max_depth: usize,
    /// Nodes that alias expansion may produce in one file (billion laughs guard).
    pub max_alias_nodes: usize,
    /// A mapping key given twice keeps its last value, as sigs.k8s.io/yaml's
    /// lenient reading does (how Helm and Argo CD read rendered manifests);
    /// otherwise it is an error, as kubectl makes it.
    pub last_key_wins: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 32 * 1024 * 1024,
            max_documents: 20_000,
            max_depth: 128,
            max_alias_nodes: 100_000,
            last_key_wins: false,
        }
    }
}

impl Limits {
    /// The default limits with sigs.k8s.io/yaml's lenient reading (a key
    /// given twice keeps its last value), as Helm reads values, rendered
    /// manifests and `fromYaml` text.
    pub fn lenient() -> Limits {
        Limits {
            last_key_wins: true,
            ..Limits::default()
        }
    }
}

/// A YAML syntax or limit error at a position in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, without quoting the input.
    pub message: String,
}

/// One document of a YAML stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    /// The document's content.
    pub value: Value,
    /// 1-based line where the document's content starts.
    pub line: usize,
}

/// Parses every document of a YAML stream.
pub fn parse_documents(
    text: &str,
    dialect: Dialect,
    limits: &Limits,
) -> Result<Vec<ParsedDocument>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError {
            line: 1,
            column: 1,
            message: format!(
                "file is {} bytes, over the limit of {} bytes",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(documents) = super::fast::parse_simple(text, dialect, limits) {
        return Ok(documents);
    }
    parse_full(text, dialect, limits)
}

/// Parses every document with saphyr's full YAML parser (what
/// [`parse_documents`] does with text that is not simple).
pub(super) fn parse_full(
    text: &str,
    dialect: Dialect,
    limits: &Limits,
) -> Result<Vec<ParsedDocument>, YamlError> {
    let mut text = std::borrow::Cow::Borrowed(text);
    // Each retry indents one more quoted scalar's continuation lines.
    for _ in 0..MAX_REINDENTS {
        match parse_events(&text, dialect, limits) {
            Err(Reject::Scan(e)) if e.info() == QUOTED_INDENT_ERROR => {
                match indent_quoted_continuation(&text, e.marker().line(), e.marker().col()) {
                    Some(fixed) => text = std::borrow::Cow::Owned(fixed),
                    None => return Err(scan_error(e)),
                }
            }
            Err(Reject::Scan(e)) if e.info() == FLOW_INDENT_ERROR => {
                match indent_flow_close(&text, e.marker().line()) {
                    Some(fixed) => text = std::borrow::Cow::Owned(fixed),
                    None => return Err(scan_error(e)),
                }
            }
            Err(Reject::Scan(e)) => return Err(scan_error(e)),
            Err(Reject::Build(e)) => return Err(e),
            Ok(documents) => return Ok(documents),
        }
    }
    parse_events(&text, dialect, limits).map_err(|reject| match reject {
        Reject::Scan(e) => scan_error(e),
        Reject::Build(e) => e,
    })
}

/// saphyr's error for a quoted scalar's continuation line indented less
/// than its mapping, which Go's YAML (kubectl, Helm, Gatekeeper) accepts.
const QUOTED_INDENT_ERROR: &str = "invalid indentation in quoted scalar";
/// saphyr's error for a flow collection's closing bracket indented no more
/// than its block (`args: [` … `]` under the key), which Go's YAML accepts.
const FLOW_INDENT_ERROR: &str = "invalid indentation";
/// At most this many quoted scalars or flow brackets are re-indented in one file.
const MAX_REINDENTS: usize = 64;

enum Reject {
    Scan(ScanError),
    Build(YamlError),
}

fn parse_events(
    text: &str,
    dialect: Dialect,
    limits: &Limits,
) -> Result<Vec<ParsedDocument>, Reject> {
    let mut builder = Builder::new(dialect, limits);
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(Reject::Scan)?;
        builder.handle(event, span).map_err(Reject::Build)?;
    }
    Ok(builder.documents)
}

/// Indents the continuation lines of the quoted scalar opening at `line`
/// (1-based) and `column` (0-based) past the column, up to its closing
/// quote. Leading blanks of continuation lines are folded away, so the
/// scalar's value does not change. `None` if nothing needed indenting.
fn indent_quoted_continuation(text: &str, line: usize, column: usize) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let opening = lines.get(line.checked_sub(1)?)?;
    let quote = opening[column.min(opening.len())..].chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let mut changed = false;
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (i, current) in lines.iter().enumerate().skip(line) {
        let indent = current.len() - current.trim_start_matches(' ').len();
        if indent <= column && !current.trim().is_empty() {
            out[i] = format!("{}{}", " ".repeat(column + 1 - indent), current);
            changed = true;
        }
        if closes_quoted_scalar(current, quote) {
            break;
        }
    }
    changed.then(|| out.join("\n"))
}

/// Indents the line `line` (1-based) when it starts by closing a flow
/// collection (`]` or `}`) one past the line before it; indentation means
/// nothing inside a flow collection, so the value does not change. `None`
/// for any other line.
fn indent_flow_close(text: &str, line: usize) -> Option<String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let index = line.checked_sub(1)?;
    let current = lines.get(index)?;
    if !current.trim_start().starts_with([']', '}']) {
        return None;
    }
    let previous = lines[..index].iter().rev().find(|l| !l.trim().is_empty())?;
    let wanted = previous.len() - previous.trim_start_matches(' ').len() + 1;
    let indent = current.len() - current.trim_start_matches(' ').len();
    if indent >= wanted {
        return None;
    }
    lines[index] = format!("{}{current}", " ".repeat(wanted - indent));
    Some(lines.join("\n"))
}

/// Whether a line holds the quote that closes a scalar (not `\"` in a
/// double-quoted one, not `''` in a single-quoted one).
fn closes_quoted_scalar(line: &str, quote: char) -> bool {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote == '"' => i += 1,
            '\'' if quote == '\'' && chars.get(i + 1) == Some(&'\'') => i += 1,
            c if c == quote => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn scan_error(e: ScanError) -> YamlError {
    YamlError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    }
}

fn error_at(span: &Span, message: impl Into<String>) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message: message.into(),
    }
}

/// A node under construction and the anchor it will be registered under.
enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        nodes: usize,
    },
    Map(MapFrame),
}

#[derive(Default)]
struct MapFrame {
    map: Map<String, Value>,
    key: Option<PendingKey>,
    merges: Vec<(Value, Span)>,
    anchor: usize,
    nodes: usize,
}

enum PendingKey {
    Key(String),
    Merge,
}

struct Builder<'a> {
    dialect: Dialect,
    limits: &'a Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    doc_line: usize,
    documents: Vec<ParsedDocument>,
}

impl<'a> Builder<'a> {
    fn new(dialect: Dialect, limits: &'a Limits) -> Self {
        Builder {
            dialect,
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            alias_nodes: 0,
            doc_line: 0,
            documents: Vec::new(),
        }
    }

    fn handle(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        match event {
            Event::DocumentStart(_) => {
                if self.documents.len() >= self.limits.max_documents {
                    return Err(error_at(
                        &span,
                        format!(
                            "more than {} YAML documents in one file",
                            self.limits.max_documents
                        ),
                    ));
                }
                self.doc_line = 0;
                self.anchors.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = self.scalar(&text, style, tag.as_deref(), &span)?;
                self.finish_node(value, 1, anchor, span)?;
            }
            Event::Alias(id) => {
                let (value, nodes) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| error_at(&span, "alias refers to an unknown anchor"))?;
                self.alias_nodes += nodes;
                if self.alias_nodes > self.limits.max_alias_nodes {
                    return Err(error_at(
                        &span,
                        format!(
                            "alias expansion exceeds the limit of {} nodes (refusing a possible billion-laughs document)",
                            self.limits.max_alias_nodes
                        ),
                    ));
                }
                self.finish_node(value, nodes, 0, span)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.push(
                    Frame::Seq {
                        items: Vec::new(),
                        anchor,
                        nodes: 1,
                    },
                    &span,
                )?;
            }
            Event::MappingStart(anchor, _) => {
                self.push(
                    Frame::Map(MapFrame {
                        anchor,
                        nodes: 1,
                        ..MapFrame::default()
                    }),
                    &span,
                )?;
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    items,
                    anchor,
                    nodes,
                }) => {
                    self.finish_node(Value::Array(items), nodes, anchor, span)?;
                }
                _ => return Err(error_at(&span, "unbalanced sequence end")),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map(frame)) => {
                    let anchor = frame.anchor;
                    let nodes = frame.nodes;
                    let map = apply_merges(frame)?;
                    self.finish_node(Value::Object(map), nodes, anchor, span)?;
                }
                _ => return Err(error_at(&span, "unbalanced mapping end")),
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn push(&mut self, frame: Frame, span: &Span) -> Result<(), YamlError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(error_at(
                span,
                format!(
                    "nesting deeper than the limit of {} levels",
                    self.limits.max_depth
                ),
            ));
        }
        if self.stack.is_empty() {
            self.doc_line = span.start.line();
        }
        self.stack.push(frame);
        Ok(())
    }

    fn scalar(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        span: &Span,
    ) -> Result<Value, YamlError> {
        let core_tag = tag
            .filter(|t| t.is_yaml_core_schema())
            .map(|t| t.suffix.as_str());
        let resolved = match core_tag {
            Some("str") | Some("binary") => return Ok(Value::String(text.to_string())),
            Some("null") => Resolved::Null,
            Some("bool") => match resolve_plain(text, self.dialect) {
                b @ Resolved::Bool(_) => b,
                _ => return Err(error_at(span, "value tagged !!bool is not a boolean")),
            },
            Some("int") => match resolve_plain(text, self.dialect) {
                n @ Resolved::Number(_) if !text.contains('.') => n,
                _ => return Err(error_at(span, "value tagged !!int is not an integer")),
            },
            Some("float") => match resolve_plain(text, self.dialect) {
                Resolved::Number(n) => {
                    Resolved::Number(n.as_f64().and_then(Number::from_f64).unwrap_or(n))
                }
                n @ Resolved::NonFinite(_) => n,
                _ => return Err(error_at(span, "value tagged !!float is not a number")),
            },
            Some("timestamp") => match super::scalar::parse_timestamp(text) {
                Some(t) => Resolved::Timestamp(t),
                None => {
                    return Err(error_at(
                        span,
                        "value tagged !!timestamp is not a timestamp",
                    ));
                }
            },
            _ if style == ScalarStyle::Plain => resolve_plain(text, self.dialect),
            _ => Resolved::Str,
        };
        scalar_value(resolved, text, self.dialect).ok_or_else(|| {
            error_at(
                span,
                "infinity and NaN cannot be represented in a Kubernetes object",
            )
        })
    }

    /// Attaches a completed node to its parent (or ends the document).
    fn finish_node(
        &mut self,
        value: Value,
        nodes: usize,
        anchor: usize,
        span: Span,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        match self.stack.last_mut() {
            None => {
                let line = if self.doc_line == 0 {
                    span.start.line()
                } else {
                    self.doc_line
                };
                self.documents.push(ParsedDocument { value, line });
            }
            Some(Frame::Seq {
                items,
                nodes: total,
                ..
            }) => {
                items.push(value);
                *total += nodes;
            }
            Some(Frame::Map(frame)) => {
                frame.nodes += nodes;
                match frame.key.take() {
                    None => frame.key = Some(map_key(value, &span)?),
                    Some(PendingKey::Merge) => frame.merges.push((value, span)),
                    Some(PendingKey::Key(key)) => {
                        if frame.map.contains_key(&key) && !self.limits.last_key_wins {
                            return Err(error_at(
                                &span,
                                format!("mapping key {key:?} is defined twice"),
                            ));
                        }
                        frame.map.insert(key, value);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A resolved scalar as a JSON value (`None` for infinity and NaN).
pub(super) fn scalar_value(resolved: Resolved, text: &str, dialect: Dialect) -> Option<Value> {
    // goyaml.v2 (sigs.k8s.io/yaml) keeps a timestamp read into
    // interface{} as the text it was written as, "for backward
    // compatibility"; goyaml.v3 (kyaml) makes a time of it.
    let resolved = match resolved {
        Resolved::Timestamp(_) if dialect == Dialect::Kubernetes => Resolved::Str,
        other => other,
    };
    resolved_to_value(resolved, text)
}

/// Mapping keys become strings, as `sigs.k8s.io/yaml` converts them for JSON.
fn map_key(value: Value, span: &Span) -> Result<PendingKey, YamlError> {
    Ok(PendingKey::Key(match value {
        Value::String(s) if s == "<<" => return Ok(PendingKey::Merge),
        Value::String(s) => s,
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(error_at(span, "mapping keys must be scalars"));
        }
    }))
}

/// Applies `<<` merge keys: keys written in the mapping win over merged ones, and
/// earlier merge sources win over later ones.
fn apply_merges(frame: MapFrame) -> Result<Map<String, Value>, YamlError> {
    let MapFrame {
        mut map, merges, ..
    } = frame;
    for (source, span) in merges {
        let sources = match source {
            Value::Object(m) => vec![m],
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Object(m) => Ok(m),
                    _ => Err(error_at(&span, "merge key << needs mappings")),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(error_at(
                    &span,
                    "merge key << needs a mapping or a list of mappings",
                ));
            }
        };
        for source in sources {
            for (k, v) in source {
                map.entry(k).or_insert(v);
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Vec<Value>, YamlError> {
        parse_documents(text, Dialect::Kubernetes, &Limits::default())
            .map(|docs| docs.into_iter().map(|d| d.value).collect())
    }

    #[test]
    fn multi_document_stream_with_positions() {
        let docs = parse_documents(
            "a: 1\n---\n# c\nb: [x, 'y']\n---\n",
            Dialect::Kubernetes,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].value, json!({"a": 1}));
        assert_eq!(docs[1].value, json!({"b": ["x", "y"]}));
        assert_eq!(docs[1].line, 4);
        assert_eq!(docs[2].value, Value::Null);
    }

    #[test]
    fn quoted_scalars_continued_at_their_keys_indentation_read_as_go_reads_them() {
        let text = "spec:\n  description: \"When set, the TLS\n  is optional.\"\n  other: 'a\n  b'\nnext: 1\n";
        let v = &parse(text).unwrap()[0];
        assert_eq!(v["spec"]["description"], "When set, the TLS is optional.");
        assert_eq!(v["spec"]["other"], "a b");
        assert_eq!(v["next"], 1);
        // Anything else stays an error, at its line.
        let broken = parse("a: \"open\nb: 1\n").unwrap_err();
        assert!(
            broken.message.contains("quoted scalar"),
            "{}",
            broken.message
        );
    }

    #[test]
    fn field_order_is_preserved() {
        let v = &parse("z: 1\na: 2\nm: 3\n").unwrap()[0];
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn dialects_differ_on_yaml11_booleans() {
        let k8s =
            parse_documents("a: yes\nb: 0755\n", Dialect::Kubernetes, &Limits::default()).unwrap();
        let kz =
            parse_documents("a: yes\nb: 0755\n", Dialect::Kustomize, &Limits::default()).unwrap();
        assert_eq!(k8s[0].value, json!({"a": true, "b": 493}));
        assert_eq!(kz[0].value, json!({"a": "yes", "b": 493}));
    }

    #[test]
    fn quoted_and_block_scalars_stay_strings() {
        let v = &parse(
            "a: 'yes'\nb: \"12\"\nc: |\n  x\n  y\nd: >-\n  p\n  q\ne: !!str 5\nf: !!int \"7\"\n",
        )
        .unwrap()[0];
        assert_eq!(
            v,
            &json!({"a": "yes", "b": "12", "c": "x\ny\n", "d": "p q", "e": "5", "f": 7})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = &parse("base: &b {x: 1, z: 2}\nuse: *b\nmerged:\n  <<: *b\n  z: 3\n").unwrap()[0];
        assert_eq!(v["use"], json!({"x": 1, "z": 2}));
        assert_eq!(v["merged"], json!({"z": 3, "x": 1}));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("\"a\""), "{err}");
    }

    #[test]
    fn billion_laughs_is_refused_not_expanded() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("billion-laughs"), "{err}");
        // Refused while expanding, long before the 9^9 nodes exist.
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(500) + &"]".repeat(500);
        // Refused by our depth limit or the parser's own recursion limit.
        assert!(parse(&text).is_err());
        let text = "a:\n".to_string()
            + &(1..200)
                .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
                .collect::<String>();
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{err}");
        let ok = "a:\n  b: [[[1]]]\n";
        assert!(parse(ok).is_ok());
    }

    #[test]
    fn a_flow_collection_may_close_at_its_block_indentation() {
        let text = "a:\n  args: [\n    \"x\",\n    z\n  ]\n  map: {k: 1,\n  }\n  b: 1\n";
        let parsed = parse_documents(text, Dialect::Kubernetes, &Limits::default()).unwrap();
        assert_eq!(
            parsed[0].value,
            serde_json::json!({"a": {"args": ["x", "z"], "map": {"k": 1}, "b": 1}})
        );
        // A block line indented wrong is still an error.
        assert!(
            parse_documents(
                "a:\n    b: 1\n  c: 2\n",
                Dialect::Kubernetes,
                &Limits::default()
            )
            .is_err()
        );
    }

    #[test]
    fn timestamps_stay_text_for_goyaml_v2_and_become_times_for_kyaml() {
        let text = "day: 2020-10-24\nat: 2001-12-14 21:59:43.10\n";
        let v2 = parse_documents(text, Dialect::Kubernetes, &Limits::default()).unwrap();
        assert_eq!(
            v2[0].value,
            serde_json::json!({"day": "2020-10-24", "at": "2001-12-14 21:59:43.10"})
        );
        let v3 = parse_documents(text, Dialect::Kustomize, &Limits::default()).unwrap();
        assert_eq!(v3[0].value["day"], "2020-10-24T00:00:00Z");
    }

    #[test]
    fn a_key_given_twice_is_an_error_unless_the_last_wins() {
        let text = "a: 1\nb: 2\na: 3\n";
        let err = parse_documents(text, Dialect::Kubernetes, &Limits::default()).unwrap_err();
        assert_eq!(err.message, "mapping key \"a\" is defined twice");
        let lenient = Limits {
            last_key_wins: true,
            ..Limits::default()
        };
        let parsed = parse_documents(text, Dialect::Kubernetes, &lenient).unwrap();
        assert_eq!(parsed[0].value, serde_json::json!({"a": 3, "b": 2}));
    }

    #[test]
    fn size_and_document_limits() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let err = parse_documents("a: 123456789\n", Dialect::Kubernetes, &limits).unwrap_err();
        assert!(err.message.contains("over the limit"), "{err}");
        let limits = Limits {
            max_documents: 2,
            ..Limits::default()
        };
        let err = parse_documents("a: 1\n---\nb: 1\n---\nc: 1\n", Dialect::Kubernetes, &limits)
            .unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.message.contains("more than 2"), "{err}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err}");
        let err = parse("a: .inf\n").unwrap_err();
        assert_eq!((err.line, err.column), (1, 4));
    }

    #[test]
    fn non_string_keys_become_strings() {
        let v = &parse("1: a\ntrue: b\n").unwrap()[0];
        assert_eq!(v, &json!({"1": "a", "true": "b"}));
        // The YAML 1.1 gotcha Kubernetes has too: an unquoted `y` key is `true`.
        let v = &parse("y: 1\n").unwrap()[0];
        assert_eq!(v, &json!({"true": 1}));
    }
}
