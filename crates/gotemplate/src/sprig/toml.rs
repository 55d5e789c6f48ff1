//! Helm's `fromToml`: a TOML document as BurntSushi/toml decodes it into
//! a map (integers int64, floats float64, dates `time.Time`, local ones in
//! its `datetime-local`, `date-local` and `time-local` zones); on bad input
//! a map whose `Error` is the parser's message (worded by gitplane's
//! parser, not BurntSushi's). An array of tables is a list here, where Go
//! has a `[]map[string]interface {}` (only `%T` and `typeOf` tell).
//!
//! And Helm's `toToml`, as the Go TOML encoder Helm uses (BurntSushi/toml)
//! writes a map: keys sorted, plain values first, then tables
//! (`[a.b]`, indented two spaces per level below the top, a blank line
//! before each top-level one) and arrays of tables (`[[a]]`); nil values
//! left out; whole floats with `.0`; a value other than a map written
//! alone. What cannot be encoded gives the encoder's error text instead of
//! TOML, as Helm returns it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Plain, exactly};
use crate::gotime::{Location, Time};
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("toToml", |a| {
        let value = &exactly::<1>("toToml", a)?[0];
        Ok(to_toml(value).unwrap_or_else(|e| e).into())
    }),
    ("fromToml", |a| {
        let text = super::string(&exactly::<1>("fromToml", a)?[0])?;
        Ok(from_toml(text))
    }),
];

fn from_toml(text: &str) -> Value {
    match toml_edit::Document::parse(text) {
        Ok(document) => table_value(document.as_table().iter()),
        Err(e) => {
            let message = e.to_string().trim_end().replace('\n', " ");
            Value::map(BTreeMap::from([(
                "Error".to_string(),
                Value::string(format!("toml: {message}")),
            )]))
        }
    }
}

fn table_value<'a>(entries: impl Iterator<Item = (&'a str, &'a toml_edit::Item)>) -> Value {
    Value::map(
        entries
            .map(|(key, item)| (key.to_string(), item_value(item)))
            .collect(),
    )
}

fn item_value(item: &toml_edit::Item) -> Value {
    match item {
        toml_edit::Item::None => Value::Nil,
        toml_edit::Item::Value(value) => toml_value(value),
        toml_edit::Item::Table(table) => table_value(table.iter()),
        toml_edit::Item::ArrayOfTables(tables) => {
            Value::list(tables.iter().map(|t| table_value(t.iter())).collect())
        }
    }
}

fn toml_value(value: &toml_edit::Value) -> Value {
    match value {
        toml_edit::Value::String(s) => Value::string(s.value().as_str()),
        toml_edit::Value::Integer(n) => Value::Int64(*n.value()),
        toml_edit::Value::Float(f) => Value::Float(*f.value()),
        toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
        toml_edit::Value::Datetime(d) => datetime(d.value()),
        toml_edit::Value::Array(items) => Value::list(items.iter().map(toml_value).collect()),
        toml_edit::Value::InlineTable(table) => Value::map(
            table
                .iter()
                .map(|(key, value)| (key.to_string(), toml_value(value)))
                .collect(),
        ),
    }
}

/// A TOML date as BurntSushi/toml gives it: a `time.Time`, in a zone of
/// its offset, or in one named for what kind of local value it was.
fn datetime(value: &toml_edit::Datetime) -> Value {
    let date = value.date.map_or([0, 1, 1], |d| {
        [i64::from(d.year), i64::from(d.month), i64::from(d.day)]
    });
    let (clock, nanos) = value.time.map_or(([0; 3], 0), |t| {
        (
            [
                i64::from(t.hour),
                i64::from(t.minute),
                i64::from(t.second.unwrap_or(0)),
            ],
            t.nanosecond.unwrap_or(0),
        )
    });
    let location = match (value.offset, value.date, value.time) {
        (Some(toml_edit::Offset::Z), _, _) => Location::utc(),
        (Some(toml_edit::Offset::Custom { minutes }), _, _) => {
            Location::fixed_zone("", i32::from(minutes) * 60)
        }
        (None, Some(_), Some(_)) => Location::fixed_zone("datetime-local", 0),
        (None, Some(_), None) => Location::fixed_zone("date-local", 0),
        (None, None, _) => Location::fixed_zone("time-local", 0),
    };
    Value::Object(Arc::new(Time::date(date, clock, nanos, location)))
}

const INDENT: &str = "  ";

fn to_toml(value: &Value) -> Result<String, String> {
    let mut out = Writer::default();
    match value {
        Value::Map(map) => out.table(&[], &map.entries(), 0)?,
        // Anything else is written as a value alone (`"str"`, `[1, 2]`).
        other => out.element(other, 0)?,
    }
    Ok(out.text)
}

#[derive(Default)]
struct Writer {
    text: String,
}

/// Whether a value is written as a table, or as an array of tables.
fn is_table(value: &Value) -> bool {
    matches!(value, Value::Map(_))
}

fn is_table_array(value: &Value) -> bool {
    match value {
        Value::List(items) => {
            let present: Vec<&Value> = items.iter().filter(|v| !is_nil(v)).collect();
            !present.is_empty() && present.iter().all(|v| is_table(v))
        }
        _ => false,
    }
}

fn is_nil(value: &Value) -> bool {
    matches!(value, Value::Nil | Value::Missing)
}

impl Writer {
    fn newline(&mut self) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
    }

    /// The fields of a table at `key`: plain ones, then sub-tables.
    fn table(
        &mut self,
        key: &[&str],
        entries: &std::collections::BTreeMap<String, Value>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > crate::value::MAX_NESTING {
            return Err("toml: value nested too deeply".into());
        }
        let (sub, direct): (Vec<_>, Vec<_>) = entries
            .iter()
            .filter(|(_, v)| !is_nil(v))
            .partition(|(_, v)| is_table(v) || is_table_array(v));
        for (name, value) in direct {
            let path = [key, &[name.as_str()]].concat();
            self.text
                .push_str(&format!("{}{} = ", indent(&path), quoted_key(name)));
            self.element(value, depth)?;
            self.newline();
        }
        for (name, value) in sub {
            let path = [key, &[name.as_str()]].concat();
            match value {
                Value::Map(map) => {
                    if path.len() == 1 {
                        self.newline();
                    }
                    self.text
                        .push_str(&format!("{}[{}]", indent(&path), dotted(&path)));
                    self.newline();
                    self.table(&path, &map.entries(), depth + 1)?;
                }
                Value::List(items) => {
                    for item in items.iter() {
                        let Value::Map(map) = item else { continue };
                        self.newline();
                        self.text
                            .push_str(&format!("{}[[{}]]", indent(&path), dotted(&path)));
                        self.newline();
                        self.table(&path, &map.entries(), depth + 1)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A value in place: a scalar, an array, or an inline table.
    fn element(&mut self, value: &Value, depth: usize) -> Result<(), String> {
        if depth > crate::value::MAX_NESTING {
            return Err("toml: value nested too deeply".into());
        }
        match value {
            Value::Bool(b) => self.text.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) | Value::Int64(n) => self.text.push_str(&n.to_string()),
            Value::Float(f) => self.text.push_str(&float(*f)),
            Value::String(s) => self.text.push_str(&quoted(s)),
            Value::Object(o) => self.text.push_str(&quoted(&o.print())),
            Value::List(items) => {
                self.text.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.text.push_str(", ");
                    }
                    self.element(item, depth + 1)?;
                }
                self.text.push(']');
            }
            Value::Map(map) => {
                self.text.push('{');
                let entries = map.entries();
                let present: Vec<_> = entries.iter().filter(|(_, v)| !is_nil(v)).collect();
                for (i, (name, item)) in present.iter().enumerate() {
                    if i > 0 {
                        self.text.push_str(", ");
                    }
                    self.text.push_str(&format!("{} = ", quoted_key(name)));
                    self.element(item, depth + 1)?;
                }
                self.text.push('}');
            }
            Value::Nil | Value::Missing => {
                return Err("toml: cannot encode a nil value in an array".into());
            }
        }
        Ok(())
    }
}

fn indent(path: &[&str]) -> String {
    INDENT.repeat(path.len().saturating_sub(1))
}

fn dotted(path: &[&str]) -> String {
    path.iter()
        .map(|p| quoted_key(p))
        .collect::<Vec<_>>()
        .join(".")
}

/// A bare key when it can be one (`A-Za-z0-9_-`), else a quoted one.
fn quoted_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare { key.to_string() } else { quoted(key) }
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's shortest `%v` form of a float, with `.0` added to a whole number
/// (`8080.0`; `1e+06` stays as it is), as the encoder writes floats.
fn float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let text = crate::fmt::format_float_v(f);
    if text.contains(['.', 'e']) {
        text
    } else {
        format!("{text}.0")
    }
}

#[cfg(test)]
mod tests {
    fn render(src: &str) -> String {
        crate::sprig::render_for_test(src).unwrap()
    }

    #[test]
    fn documents_are_read_with_go_types() {
        let out = render(
            r#"{{ $d := fromToml "n = 1_000\nf = 2.0\nwhen = 2020-01-02T03:04:05+01:00\n[t]\nk = [1, 'x']" }}{{ printf "%T %v %T %v %v %v" $d.n $d.n $d.f $d.when $d.t.k (toJson $d) }}"#,
        );
        assert_eq!(
            out,
            r#"int64 1000 float64 2020-01-02 03:04:05 +0100 +0100 [1 x] {"f":2,"n":1000,"t":{"k":[1,"x"]},"when":"2020-01-02T03:04:05+01:00"}"#
        );
        let error = render(r#"{{ (fromToml "a = [").Error }}"#);
        assert!(error.starts_with("toml: "), "{error}");
    }

    #[test]
    fn maps_are_written_as_the_go_encoder_writes_them() {
        // Printed by helm 4.1.4 for the same template.
        let out = render(
            r#"{{ toToml (dict "z" 1.5 "a" "x" "n" nil "t" (dict "k" 8080.0 "d" (dict "e" true)) "l" (list (dict "m" 1) (dict "m" 2))) }}"#,
        );
        assert_eq!(
            out,
            "a = \"x\"\nz = 1.5\n\n[[l]]\n  m = 1\n\n[[l]]\n  m = 2\n\n[t]\n  k = 8080.0\n  [t.d]\n    e = true\n"
        );
        assert_eq!(render(r#"{{ toToml "s" }}"#), "\"s\"");
    }
}
