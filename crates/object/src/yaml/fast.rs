//! A fast path for the YAML most files hold: block mappings and sequences
//! of plain, quoted (without escapes) and literal (`|`, `|-`) scalars, and
//! one-line flow sequences of scalars, as `helm template`, `kubectl` and
//! most people write it.
//!
//! [`parse_simple`] reads such text line by line, several times faster
//! than the full parser, and gives up (`None`) at the first thing outside
//! that subset — anchors, tags, flow mappings, nested flow collections,
//! folded or multi-line plain scalars, escapes, tabs, complex keys,
//! anything malformed — so the caller parses the text again with the full
//! parser, which also gives the errors. Where it answers, it answers what the full parser would:
//! scalars resolve through the same rules, and the tests compare both
//! parsers on every input they try.

use serde_json::{Map, Value};

use super::load::{Limits, ParsedDocument};
use super::scalar::{Dialect, Resolved, resolve_plain};

/// Every document of `text`, or `None` when the text is not simple YAML.
pub(super) fn parse_simple(
    text: &str,
    dialect: Dialect,
    limits: &Limits,
) -> Option<Vec<ParsedDocument>> {
    // Tabs and carriage returns have rules of their own; NUL and a byte
    // order mark inside a document are errors the full parser reports.
    if memchr::memchr3(b'\r', b'\t', 0, text.as_bytes()).is_some() || text.contains('\u{feff}') {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    // Where each document ends: at a `---` line, the last at the end.
    let mut ends = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("---") || line.starts_with("...") || line.starts_with('%') {
            if *line != "---" {
                return None;
            }
            ends.push(i);
        }
    }
    ends.push(lines.len());
    let mut documents = Vec::new();
    let mut start = 0;
    for (n, end) in ends.into_iter().enumerate() {
        let explicit = n > 0;
        documents.extend(document(&lines, start, end, explicit, dialect, limits)?);
        // Past the limit, the full parser refuses the file early.
        if documents.len() > limits.max_documents {
            return None;
        }
        start = end + 1;
    }
    Some(documents)
}

/// The document in `lines[start..end]`: `Some(None)` when there is none
/// (only blanks and comments, not opened by `---`).
fn document(
    lines: &[&str],
    start: usize,
    end: usize,
    explicit: bool,
    dialect: Dialect,
    limits: &Limits,
) -> Option<Option<ParsedDocument>> {
    let mut reader = Reader {
        lines: &lines[..end],
        at: start,
        depth: 0,
        dialect,
        limits,
    };
    let Some((indent, rest)) = reader.peek() else {
        // An empty document after `---` is a null one; leave it to the
        // full parser, which knows its position.
        return if explicit { None } else { Some(None) };
    };
    let line = reader.at + 1;
    let value = if is_sequence_entry(rest) {
        reader.sequence(indent)?
    } else if let Some(entry) = split_entry(rest) {
        reader.mapping(indent, entry)?
    } else {
        return None;
    };
    // Nothing but blanks and comments may follow the root node.
    if reader.peek().is_some() {
        return None;
    }
    Some(Some(ParsedDocument { value, line }))
}

/// A cursor over the lines of one document.
struct Reader<'t, 'l> {
    lines: &'l [&'t str],
    /// The next line to read.
    at: usize,
    /// Collections open.
    depth: usize,
    dialect: Dialect,
    limits: &'l Limits,
}

impl<'t> Reader<'t, '_> {
    /// The next line with content (skipping blank and comment lines): its
    /// indentation and what follows it.
    fn peek(&mut self) -> Option<(usize, &'t str)> {
        while let Some(line) = self.lines.get(self.at) {
            let rest = line.trim_start_matches(' ');
            if !rest.is_empty() && !rest.starts_with('#') {
                return Some((line.len() - rest.len(), rest));
            }
            self.at += 1;
        }
        None
    }

    /// Opens a collection, within the depth limit.
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < self.limits.max_depth).then_some(())
    }

    /// The block mapping whose keys sit at `indent`, from its first entry
    /// (split by the caller) on the current line: the next one, or a
    /// sequence entry's line after its `- `.
    fn mapping(&mut self, indent: usize, first: (Key<'t>, &'t str)) -> Option<Value> {
        self.enter()?;
        let mut map = Map::new();
        let mut entry = first;
        loop {
            let (key, text) = entry;
            let key = match key {
                Key::Plain(text) => plain_key(text, self.dialect)?,
                // A quoted `<<` is still a merge key.
                Key::Quoted(text) if text != "<<" => text,
                Key::Quoted(_) => return None,
            };
            self.at += 1;
            let value = self.value(indent, text, true)?;
            // A key given twice keeps its first place and its last value.
            if map.insert(key, value).is_some() && !self.limits.last_key_wins {
                return None;
            }
            match self.peek() {
                Some((next, rest)) if next == indent => {
                    if is_sequence_entry(rest) {
                        return None;
                    }
                    entry = split_entry(rest)?;
                }
                Some((next, _)) if next > indent => return None,
                _ => break,
            }
        }
        self.depth -= 1;
        Some(Value::Object(map))
    }

    /// The block sequence whose `-` sit at `indent`.
    fn sequence(&mut self, indent: usize) -> Option<Value> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some((next, rest)) = self.peek() {
            // A key at the sequence's indentation ends it (a sequence may
            // sit at its mapping key's indentation).
            if next < indent || (next == indent && !is_sequence_entry(rest)) {
                break;
            }
            if next > indent {
                return None;
            }
            let item = rest[1..].trim_start_matches(' ');
            let column = indent + rest.len() - item.len();
            let value = if is_sequence_entry(item) {
                return None;
            } else if let Some(entry) = split_entry(item) {
                // A mapping starting on the entry's line reads that line.
                self.mapping(column, entry)?
            } else {
                self.at += 1;
                self.value(indent, item, false)?
            };
            items.push(value);
        }
        self.depth -= 1;
        Some(Value::Array(items))
    }

    /// A node's value written after its key or `- ` (`text`, maybe empty)
    /// and on the lines below, more indented than `parent`. In a mapping
    /// (`in_mapping`) a sequence may sit at the key's own indentation.
    fn value(&mut self, parent: usize, text: &'t str, in_mapping: bool) -> Option<Value> {
        if text.is_empty() || text.starts_with('#') {
            return match self.peek() {
                Some((next, rest)) if next > parent => {
                    if is_sequence_entry(rest) {
                        self.sequence(next)
                    } else if let Some(entry) = split_entry(rest) {
                        self.mapping(next, entry)
                    } else {
                        // A scalar on the line below its key.
                        self.at += 1;
                        self.value(parent, rest, false)
                    }
                }
                Some((next, rest)) if next == parent && in_mapping && is_sequence_entry(rest) => {
                    self.sequence(next)
                }
                _ => plain_value("", self.dialect),
            };
        }
        let value = match text.as_bytes()[0] {
            b'|' => return self.literal(parent, &text[1..]),
            b'\'' | b'"' => Value::String(self.quoted(parent, text)?),
            b'[' => flow_sequence(text, self.dialect)?,
            b'{' => empty_flow(text)?,
            _ => plain_value(plain_scalar(text)?, self.dialect)?,
        };
        // A scalar continued on the next lines is not simple.
        match self.peek() {
            Some((next, _)) if next > parent => None,
            _ => Some(value),
        }
    }

    /// A quoted scalar (`text` starts with its quote), on this line or
    /// continued on lines more indented than `parent`: line breaks fold
    /// into a space, or stay where blank lines follow them.
    fn quoted(&mut self, parent: usize, text: &str) -> Option<String> {
        let quote = text.as_bytes()[0];
        let mut value = match close_quote(&text[1..], quote) {
            Close::Closed(value, rest) => return only_comment(rest).then_some(value),
            Close::Escape => return None,
            Close::Open(first) => first.trim_end_matches(' ').to_string(),
        };
        let mut blank_lines = 0;
        loop {
            let line = self.lines.get(self.at)?;
            self.at += 1;
            let content = line.trim_start_matches(' ');
            if content.is_empty() {
                blank_lines += 1;
                continue;
            }
            if line.len() - content.len() <= parent {
                return None;
            }
            match blank_lines {
                0 => value.push(' '),
                n => value.extend(std::iter::repeat_n('\n', n)),
            }
            blank_lines = 0;
            match close_quote(content, quote) {
                Close::Closed(last, rest) => {
                    value.push_str(&last);
                    return only_comment(rest).then_some(value);
                }
                Close::Open(part) => value.push_str(part.trim_end_matches(' ')),
                Close::Escape => return None,
            }
        }
    }

    /// A literal block scalar (`|` or `|-`, `header` after the `|`), its
    /// lines more indented than `parent`.
    fn literal(&mut self, parent: usize, header: &str) -> Option<Value> {
        let strip = header.starts_with('-');
        if !only_comment(header.strip_prefix('-').unwrap_or(header)) {
            return None;
        }
        // The first line with content sets the indentation.
        let mut first = self.at;
        while first < self.lines.len() && self.lines[first].trim_start_matches(' ').is_empty() {
            first += 1;
        }
        let line = self.lines.get(first)?;
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent <= parent {
            return None;
        }
        if self.lines[self.at..first].iter().any(|l| l.len() > indent) {
            return None;
        }
        let mut body: Vec<&str> = Vec::new();
        let mut end = self.at;
        while let Some(line) = self.lines.get(end) {
            let rest = line.trim_start_matches(' ');
            if rest.is_empty() {
                body.push(line.get(indent..).unwrap_or(""));
            } else if line.len() - rest.len() >= indent {
                body.push(&line[indent..]);
            } else {
                break;
            }
            end += 1;
        }
        self.at = end;
        let last = body.iter().rposition(|l| !l.is_empty());
        let mut text = match last {
            Some(last) => body[..=last].join("\n"),
            None => String::new(),
        };
        if !strip && last.is_some() {
            text.push('\n');
        }
        match self.peek() {
            Some((next, _)) if next > parent => None,
            _ => Some(Value::String(text)),
        }
    }
}

/// Whether a line's content is a sequence entry (`-` alone or `- …`).
fn is_sequence_entry(rest: &str) -> bool {
    rest == "-" || rest.starts_with("- ")
}

/// The key of a `key: value` entry, as written.
enum Key<'t> {
    Plain(&'t str),
    /// A single- or double-quoted key, unquoted.
    Quoted(String),
}

/// A `key: value` entry's key and the text of its value (after `: `), if
/// the text is one.
fn split_entry(text: &str) -> Option<(Key<'_>, &str)> {
    let (key, rest) = if text.starts_with(['"', '\'']) {
        let (key, rest) = quoted(text)?;
        (Key::Quoted(key), rest)
    } else {
        let end = key_end(text)?;
        (Key::Plain(&text[..end]), &text[end..])
    };
    // YAML limits an implicit key to 1024 characters; long ones (counted
    // in bytes here, which is more) go to the full parser, which refuses
    // the longest.
    if text.len() - rest.len() > MAX_KEY_BYTES {
        return None;
    }
    let value = rest.strip_prefix(':')?;
    (value.is_empty() || value.starts_with(' ')).then(|| (key, value.trim_start_matches(' ')))
}

/// The longest key, quotes included, the fast path reads.
const MAX_KEY_BYTES: usize = 1000;

/// Where a plain key ends (its `:`), if the text is an entry.
fn key_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b':' if bytes.get(i + 1).is_none_or(|next| *next == b' ') => return Some(i),
            b'#' if i > 0 && bytes[i - 1] == b' ' => return None,
            _ => {}
        }
    }
    None
}

/// A key that reads as a plain string (other keys go to the full parser).
fn plain_key(text: &str, dialect: Dialect) -> Option<String> {
    if text.is_empty() || text.ends_with(' ') || starts_with_indicator(text) {
        return None;
    }
    match resolve_plain(text, dialect) {
        Resolved::Str => Some(text.to_string()),
        _ => None,
    }
}

/// Whether a plain scalar cannot start this way (an indicator, or `-`,
/// `?`, `:` before a space).
fn starts_with_indicator(text: &str) -> bool {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'-' | b'?' | b':') => bytes.get(1).is_none_or(|b| *b == b' '),
        Some(
            b'[' | b']' | b'{' | b'}' | b',' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
            | b'"' | b'%' | b'@' | b'`',
        ) => true,
        _ => false,
    }
}

/// The plain scalar of a value's text: up to a comment, without trailing
/// blanks; `None` when it is not a simple one.
fn plain_scalar(text: &str) -> Option<&str> {
    // One pass: the comment's start, and no `: ` before it.
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    for (i, pair) in bytes.windows(2).enumerate() {
        match pair {
            [b' ', b'#'] => {
                end = i;
                break;
            }
            [b':', b' '] => return None,
            _ => {}
        }
    }
    let scalar = text[..end].trim_end_matches(' ');
    if scalar.is_empty() || starts_with_indicator(scalar) || scalar.ends_with(':') {
        return None;
    }
    Some(scalar)
}

/// A plain scalar resolved as the full parser resolves it (`None` for what
/// JSON cannot hold, which the full parser reports).
fn plain_value(text: &str, dialect: Dialect) -> Option<Value> {
    super::load::scalar_value(resolve_plain(text, dialect), text, dialect)
}

/// The single-quoted (`''` is a quote) or double-quoted (without escapes)
/// scalar `text` starts with, closed on its line, and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    match close_quote(&text[1..], text.as_bytes()[0]) {
        Close::Closed(value, rest) => Some((value, rest)),
        Close::Open(_) | Close::Escape => None,
    }
}

/// How a quoted scalar's line ends.
enum Close<'t> {
    /// The closing quote: the text before it (unquoted) and what follows.
    Closed(String, &'t str),
    /// No closing quote on the line: all of it, unquoted.
    Open(String),
    /// A backslash in a double-quoted scalar (escapes are not simple).
    Escape,
}

/// Reads `text` (inside a scalar quoted with `quote`) up to its closing
/// quote.
fn close_quote(text: &str, quote: u8) -> Close<'_> {
    if quote == b'"' {
        return match text.find(['"', '\\']) {
            Some(end) if text.as_bytes()[end] == b'"' => {
                Close::Closed(text[..end].to_string(), &text[end + 1..])
            }
            Some(_) => Close::Escape,
            None => Close::Open(text.to_string()),
        };
    }
    let mut value = String::new();
    let mut rest = text;
    while let Some(end) = rest.find('\'') {
        value.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        match rest.strip_prefix('\'') {
            Some(after) => {
                value.push('\'');
                rest = after;
            }
            None => return Close::Closed(value, rest),
        }
    }
    value.push_str(rest);
    Close::Open(value)
}

/// `{}`, followed by nothing or a comment.
fn empty_flow(text: &str) -> Option<Value> {
    only_comment(text.strip_prefix("{}")?).then(|| Value::Object(Map::new()))
}

/// A flow sequence of scalars on one line (`["a", b, 1]`), followed by
/// nothing or a comment.
fn flow_sequence(text: &str, dialect: Dialect) -> Option<Value> {
    let mut items = Vec::new();
    let mut rest = text[1..].trim_start_matches(' ');
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            return only_comment(after).then_some(Value::Array(items));
        }
        let (item, after) = if rest.starts_with(['"', '\'']) {
            let (item, after) = quoted(rest)?;
            (Value::String(item), after)
        } else {
            let end = rest.find([',', ']'])?;
            let plain = rest[..end].trim_end_matches(' ');
            if plain.is_empty()
                || starts_with_indicator(plain)
                || plain.contains(['[', ']', '{', '}', '#', ':', '"', '\''])
            {
                return None;
            }
            (plain_value(plain, dialect)?, &rest[end..])
        };
        items.push(item);
        rest = after.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start_matches(' ');
        } else if !rest.starts_with(']') {
            return None;
        }
    }
}

/// Whether what follows a closed scalar is nothing, blanks, or a comment.
fn only_comment(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::load::parse_full;
    use crate::yaml::{parse_documents, to_yaml_stream};

    fn full(text: &str, limits: &Limits) -> Vec<ParsedDocument> {
        parse_full(text, Dialect::Kubernetes, limits).unwrap()
    }

    /// The fast path answers, and answers what the full parser does.
    fn same(text: &str) {
        let limits = Limits::default();
        let fast = parse_simple(text, Dialect::Kubernetes, &limits);
        assert_eq!(fast, Some(full(text, &limits)), "{text:?}");
    }

    /// The fast path leaves the text to the full parser.
    fn declined(text: &str) {
        assert_eq!(
            parse_simple(text, Dialect::Kubernetes, &Limits::default()),
            None,
            "{text:?}"
        );
    }

    #[test]
    fn simple_yaml_reads_as_the_full_parser_reads_it() {
        for text in [
            "",
            "# only a comment\n",
            "a: 1",
            "# c\n\na: 1\n",
            "---\na: 1\n---\n\n# x\nb: 2\n",
            "a: 1\n---\nb: 2",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x # the name\n  labels:\n    app: \"web\"\n    tier: 'front''end'\ndata:\n  port: \"8080\"\n",
            "a:\n- 1\n- x\nb: 2",
            "a:\n  - 1\n  - -2\n  -\n    c: d\n  -\n",
            "- a: 1\n  b: 2\n- c\n-   d: 1\n    e: [] # none\n- {}\n",
            "a: |\n  foo",
            "a: |\n  foo\n",
            "a: |-\n  foo\n  bar\n\n",
            "a: |\n  foo\n\n\nb: 1",
            "a: |\n  foo\n     \nb: 1",
            "a: |\n\n  x\n",
            "a: |\n  x\n    y\n  # not a comment\n # a comment\nb: 1",
            "a: | # comment\n  x\n",
            "a: |  # comment\n  x\nb: |-   \n  y\n",
            "s:\n  - |\n    one\n  - two\n",
            "v: ~\nw: null\nx: true\nyy: 1.5\nz: 0x1F\nt: 2001-12-14\nu: yes\nq: 1e3\n",
            "empty:\nnext: 1\n",
            "url: http://a/b?c=d#e\nk:v: 1\nhash#tag: 2\n",
            "deep:\n  a:\n    b:\n      c:\n      - d\n      - e: f\n        g: h\n",
            "dup: 1\nother: 2\n",
            "a: \"multi\n  line\"\nb: 'one\n   two  \n\n  three  '\nc: 'it''s\n  ''quoted'' # not a comment\n\n\n  '  # a comment\nd:\n- 'x\n  y'\n",
            "a: [1, \"two\", 'three', four five, true, ~, 0x10]\nb: []\nc: [ x ] # c\nd: [x, y, ]\n",
            "command:\n  - [\"/bin/sh\", \"-c\"]\nargs: [\"--v=2\", \"--port=80\"]\n",
            "annotations:\n  {}\nlabels:\n  []\nname:\n  web\nq:\n  'x'\n",
            "\"1.0\": \"2001-12-14\"\na-b_c: '   '\nimage: http://host:80/path?q=1#f\nname: {}\n",
            "\"quoted key\": 1\n'it''s': 2\n\"8080\": |\n  x\n",
            "  indented: 1\n  root: 2\n",
            "a: 1\n...x",
        ] {
            if text.ends_with("...x") {
                declined(text);
            } else {
                same(text);
            }
        }
    }

    #[test]
    fn anything_else_goes_to_the_full_parser() {
        for text in [
            "---\n",
            "a: 1\n---\n",
            "scalar",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: [1, [2]]\n",
            "a: [1, {b: 2}]\n",
            "a: [b: 1]\n",
            "a: [1, , 2]\n",
            "a: [x #c\n  ]\n",
            "a: [\"open\n",
            "a: {b: 1}\n",
            "a: >\n  folded\n",
            "a: |2\n   x\n",
            "a: |+\n  x\n\n",
            "a: \"esc\\n\"\n",
            "a: \"multi\\\n  line\"\n",
            "a: 'open\nb: 1\n",
            "a:\n  b: 'under\n  its key'\n",
            "a: plain\n  continued\n",
            "a: b: c\n",
            "\"<<\": {a: 1}\n",
            "? complex\n: key\n",
            "<<: {a: 1}\n",
            "1: one\n",
            "y: 1\n",
            "true: yes\n",
            "a:\tb\n",
            "a: 1\r\n",
            "- - nested\n",
            "a: 1\n - b\n",
            "a: .inf\n",
            "a: |\n   \n  x\n",
            "--- a: 1\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\nb\n",
        ] {
            declined(text);
        }
    }

    #[test]
    fn unusual_characters_read_as_the_full_parser_reads_them() {
        let limits = Limits::default();
        let unusual = (0u32..32)
            .chain([
                0x7f, 0x80, 0x85, 0x9f, 0xa0, 0xd7ff, 0xe000, 0xfeff, 0xfffe, 0xffff,
            ])
            .chain([0x10000, 0x10ffff])
            .filter_map(char::from_u32);
        for c in unusual {
            for text in [
                format!("a: b{c}c\n"),
                format!("a: '{c}'\n"),
                format!("a: |\n  x{c}y\n"),
                format!("k{c}: 1\n"),
            ] {
                if let Some(fast) = parse_simple(&text, Dialect::Kubernetes, &limits) {
                    let full = parse_full(&text, Dialect::Kubernetes, &limits);
                    assert_eq!(Ok(fast), full, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn long_keys_read_as_the_full_parser_reads_them() {
        let limits = Limits::default();
        for n in [1000, 1022, 1024, 1025, 2000] {
            let key = "k".repeat(n);
            for text in [
                format!("{key}: 1\n"),
                format!("'{key}': 1\n"),
                format!("- {key}: 1\n"),
            ] {
                if let Some(fast) = parse_simple(&text, Dialect::Kubernetes, &limits) {
                    assert_eq!(Ok(fast), parse_full(&text, Dialect::Kubernetes, &limits));
                }
            }
        }
        assert!(parse_simple("k: 1\n", Dialect::Kubernetes, &limits).is_some());
    }

    #[test]
    fn a_key_given_twice_is_left_to_the_full_parser_unless_the_last_wins() {
        let text = "a: 1\nb: 2\na: 3\n";
        declined(text);
        let lenient = Limits::lenient();
        let fast = parse_simple(text, Dialect::Kubernetes, &lenient);
        assert_eq!(fast, Some(full(text, &lenient)));
    }

    #[test]
    fn texts_past_a_limit_are_left_to_the_full_parser() {
        // (limits, a text within them, a text past them)
        let cases = [
            (
                Limits {
                    max_documents: 2,
                    ..Limits::default()
                },
                "a: 1\n---\nb: 2\n".to_string(),
                "a: 1\n---\n".repeat(1000) + "b: 2\n",
            ),
            (
                Limits {
                    max_depth: 3,
                    ..Limits::default()
                },
                "a:\n  b: 1\n".to_string(),
                "a:\n  b:\n    c:\n      d: 1\n".to_string(),
            ),
        ];
        for (limits, within, past) in cases {
            assert!(parse_simple(&within, Dialect::Kubernetes, &limits).is_some());
            assert_eq!(parse_simple(&past, Dialect::Kubernetes, &limits), None);
            assert!(parse_documents(&past, Dialect::Kubernetes, &limits).is_err());
        }
    }

    /// A small deterministic generator of JSON trees (xorshift).
    struct Trees(u64);

    impl Trees {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn scalar(&mut self) -> Value {
            // What manifests mostly hold, then the odd ones.
            const COMMON: &[&str] = &[
                "plain",
                "",
                "two words",
                "http://host:80/path?q=1#f",
                "a: b",
                "x #y",
                "it's",
                "say \"hi\"",
                "true",
                "1.0",
                "0x10",
                "~",
                "null",
                "-x",
                "2001-12-14",
                "yes",
                "line one\nline two\n",
                "script\n  indented\n\nafter blank\n",
                "no break\nat end",
                "\nleading",
                "trailing spaces  ",
                "é ünïcode",
                "[x]",
                "#c",
                "- x",
                "k: v\nk2: v2\n",
            ];
            const ODD: &[&str] = &[
                " lead",
                "tab\there",
                "back\\slash",
                "&a",
                "*b",
                "!t",
                "|",
                ">",
                "%",
                "@",
                "`",
                "   ",
                "trailing\n\n",
                ":x",
                "?y",
                "-",
                "0777",
                "on",
                "1e3",
            ];
            match self.next(6) {
                0 | 1 => Value::from(COMMON[self.next(COMMON.len() as u64) as usize]),
                2 if self.next(8) == 0 => Value::from(ODD[self.next(ODD.len() as u64) as usize]),
                2 => Value::from(COMMON[self.next(COMMON.len() as u64) as usize]),
                3 => Value::from(self.next(100_000) as i64 - 50_000),
                4 => Value::from(self.next(1000) as f64 / 8.0),
                _ => [Value::Null, Value::Bool(true), Value::Bool(false)][self.next(3) as usize]
                    .clone(),
            }
        }

        fn tree(&mut self, depth: u32) -> Value {
            if depth > 4 {
                return self.scalar();
            }
            match if depth == 0 { 1 } else { self.next(4) } {
                0 => Value::Array((0..self.next(4)).map(|_| self.tree(depth + 1)).collect()),
                1 | 2 => {
                    let mut map = Map::new();
                    const KEYS: &[&str] = &[
                        "name",
                        "app.kubernetes.io/name",
                        "a-b_c",
                        "x.y",
                        "image",
                        "port",
                        "key",
                    ];
                    for _ in 0..self.next(5) {
                        let key = match self.next(3) {
                            0 => match self.scalar() {
                                Value::String(s) => s,
                                other => other.to_string(),
                            },
                            _ => KEYS[self.next(KEYS.len() as u64) as usize].to_string(),
                        };
                        map.insert(key, self.tree(depth + 1));
                    }
                    Value::Object(map)
                }
                _ => self.scalar(),
            }
        }
    }

    #[test]
    fn mutated_documents_read_as_the_full_parser_reads_them() {
        // Realistic documents with a few characters inserted, removed or
        // replaced: wherever the fast path answers, it must agree.
        const BASES: &[&str] = &[
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  labels:\n    app: \"web\"\ndata:\n  a: |\n    line one\n\n    line: two\n  b: 'x''y'\n",
            "spec:\n  containers:\n  - name: app\n    args: [\"--v=2\", run]\n    ports:\n    - containerPort: 80\n      protocol: TCP\n  - name: side # comment\n    image: x:1\n",
            "a:\n  - 1\n  -\n    b: ~\n  - - x\nc: >\n  folded\nd: \"two\n  lines\"\n---\ne: {}\n",
        ];
        const CHARS: &[u8] = b" :-#'\"\n[]{},|>&*!?%@`\\.~0a";
        let mut rng = Trees(0x2545_f491_4f6c_dd1d);
        let limits = Limits::default();
        let mut answered = 0;
        for _ in 0..4000 {
            let mut text = BASES[rng.next(BASES.len() as u64) as usize]
                .as_bytes()
                .to_vec();
            for _ in 0..=rng.next(3) {
                let at = rng.next(text.len() as u64) as usize;
                let c = CHARS[rng.next(CHARS.len() as u64) as usize];
                match rng.next(3) {
                    0 => text.insert(at, c),
                    1 => {
                        text.remove(at);
                    }
                    _ => text[at] = c,
                }
            }
            let Ok(text) = String::from_utf8(text) else {
                continue;
            };
            if let Some(fast) = parse_simple(&text, Dialect::Kubernetes, &limits) {
                assert_eq!(
                    Ok(fast),
                    parse_full(&text, Dialect::Kubernetes, &limits),
                    "{text:?}"
                );
                answered += 1;
            }
        }
        assert!(answered > 1000, "the fast path answered only {answered}");
    }

    #[test]
    fn generated_documents_read_as_the_full_parser_reads_them() {
        let mut trees = Trees(0x9e37_79b9_7f4a_7c15);
        let limits = Limits::default();
        let mut answered = 0;
        for _ in 0..3000 {
            let documents: Vec<Value> = (0..=trees.next(2)).map(|_| trees.tree(0)).collect();
            let text = to_yaml_stream(&documents);
            if let Some(fast) = parse_simple(&text, Dialect::Kubernetes, &limits) {
                assert_eq!(fast, full(&text, &limits), "{text}");
                answered += 1;
            }
        }
        // The fast path must take a good share of what the emitter writes.
        assert!(answered > 500, "the fast path answered only {answered}");
    }
}
