//! Writing values as YAML, byte for byte as `kubectl kustomize` does.
//!
//! kustomize prints every object by marshalling it to JSON and then through
//! goyaml.v2, so its output follows libyaml's emitter: keys sorted in goyaml's
//! "natural" order, two-space indentation with sequences not indented under their
//! key, plain scalars where they read back as the same string under YAML 1.1,
//! single or double quotes otherwise, literal blocks for multi-line strings, and
//! lines folded at 80 columns. This module reproduces those rules for JSON values.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::scalar::resolves_to_non_string;

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i32 = 2;
/// libyaml writes keys longer than this in the explicit `? key` form.
const MAX_SIMPLE_KEY_LENGTH: usize = 128;

/// Writes one value as a YAML document (no `---` separator), ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut e = Emitter::new(Flavor::GoYamlV2);
    e.emit_node(value, Context::default());
    e.write_indent_at_document_end();
    e.out
}

/// Writes one value as goyaml.v3's encoder with an indent of 2 writes it
/// (Helm 4's `toYamlPretty`): sequences indented under their key, lines
/// not folded, and numbers as the value has them (a float as Go's `%g`
/// writes it: `3`, `1e+06`, `1.5e-07`), ending with a newline.
pub fn to_yaml_v3(value: &Value) -> String {
    let mut e = Emitter::new(Flavor::GoYamlV3);
    e.emit_node(value, Context::default());
    e.write_indent_at_document_end();
    e.out
}

/// Writes one mapping as a YAML document (what [`to_yaml`] does for an object,
/// without building a [`Value`] first).
pub fn map_to_yaml(map: &Map<String, Value>) -> String {
    let mut e = Emitter::new(Flavor::GoYamlV2);
    e.start();
    if map.is_empty() {
        e.emit_empty_flow("{", "}");
    } else {
        e.emit_block_mapping(map);
    }
    e.write_indent_at_document_end();
    e.out
}

/// Writes objects as documents separated by `---` lines, as `kustomize build` does.
pub fn objects_to_yaml_stream<'a>(objects: impl IntoIterator<Item = &'a crate::Object>) -> String {
    let mut out = String::new();
    for (i, object) in objects.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&map_to_yaml(object.body()));
    }
    out
}

/// Writes documents separated by `---` lines, as `kustomize build` does.
pub fn to_yaml_stream<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(value));
    }
    out
}

/// Orders mapping keys as goyaml.v2 does: runs of digits compare by numeric value,
/// letters sort after non-letters where the strings first differ.
pub fn compare_keys(a: &str, b: &str) -> Ordering {
    if key_less(a, b) {
        Ordering::Less
    } else if key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn key_less(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        natural_less(a.as_bytes(), b.as_bytes(), |c| char::from(*c))
    } else {
        let ar: Vec<char> = a.chars().collect();
        let br: Vec<char> = b.chars().collect();
        natural_less(&ar, &br, |c| *c)
    }
}

/// goyaml.v2's `keyList.Less` over runes (or bytes, for ASCII keys).
fn natural_less<T: PartialEq>(ar: &[T], br: &[T], ch: impl Fn(&T) -> char) -> bool {
    let digit = |c: &T| ch(c).is_ascii_digit();
    let value = |c: &T| i64::from(ch(c) as u8 - b'0');
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (ac, bc) = (ch(&ar[i]), ch(&br[i]));
        let al = ac.is_alphabetic();
        let bl = bc.is_alphabetic();
        if al && bl {
            return ac < bc;
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ac == '0' || bc == '0' {
            let mut j = i;
            while j > 0 && digit(&ar[j - 1]) {
                j -= 1;
                if ch(&ar[j]) != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && digit(&ar[ai]) {
            an = an.wrapping_mul(10).wrapping_add(value(&ar[ai]));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && digit(&br[bi]) {
            bn = bn.wrapping_mul(10).wrapping_add(value(&br[bi]));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ac < bc;
    }
    ar.len() < br.len()
}

/// Formats a number as it appears after kustomize's JSON round trip.
pub fn format_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.is_finite() {
        // 2^63 and 2^64: what goyaml reads back as int64 or uint64.
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        const TWO_64: f64 = 18_446_744_073_709_551_616.0;
        if (-TWO_63..TWO_63).contains(&f) {
            return (f as i64).to_string();
        }
        if (0.0..TWO_64).contains(&f) {
            return (f as u64).to_string();
        }
    }
    format_go_g(f)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
fn format_go_g(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

#[derive(Clone, Copy, Default)]
struct Context {
    mapping: bool,
    simple_key: bool,
}

/// What libyaml's `yaml_emitter_analyze_scalar` learns about a scalar.
#[derive(Debug)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let c = c as u32;
    c == 0x0A
        || (0x20..=0x7E).contains(&c)
        || (0xA0..=0xD7FF).contains(&c)
        || ((0xE000..=0xFFFD).contains(&c) && c != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut chars = value.chars().peekable();
    // Only block context matters here (see `select_style`), so flow indicators
    // such as `,` or `[` inside a value do not prevent plain style.
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let (mut line_breaks, mut special_characters) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut i = 0;
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let followed_by_whitespace = next.is_none_or(is_blank);
        block_indicators |= if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => true,
                '?' | ':' | '-' => followed_by_whitespace,
                _ => false,
            }
        } else {
            match c {
                ':' => followed_by_whitespace,
                '#' => preceded_by_whitespace,
                _ => false,
            }
        };
        special_characters |= !is_printable(c);
        let last = next.is_none();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(c) || is_break(c) || c == '\0';
        i += 1;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break || line_breaks {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// The text of a scalar value and the style goyaml's encoder asks for.
fn scalar_text(value: &Value, flavor: Flavor) -> (Cow<'_, str>, Style) {
    match value {
        Value::Null => (Cow::Borrowed("null"), Style::Plain),
        Value::Bool(true) => (Cow::Borrowed("true"), Style::Plain),
        Value::Bool(false) => (Cow::Borrowed("false"), Style::Plain),
        Value::Number(n) if flavor == Flavor::GoYamlV3 && n.is_f64() => (
            Cow::Owned(format_go_g(n.as_f64().unwrap_or(0.0))),
            Style::Plain,
        ),
        Value::Number(n) => (Cow::Owned(format_number(n)), Style::Plain),
        Value::String(s) => (Cow::Borrowed(s), requested_string_style(s)),
        Value::Array(_) | Value::Object(_) => (Cow::Borrowed(""), Style::Plain),
    }
}

fn requested_string_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if resolves_to_non_string(s) {
        Style::DoubleQuoted
    } else {
        Style::Plain
    }
}

/// Which goyaml's encoder the output follows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    /// goyaml.v2 after a JSON round trip (kustomize, Helm's `toYaml`).
    GoYamlV2,
    /// goyaml.v3 with an indent of 2 (Helm's `toYamlPretty`).
    GoYamlV3,
}

struct Emitter {
    flavor: Flavor,
    /// Where plain and quoted scalars fold.
    width: usize,
    out: String,
    column: usize,
    indent: i32,
    indents: Vec<i32>,
    whitespace: bool,
    indention: bool,
    started: bool,
}

impl Emitter {
    fn new(flavor: Flavor) -> Emitter {
        Emitter {
            flavor,
            width: match flavor {
                Flavor::GoYamlV2 => BEST_WIDTH,
                Flavor::GoYamlV3 => usize::MAX,
            },
            out: String::new(),
            column: 0,
            indent: 0,
            indents: Vec::new(),
            whitespace: false,
            indention: false,
            started: false,
        }
    }

    fn start(&mut self) {
        if !self.started {
            self.started = true;
            self.indent = -1;
            self.whitespace = true;
            self.indention = true;
        }
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indent_at_document_end(&mut self) {
        self.indent = -1;
        self.write_indent();
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn emit_node(&mut self, value: &Value, ctx: Context) {
        self.start();
        match value {
            Value::Object(map) if map.is_empty() => self.emit_empty_flow("{", "}"),
            Value::Array(items) if items.is_empty() => self.emit_empty_flow("[", "]"),
            Value::Object(map) => self.emit_block_mapping(map),
            Value::Array(items) => self.emit_block_sequence(items, ctx),
            scalar => {
                let (text, style) = scalar_text(scalar, self.flavor);
                self.emit_scalar(&text, style, ctx);
            }
        }
    }

    fn emit_empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn emit_block_mapping(&mut self, map: &Map<String, Value>) {
        self.increase_indent(false, false);
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| compare_keys(a, b));
        for key in keys {
            let value = &map[key.as_str()];
            self.write_indent();
            let analysis = analyze(key);
            if !analysis.multiline && key.len() <= MAX_SIMPLE_KEY_LENGTH {
                self.emit_scalar(
                    key,
                    requested_string_style(key),
                    Context {
                        mapping: true,
                        simple_key: true,
                    },
                );
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.emit_scalar(
                    key,
                    requested_string_style(key),
                    Context {
                        mapping: true,
                        ..Context::default()
                    },
                );
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.emit_node(
                value,
                Context {
                    mapping: true,
                    ..Context::default()
                },
            );
        }
        self.pop_indent();
    }

    fn emit_block_sequence(&mut self, items: &[Value], ctx: Context) {
        let indentless = self.flavor == Flavor::GoYamlV2 && ctx.mapping && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.emit_node(item, Context::default());
        }
        self.pop_indent();
    }

    fn emit_scalar(&mut self, text: &str, requested: Style, ctx: Context) {
        let analysis = analyze(text);
        let style = Self::select_style(text, requested, &analysis, ctx);
        self.increase_indent(true, false);
        let allow_breaks = !ctx.simple_key;
        match style {
            Style::Plain => self.write_plain(text, allow_breaks),
            Style::SingleQuoted => self.write_single_quoted(text, allow_breaks),
            Style::DoubleQuoted => self.write_double_quoted(text, allow_breaks),
            Style::Literal => self.write_literal(text),
        }
        self.pop_indent();
    }

    fn select_style(text: &str, requested: Style, a: &Analysis, ctx: Context) -> Style {
        let mut style = requested;
        if ctx.simple_key && a.multiline {
            style = Style::DoubleQuoted;
        }
        // Only empty collections are written in flow style, so scalars are always
        // in block context here.
        if style == Style::Plain && (!a.block_plain_allowed || (text.is_empty() && ctx.simple_key))
        {
            style = Style::SingleQuoted;
        }
        if style == Style::SingleQuoted && !a.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal && (!a.block_allowed || ctx.simple_key) {
            style = Style::DoubleQuoted;
        }
        style
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        // A line can only fold at a space reached past the width limit.
        let length = value.chars().count();
        if !allow_breaks
            || !value.contains(' ')
            || self.column + length <= self.width.saturating_add(1)
        {
            self.out.push_str(value);
            self.column += length;
            self.whitespace = false;
            self.indention = false;
            return;
        }
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > self.width && !next_is_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > self.width
                    && i > 0
                    && i + 1 < chars.len()
                    && !next_is_space
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_double_quoted(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        // goyaml's is_bom looks at the start of the whole value, not at the current
        // character, so a value that starts with a BOM has every character escaped.
        let starts_with_bom = value.starts_with('\u{feff}');
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || starts_with_bom || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{07}' => self.put('a'),
                    '\u{08}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{0b}' => self.put('v'),
                    '\u{0c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let code = c as u32;
                        let (letter, width) = if code <= 0xFF {
                            ('x', 2)
                        } else if code <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for ch in format!("{code:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > self.width
                    && i != 0
                    && i + 1 != chars.len()
                {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        self.write_block_scalar_hints(value);
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in value.chars() {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }

    fn write_block_scalar_hints(&mut self, value: &str) {
        let first = value.chars().next();
        if first.is_some_and(|c| c == ' ' || is_break(c)) {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let mut rev = value.chars().rev();
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some("-"),
            (Some(last), _) if !is_break(last) => Some("-"),
            (Some(_), None) => Some("+"),
            (Some(_), Some(before)) if is_break(before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kustomize_layout() {
        let v = json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "labels": {}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "args": ["a", "b"], "ports": [{"containerPort": 80}]}
            ], "volumes": []}}}
        });
        let expected = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  labels: {}
  name: web
spec:
  template:
    spec:
      containers:
      - args:
        - a
        - b
        image: nginx
        name: web
        ports:
        - containerPort: 80
      volumes: []
";
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn scalar_quoting_like_goyaml_v2() {
        let cases = [
            ("yes", "\"yes\""),
            ("y", "\"y\""),
            ("12", "\"12\""),
            ("", "\"\""),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            ("x#y", "x#y"),
            ("*x", "'*x'"),
            (" lead", "' lead'"),
            ("a\tb", "\"a\\tb\""),
            ("12:30:45", "\"12:30:45\""),
            ("héllo", "héllo"),
            ("\u{1F600} smile", "\"\\U0001F600 smile\""),
            ("---", "'---'"),
            ("a'b", "a'b"),
            ("'a", "'''a'"),
            ("<<", "<<"),
            ("-x", "-x"),
            ("- x", "'- x'"),
            ("\r", "\"\\r\""),
            ("\u{feff}bom", "\"\\uFEFF\\x62\\x6F\\x6D\""),
        ];
        for (input, want) in cases {
            assert_eq!(
                to_yaml(&json!({ "k": input })),
                format!("k: {want}\n"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn literal_blocks_and_chomping() {
        assert_eq!(to_yaml(&json!({"k": "a\nb"})), "k: |-\n  a\n  b\n");
        assert_eq!(to_yaml(&json!({"k": "a\n"})), "k: |\n  a\n");
        assert_eq!(
            to_yaml(&json!({"k": "a\n\nb\n\n", "z": 1})),
            "k: |+\n  a\n\n  b\n\nz: 1\n"
        );
        assert_eq!(
            to_yaml(&json!({"k": "  lead\nx"})),
            "k: |2-\n    lead\n  x\n"
        );
        assert_eq!(to_yaml(&json!({"k": "a \nb"})), "k: \"a \\nb\"\n");
    }

    #[test]
    fn long_plain_strings_fold_at_80_columns() {
        let long = format!(
            "{} {} {} {}",
            "a".repeat(45),
            "b".repeat(49),
            "c".repeat(33),
            "d".repeat(23)
        );
        let want = format!(
            "  long: {} {}\n    {} {}\n",
            "a".repeat(45),
            "b".repeat(49),
            "c".repeat(33),
            "d".repeat(23)
        );
        assert_eq!(
            to_yaml(&json!({"data": {"long": long}})),
            format!("data:\n{want}")
        );
    }

    #[test]
    fn numbers_after_the_json_round_trip() {
        let n = |v: Value| to_yaml(&json!({ "num": v })).replace("num: ", "n: ");
        assert_eq!(n(json!(1.5)), "n: 1.5\n");
        assert_eq!(n(json!(1000.0)), "n: 1000\n");
        assert_eq!(n(json!(1234567.5)), "n: 1.2345675e+06\n");
        assert_eq!(n(json!(0.0000001)), "n: 1e-07\n");
        assert_eq!(n(json!(1e20)), "n: 1e+20\n");
        assert_eq!(
            n(json!(1.2345678901234568e29)),
            "n: 1.2345678901234568e+29\n"
        );
        assert_eq!(n(json!(u64::MAX)), "n: 18446744073709551615\n");
        assert_eq!(n(json!(-0.0)), "n: 0\n");
    }

    #[test]
    fn natural_key_order() {
        let mut keys = vec!["a10", "a9", "b", "B", "_x", "a", "1", "10", "2"];
        keys.sort_by(|a, b| compare_keys(a, b));
        assert_eq!(keys, ["_x", "1", "2", "10", "B", "a", "a9", "a10", "b"]);
    }

    #[test]
    fn nested_sequences_and_maps_in_sequences() {
        let v = json!({"a": [[1, 2], {"x": 1, "z": [3]}], "e": [{}], "y": 1});
        assert_eq!(
            to_yaml(&v),
            "a:\n- - 1\n  - 2\n- x: 1\n  z:\n  - 3\ne:\n- {}\n\"y\": 1\n"
        );
    }

    #[test]
    fn long_and_multiline_keys_use_explicit_form() {
        let key = "k".repeat(130);
        assert_eq!(
            to_yaml(&json!({ key.clone(): 1 })),
            format!("? {key}\n: 1\n")
        );
        assert_eq!(to_yaml(&json!({"a\nb": 1})), "? |-\n  a\n  b\n: 1\n");
    }
}
