//! `configMapGenerator` and `secretGenerator`: ConfigMaps and Secrets from
//! literals, files and env files, with kustomize's content-hash name suffix.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use gitplane_object::{Map, Object, Value};
use sha2::{Digest, Sha256};

use super::file::{GeneratorArgs, GeneratorOptions};

/// Which kind a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratedKind {
    /// `configMapGenerator`.
    ConfigMap,
    /// `secretGenerator`.
    Secret,
}

impl GeneratedKind {
    /// The object kind.
    pub fn kind(self) -> &'static str {
        match self {
            GeneratedKind::ConfigMap => "ConfigMap",
            GeneratedKind::Secret => "Secret",
        }
    }
}

/// How a generated object joins an existing one of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Must not exist yet (the default).
    Create,
    /// Data and metadata merged into the existing object.
    Merge,
    /// Data replaces the existing object's; metadata merged.
    Replace,
}

impl Behavior {
    /// Parses `behavior:`; empty means create.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "" | "create" => Ok(Behavior::Create),
            "merge" => Ok(Behavior::Merge),
            "replace" => Ok(Behavior::Replace),
            other => Err(format!(
                "unknown generator behavior {other:?} (expected create, merge or replace)"
            )),
        }
    }
}

/// The key/value data of a generator, with its source files already read.
#[derive(Debug, Default)]
pub struct GeneratorData {
    /// Key and raw bytes, in source order.
    pub entries: Vec<(String, Vec<u8>)>,
}

impl GeneratorData {
    /// Adds an entry; keys must be valid ConfigMap keys and unique.
    pub fn add(&mut self, key: &str, value: Vec<u8>) -> Result<(), String> {
        if key.is_empty()
            || key.len() > 253
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(format!(
                "{key:?} is not a valid key name for a ConfigMap or Secret"
            ));
        }
        if self.entries.iter().any(|(k, _)| k == key) {
            return Err(format!(
                "cannot add key {key:?}: another key by that name already exists"
            ));
        }
        self.entries.push((key.to_string(), value));
        Ok(())
    }
}

/// Splits `key=value` (the first `=`), removing one pair of matching quotes
/// around the value, as kustomize reads `literals`.
pub fn parse_literal(source: &str) -> Result<(String, String), String> {
    match source.split_once('=') {
        Some(("", _)) => Err(format!(
            "invalid literal source {source:?}, expected key=value"
        )),
        Some((key, value)) => Ok((key.to_string(), remove_quotes(value).to_string())),
        None => Err(format!(
            "invalid literal source {source:?}, expected key=value"
        )),
    }
}

fn remove_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Splits a `files` entry: `key=path` or `path` (the key is the file name).
pub fn parse_file_source(source: &str) -> Result<(String, String), String> {
    match source.split_once('=') {
        None => {
            let key = source.rsplit('/').next().unwrap_or(source);
            Ok((key.to_string(), source.to_string()))
        }
        Some((key, path)) if key.is_empty() || path.is_empty() || path.contains('=') => {
            Err(format!("invalid file source {source:?}: expected key=path"))
        }
        Some((key, path)) => Ok((key.to_string(), path.to_string())),
    }
}

/// Reads an env file: `KEY=VALUE` lines, `#` comments and blank lines skipped,
/// leading whitespace ignored. A line without `=` would make kustomize read the
/// host environment; gitplane refuses it instead.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if index == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, v),
            None => {
                return Err(format!(
                    "line {}: {line:?} has no '=': kustomize would read it from the host environment, which gitplane never does (write {line}= for an empty value)",
                    index + 1
                ));
            }
        };
        let valid_key = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "-._".contains(c))
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !valid_key {
            return Err(format!(
                "line {}: {key:?} is not a valid key name",
                index + 1
            ));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// Builds the generated object.
pub fn generate_object(
    kind: GeneratedKind,
    args: &GeneratorArgs,
    options: &GeneratorOptions,
    data: GeneratorData,
) -> Object {
    let mut object = Object::with_type("v1", kind.kind(), &args.name);
    if !args.namespace.is_empty() {
        object.set_namespace(&args.namespace);
    }
    for (k, v) in &options.labels {
        object.set_label(k, v);
    }
    for (k, v) in &options.annotations {
        object.set_annotation(k, v);
    }
    let mut text = Map::new();
    let mut binary = Map::new();
    for (key, bytes) in data.entries {
        match (kind, String::from_utf8(bytes)) {
            (GeneratedKind::ConfigMap, Ok(s)) => {
                text.insert(key, Value::String(s));
            }
            (GeneratedKind::ConfigMap, Err(e)) => {
                binary.insert(key, Value::String(encode_base64(&e.into_bytes())));
            }
            (GeneratedKind::Secret, Ok(s)) => {
                text.insert(key, Value::String(encode_base64(s.as_bytes())));
            }
            (GeneratedKind::Secret, Err(e)) => {
                text.insert(key, Value::String(encode_base64(&e.into_bytes())));
            }
        }
    }
    let body = object.body_mut();
    if !text.is_empty() {
        body.insert("data".into(), Value::Object(text));
    }
    if !binary.is_empty() {
        body.insert("binaryData".into(), Value::Object(binary));
    }
    if kind == GeneratedKind::Secret {
        let secret_type = if args.secret_type.is_empty() {
            "Opaque"
        } else {
            &args.secret_type
        };
        body.insert("type".into(), Value::String(secret_type.to_string()));
    }
    if options.immutable {
        body.insert("immutable".into(), Value::Bool(true));
    }
    object
}

/// Base64 as kustomize writes generated values: on one line up to 69
/// characters, otherwise wrapped at 70 characters with every line ending in `\n`.
fn encode_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = BASE64.encode(bytes);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The name suffix kustomize appends to a generated ConfigMap or Secret: a
/// SHA-256 over a JSON encoding of its kind, data (and Secret type), shortened to
/// ten hex characters with vowel-like characters swapped for consonants.
pub fn content_hash(object: &Object) -> String {
    let body = object.body();
    let data_or_empty = |field: &str| match body.get(field) {
        Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()),
        _ => Value::String(String::new()),
    };
    let mut fields: BTreeMap<&str, Value> = BTreeMap::new();
    fields.insert("kind", Value::String(object.kind().to_string()));
    fields.insert("name", Value::String(String::new()));
    fields.insert("data", data_or_empty("data"));
    if object.kind() == "Secret" {
        fields.insert(
            "type",
            body.get("type")
                .cloned()
                .unwrap_or(Value::String(String::new())),
        );
    } else if let Some(Value::Object(m)) = body.get("binaryData")
        && !m.is_empty()
    {
        fields.insert("binaryData", Value::Object(m.clone()));
    }
    let mut json = String::new();
    write_go_json(
        &Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ),
        &mut json,
    );
    let hex = format!("{:x}", Sha256::digest(json.as_bytes()));
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// JSON exactly as Go's `encoding/json` writes it for maps of strings: keys
/// sorted, HTML-sensitive characters and line separators escaped.
fn write_go_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                write_go_json(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::String(s) => write_go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_map(data: &[(&str, &str)]) -> Object {
        let mut d = GeneratorData::default();
        for (k, v) in data {
            d.add(k, v.as_bytes().to_vec()).unwrap();
        }
        let args = GeneratorArgs {
            name: "gen".into(),
            ..GeneratorArgs::default()
        };
        generate_object(
            GeneratedKind::ConfigMap,
            &args,
            &GeneratorOptions::default(),
            d,
        )
    }

    #[test]
    fn hashes_match_kubectl_kustomize() {
        // Values observed from kubectl kustomize v5.5.0.
        assert_eq!(content_hash(&config_map(&[("a", "b")])), "4h2mbtbbt6");
        assert_eq!(
            content_hash(&config_map(&[("a", "yes"), ("b", "2"), ("c", "0755")])),
            "9dc49cbbtc"
        );
        let mut d = GeneratorData::default();
        d.add("b.bin", vec![0xff, 0xfe, 0x00]).unwrap();
        let bin = generate_object(
            GeneratedKind::ConfigMap,
            &GeneratorArgs::default(),
            &GeneratorOptions::default(),
            d,
        );
        assert_eq!(content_hash(&bin), "9kh925g582");
        let mut d = GeneratorData::default();
        d.add("a", b"b".to_vec()).unwrap();
        let secret = generate_object(
            GeneratedKind::Secret,
            &GeneratorArgs::default(),
            &GeneratorOptions::default(),
            d,
        );
        assert_eq!(content_hash(&secret), "k695gkmbtk");
    }

    #[test]
    fn literals_and_files() {
        assert_eq!(parse_literal("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(
            parse_literal("a=\"quoted\"").unwrap(),
            ("a".into(), "quoted".into())
        );
        assert_eq!(
            parse_literal("a='x\"").unwrap(),
            ("a".into(), "'x\"".into())
        );
        assert!(parse_literal("=b").is_err());
        assert!(parse_literal("nokey").is_err());
        assert_eq!(
            parse_file_source("dir/app.properties").unwrap(),
            ("app.properties".into(), "dir/app.properties".into())
        );
        assert_eq!(
            parse_file_source("k=dir/f").unwrap(),
            ("k".into(), "dir/f".into())
        );
    }

    #[test]
    fn env_files() {
        let kv = parse_env_file("\u{feff}# c\n\n  A=1\nB=two=2\r\nC=\n").unwrap();
        assert_eq!(
            kv,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two=2".into()),
                ("C".into(), "".into())
            ]
        );
        let err = parse_env_file("HOME\n").unwrap_err();
        assert!(err.contains("host environment"), "{err}");
        assert!(parse_env_file("1X=a\n").is_err());
    }

    #[test]
    fn go_json_escapes_like_go() {
        let mut out = String::new();
        write_go_string("<a&b>\u{8}", &mut out);
        assert_eq!(out, "\"\\u003ca\\u0026b\\u003e\\u0008\"");
    }
}
