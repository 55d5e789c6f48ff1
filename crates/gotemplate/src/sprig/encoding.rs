//! Encodings: base64/32, digests, and JSON and YAML as Helm writes and reads
//! them (Go's `encoding/json`, sigs.k8s.io/yaml).

use std::collections::BTreeMap;

use base64::Engine as _;
use gitplane_object::yaml::{Dialect, Limits, parse_documents, to_yaml, to_yaml_v3};
use sha1::Digest as _;

use super::{Plain, exactly, string};
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("b64enc", |a| {
        Ok(base64::engine::general_purpose::STANDARD
            .encode(one_bytes("b64enc", a)?)
            .into())
    }),
    ("b64dec", |a| {
        let decoded = base64::engine::general_purpose::STANDARD.decode(one_str("b64dec", a)?);
        Ok(decoded
            .map_or_else(
                |e| e.to_string(),
                |b| String::from_utf8_lossy(&b).into_owned(),
            )
            .into())
    }),
    ("b32enc", |a| {
        Ok(base32_encode(one_bytes("b32enc", a)?).into())
    }),
    (
        "b32dec",
        |a| Ok(base32_decode(one_str("b32dec", a)?).into()),
    ),
    ("sha1sum", |a| {
        Ok(hex(&sha1::Sha1::digest(one_bytes("sha1sum", a)?)).into())
    }),
    ("sha256sum", |a| {
        Ok(hex(&sha2::Sha256::digest(one_bytes("sha256sum", a)?)).into())
    }),
    ("sha512sum", |a| {
        Ok(hex(&sha2::Sha512::digest(one_bytes("sha512sum", a)?)).into())
    }),
    ("adler32sum", |a| {
        Ok(adler32(one_bytes("adler32sum", a)?).to_string().into())
    }),
    ("toJson", |a| {
        Ok(go_json(&exactly::<1>("toJson", a)?[0], Style::Html)
            .unwrap_or_default()
            .into())
    }),
    ("mustToJson", |a| {
        Ok(go_json(&exactly::<1>("mustToJson", a)?[0], Style::Html)?.into())
    }),
    ("toRawJson", |a| {
        Ok(go_json(&exactly::<1>("toRawJson", a)?[0], Style::Raw)
            .unwrap_or_default()
            .into())
    }),
    ("mustToRawJson", |a| {
        Ok(go_json(&exactly::<1>("mustToRawJson", a)?[0], Style::Raw)?.into())
    }),
    ("toPrettyJson", |a| {
        Ok(go_json(&exactly::<1>("toPrettyJson", a)?[0], Style::Pretty)
            .unwrap_or_default()
            .into())
    }),
    ("mustToPrettyJson", |a| {
        Ok(go_json(&exactly::<1>("mustToPrettyJson", a)?[0], Style::Pretty)?.into())
    }),
    ("fromJson", |a| {
        Ok(from_json(one_str("fromJson", a)?, false))
    }),
    ("mustFromJson", |a| {
        serde_json::from_str::<serde_json::Value>(one_str("mustFromJson", a)?)
            .map(|v| Value::from_json(&v))
            .map_err(|e| e.to_string())
    }),
    ("fromJsonArray", |a| {
        Ok(from_json(one_str("fromJsonArray", a)?, true))
    }),
    ("toYaml", |a| {
        Ok(go_yaml(&exactly::<1>("toYaml", a)?[0])
            .unwrap_or_default()
            .into())
    }),
    ("mustToYaml", |a| {
        Ok(go_yaml(&exactly::<1>("mustToYaml", a)?[0])?.into())
    }),
    ("toYamlPretty", |a| {
        Ok(go_yaml_pretty(&exactly::<1>("toYamlPretty", a)?[0]).into())
    }),
    ("fromYaml", |a| {
        Ok(from_yaml(one_str("fromYaml", a)?, false))
    }),
    ("fromYamlArray", |a| {
        Ok(from_yaml(one_str("fromYamlArray", a)?, true))
    }),
];

fn one_str<'a>(name: &str, args: &'a [Value]) -> Result<&'a str, String> {
    string(&exactly::<1>(name, args)?[0])
}

/// The bytes of the one string argument (a binary file's too).
fn one_bytes<'a>(name: &str, args: &'a [Value]) -> Result<&'a [u8], String> {
    match &exactly::<1>(name, args)?[0] {
        Value::Object(o) if o.raw_bytes().is_some() => Ok(o.raw_bytes().unwrap_or_default()),
        other => string(other).map(str::as_bytes),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(char::from(BASE32[((bits >> (35 - i * 5)) & 31) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base32_decode(text: &str) -> String {
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let Some(v) = BASE32.iter().position(|b| *b == c) else {
            return format!("illegal base32 data at input byte {}", out.len());
        };
        bits = (bits << 5) | v as u64;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How [`go_json`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `json.Marshal`: `<`, `>`, `&` escaped.
    Html,
    /// Sprig's `toRawJson`: not escaped.
    Raw,
    /// `json.MarshalIndent(v, "", "  ")`.
    Pretty,
}

/// Go's `encoding/json` output for a value: keys sorted, floats as Go writes
/// them, strings escaped as Go escapes them.
fn go_json(value: &Value, style: Style) -> Result<String, String> {
    let mut out = String::new();
    write_json(&mut out, value, style, 0)?;
    Ok(out)
}

fn write_json(out: &mut String, value: &Value, style: Style, depth: usize) -> Result<(), String> {
    if depth > crate::value::MAX_NESTING {
        return Err("json: value nested too deeply".into());
    }
    let newline = |out: &mut String, depth: usize| {
        if style == Style::Pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
    };
    match value {
        Value::Missing | Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) | Value::Int64(n) => out.push_str(&n.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)?),
        Value::String(s) => json_string(out, s, style != Style::Raw),
        Value::Object(o) => match o.json() {
            Some(serde_json::Value::String(text)) => json_string(out, &text, style != Style::Raw),
            _ => json_string(out, &o.print(), style != Style::Raw),
        },
        Value::List(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json(out, item, style, depth + 1)?;
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Map(map) => {
            let entries = map.entries();
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                json_string(out, key, style != Style::Raw);
                out.push(':');
                if style == Style::Pretty {
                    out.push(' ');
                }
                write_json(out, item, style, depth + 1)?;
            }
            newline(out, depth);
            out.push('}');
        }
    }
    Ok(())
}

/// Go's JSON float: positional between 1e-6 and 1e21, else `1e+21`, `1e-7`.
fn json_float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!(
            "json: unsupported value: {}",
            crate::fmt::format_float_v(f)
        ));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return Ok(format!("{mantissa}e{sign}{:02}", exp.abs()).replace("e-0", "e-"));
    }
    // Rust's shortest Display is positional for floats.
    Ok(format!("{f}"))
}

fn json_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Helm's `fromJson`/`fromJsonArray`: the error in the result (`Error` key,
/// or the only element) rather than failing the render.
fn from_json(text: &str, array: bool) -> Value {
    match (serde_json::from_str::<serde_json::Value>(text), array) {
        (Ok(v @ serde_json::Value::Object(_)), false)
        | (Ok(v @ serde_json::Value::Array(_)), true) => Value::from_json(&v),
        (Ok(other), _) => conversion_error(
            array,
            &format!("json: cannot unmarshal {} into Go value", json_kind(&other)),
        ),
        (Err(e), _) => conversion_error(array, &e.to_string()),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn conversion_error(array: bool, message: &str) -> Value {
    if array {
        Value::list(vec![message.into()])
    } else {
        Value::map(BTreeMap::from([("Error".to_string(), message.into())]))
    }
}

/// Helm's `toYaml`: through JSON (integral floats become integers) into
/// goyaml.v2's output, without the final newline.
fn go_yaml(value: &Value) -> Result<String, String> {
    let json = value.to_json()?;
    let text = to_yaml(&json);
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

/// Helm 4's `toYamlPretty`: goyaml.v3's encoder with an indent of 2 (lists
/// indented under their key, floats as Go's `%g` prints them), without the
/// final newline; an empty string for what the encoder cannot write.
fn go_yaml_pretty(value: &Value) -> String {
    let Ok(json) = value.to_json_keeping_floats() else {
        return String::new();
    };
    let text = to_yaml_v3(&json);
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

/// Helm's `fromYaml`/`fromYamlArray` (sigs.k8s.io/yaml: YAML 1.1 scalars,
/// every number a float64).
fn from_yaml(text: &str, array: bool) -> Value {
    let documents = match parse_documents(text, Dialect::Kubernetes, &Limits::lenient()) {
        Ok(d) => d,
        Err(e) => {
            return conversion_error(
                array,
                &format!(
                    "error converting YAML to JSON: yaml: line {}: {}",
                    e.line, e.message
                ),
            );
        }
    };
    let first = documents.into_iter().next().map(|d| d.value);
    match (first, array) {
        (None | Some(serde_json::Value::Null), false) => Value::map(BTreeMap::new()),
        (None | Some(serde_json::Value::Null), true) => Value::list(Vec::new()),
        (Some(v @ serde_json::Value::Object(_)), false)
        | (Some(v @ serde_json::Value::Array(_)), true) => Value::from_json(&v),
        (Some(other), _) => conversion_error(
            array,
            &format!(
                "error unmarshaling JSON: json: cannot unmarshal {} into Go value",
                json_kind(&other)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::render;
    use crate::value::Value;

    fn r(src: &str) -> String {
        render(src, &Value::Nil).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn digests_and_base_encodings() {
        assert_eq!(
            r(
                r#"{{ b64enc "hello" }} {{ b64dec "aGVsbG8=" }} {{ b32enc "hi" }} {{ b32dec "NBUQ====" }}"#
            ),
            "aGVsbG8= hello NBUQ==== hi"
        );
        assert_eq!(
            r(r#"{{ sha256sum "a" }}"#),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        );
        assert_eq!(
            r(r#"{{ sha1sum "a" }} {{ adler32sum "a" }}"#),
            "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8 6422626"
        );
    }

    #[test]
    fn json_as_go_writes_it() {
        assert_eq!(
            r(r#"{{ toJson (dict "b" 1.5 "a" (list 1 "<x>" nil) "c" 1e21 "d" 1e-7 "e" 3.0) }}"#),
            r#"{"a":[1,"\u003cx\u003e",null],"b":1.5,"c":1e+21,"d":1e-7,"e":3}"#
        );
        assert_eq!(r(r#"{{ toRawJson (dict "a" "<&>") }}"#), r#"{"a":"<&>"}"#);
        assert_eq!(
            r(r#"{{ toPrettyJson (dict "a" (list 1) "b" (dict)) }}"#),
            "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}"
        );
        assert_eq!(
            r(
                r#"{{ (fromJson "{\"a\": 1}").a }} {{ (fromJson "nope").Error | empty }} {{ fromJsonArray "[1,2]" }}"#
            ),
            "1 false [1 2]"
        );
    }

    #[test]
    fn yaml_as_helm_writes_and_reads_it() {
        assert_eq!(
            r(r#"{{ toYaml (dict "b" (list 1 2.5) "a" "yes" "c" (dict "x" 3.0)) }}"#),
            "a: \"yes\"\nb:\n- 1\n- 2.5\nc:\n  x: 3"
        );
        // toYamlPretty is goyaml.v3's: lists indented, floats kept, no folding.
        assert_eq!(
            r(
                r#"{{ toYamlPretty (dict "b" (list 1 2.5 (mulf 1000 1000)) "a" "yes" "c" (dict "x" 3.0) "w" (repeat 20 "word ")) }}"#
            ),
            format!(
                "a: \"yes\"\nb:\n  - 1\n  - 2.5\n  - 1e+06\nc:\n  x: 3\nw: '{}'",
                "word ".repeat(20)
            )
        );
        assert_eq!(
            r(
                r#"{{ (fromYaml "a: 1\nb: [x]").b }} {{ typeOf (fromYaml "num: 1").num }} {{ fromYaml "n: 1" }} {{ fromYamlArray "- a\n- b" }}"#
            ),
            "[x] float64 map[false:1] [a b]"
        );
        assert!(r(r#"{{ (fromYaml "- a").Error }}"#).contains("cannot unmarshal array"));
    }
}
