//! Kyverno's JMESPath functions (its `pkg/engine/jmespath`), on top of the
//! JMESPath standard library: strings, regular expressions, wildcards and
//! label selectors, encodings, JSON/YAML parsing, objects and lists,
//! arithmetic, semantic versions and times.
//!
//! Not here yet (a policy using one fails with "unknown function"):
//! `time_parse`, `time_to_cron`, `x509_decode`, `image_normalize`, `random`,
//! `is_external_url`, Go time layouts other than RFC 3339 in `time_since`,
//! and quantities or durations as arithmetic operands (numbers only).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use gitplane_object::{LoadOptions, Syntax, Value, parse_values};
use jmespath::functions::{ArgumentType, CustomFunction, Signature};
use jmespath::{Context as JpContext, ErrorReason, JmespathError, Rcvar, Runtime, Variable};
use sha2::Digest;

use super::values::wildcard_match;

/// Largest regex a function may compile, in bytes of compiled program
/// (hostile input).
const MAX_REGEX: usize = 1 << 20;

type Body = dyn Fn(&[Rcvar], &mut JpContext<'_>) -> Result<Rcvar, JmespathError> + Sync + Send;

fn register(runtime: &mut Runtime, name: &str, args: Vec<ArgumentType>, body: Box<Body>) {
    runtime.register_function(
        name,
        Box::new(CustomFunction::new(Signature::new(args, None), body)),
    );
}

fn error(ctx: &JpContext<'_>, message: String) -> JmespathError {
    JmespathError::new(ctx.expression, ctx.offset, ErrorReason::Parse(message))
}

fn text(args: &[Rcvar], i: usize) -> String {
    match args.get(i).map(|a| &**a) {
        Some(Variable::String(s)) => s.clone(),
        Some(Variable::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn number(args: &[Rcvar], i: usize) -> f64 {
    args.get(i).and_then(|a| a.as_number()).unwrap_or(0.0)
}

fn var(v: Variable) -> Result<Rcvar, JmespathError> {
    Ok(Rcvar::new(v))
}

fn string(s: String) -> Result<Rcvar, JmespathError> {
    var(Variable::String(s))
}

fn boolean(b: bool) -> Result<Rcvar, JmespathError> {
    var(Variable::Bool(b))
}

/// A number as JMESPath holds it: an integer where it is one.
fn num(ctx: &JpContext<'_>, f: f64) -> Result<Rcvar, JmespathError> {
    let json = if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| error(ctx, format!("{f} is not a number")))?
    };
    from_json(ctx, json)
}

fn from_json(ctx: &JpContext<'_>, value: Value) -> Result<Rcvar, JmespathError> {
    Variable::from_serializable(value)
        .map(Rcvar::new)
        .map_err(|e| error(ctx, e.to_string()))
}

fn regex(
    ctx: &JpContext<'_>,
    pattern: &str,
    function: &str,
) -> Result<regex::Regex, JmespathError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX)
        .build()
        .map_err(|e| error(ctx, format!("{function}: {e}")))
}

use ArgumentType::{Any, Array, Number, Object, String as Str};

/// Registers every Kyverno function gitplane has.
pub(super) fn register_all(runtime: &mut Runtime) {
    register_strings(runtime);
    register_regex_and_matching(runtime);
    register_encodings(runtime);
    register_objects(runtime);
    register_arithmetic(runtime);
    register_semver(runtime);
    register_times(runtime);
}

fn register_strings(runtime: &mut Runtime) {
    register(
        runtime,
        "to_upper",
        vec![Str],
        Box::new(|a, _| string(text(a, 0).to_uppercase())),
    );
    register(
        runtime,
        "to_lower",
        vec![Str],
        Box::new(|a, _| string(text(a, 0).to_lowercase())),
    );
    register(
        runtime,
        "equal_fold",
        vec![Str, Str],
        Box::new(|a, _| boolean(text(a, 0).to_lowercase() == text(a, 1).to_lowercase())),
    );
    register(
        runtime,
        "compare",
        vec![Str, Str],
        Box::new(|a, ctx| num(ctx, text(a, 0).cmp(&text(a, 1)) as i8 as f64)),
    );
    register(
        runtime,
        "replace_all",
        vec![Str, Str, Str],
        Box::new(|a, _| string(text(a, 0).replace(&text(a, 1), &text(a, 2)))),
    );
    register(
        runtime,
        "replace",
        vec![Str, Str, Str, Number],
        Box::new(|a, _| {
            let (s, from, to, n) = (text(a, 0), text(a, 1), text(a, 2), number(a, 3));
            string(if n < 0.0 {
                s.replace(&from, &to)
            } else {
                s.replacen(&from, &to, n as usize)
            })
        }),
    );
    register(
        runtime,
        "split",
        vec![Str, Str],
        Box::new(|a, _| {
            let parts = text(a, 0)
                .split(text(a, 1).as_str())
                .map(|p| Rcvar::new(Variable::String(p.to_string())))
                .collect();
            var(Variable::Array(parts))
        }),
    );
    register(
        runtime,
        "trim",
        vec![Str, Str],
        Box::new(|a, _| {
            let cutset: Vec<char> = text(a, 1).chars().collect();
            string(text(a, 0).trim_matches(cutset.as_slice()).to_string())
        }),
    );
    register(
        runtime,
        "trim_prefix",
        vec![Str, Str],
        Box::new(|a, _| {
            let (s, prefix) = (text(a, 0), text(a, 1));
            string(s.strip_prefix(prefix.as_str()).unwrap_or(&s).to_string())
        }),
    );
    register(
        runtime,
        "truncate",
        vec![Str, Number],
        Box::new(|a, _| {
            string(
                text(a, 0)
                    .chars()
                    .take(number(a, 1).max(0.0) as usize)
                    .collect(),
            )
        }),
    );
}

fn register_regex_and_matching(runtime: &mut Runtime) {
    let string_or_number = || ArgumentType::Union(vec![Str, Number]);
    register(
        runtime,
        "regex_match",
        vec![Str, string_or_number()],
        Box::new(|a, ctx| boolean(regex(ctx, &text(a, 0), "regex_match")?.is_match(&text(a, 1)))),
    );
    register(
        runtime,
        "regex_replace_all",
        vec![Str, string_or_number(), string_or_number()],
        Box::new(|a, ctx| {
            let re = regex(ctx, &text(a, 0), "regex_replace_all")?;
            string(
                re.replace_all(&text(a, 1), text(a, 2).as_str())
                    .into_owned(),
            )
        }),
    );
    register(
        runtime,
        "regex_replace_all_literal",
        vec![Str, string_or_number(), string_or_number()],
        Box::new(|a, ctx| {
            let re = regex(ctx, &text(a, 0), "regex_replace_all_literal")?;
            let replacement = text(a, 2);
            string(
                re.replace_all(&text(a, 1), regex::NoExpand(&replacement))
                    .into_owned(),
            )
        }),
    );
    register(
        runtime,
        "pattern_match",
        vec![Str, string_or_number()],
        Box::new(|a, _| boolean(wildcard_match(&text(a, 0), &text(a, 1)))),
    );
    register(
        runtime,
        "label_match",
        vec![Object, Object],
        Box::new(|a, _| {
            let (Some(wanted), Some(labels)) = (a[0].as_object(), a[1].as_object()) else {
                return boolean(false);
            };
            boolean(wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
        }),
    );
}

fn register_encodings(runtime: &mut Runtime) {
    register(
        runtime,
        "base64_encode",
        vec![Str],
        Box::new(|a, _| string(BASE64.encode(text(a, 0)))),
    );
    register(
        runtime,
        "base64_decode",
        vec![Str],
        Box::new(|a, ctx| {
            let bytes = BASE64
                .decode(text(a, 0))
                .map_err(|e| error(ctx, format!("base64_decode: {e}")))?;
            string(String::from_utf8_lossy(&bytes).into_owned())
        }),
    );
    register(
        runtime,
        "sha256",
        vec![Str],
        Box::new(|a, _| {
            let digest = sha2::Sha256::digest(text(a, 0).as_bytes());
            string(digest.iter().map(|b| format!("{b:02x}")).collect())
        }),
    );
    register(
        runtime,
        "path_canonicalize",
        vec![Str],
        Box::new(|a, _| string(clean_path(&text(a, 0)))),
    );
    register(
        runtime,
        "parse_json",
        vec![Str],
        Box::new(|a, ctx| {
            let value: Value = serde_json::from_str(&text(a, 0))
                .map_err(|e| error(ctx, format!("parse_json: {e}")))?;
            from_json(ctx, value)
        }),
    );
    register(
        runtime,
        "parse_yaml",
        vec![Str],
        Box::new(|a, ctx| {
            let docs = parse_values(
                text(a, 0).as_bytes(),
                "parse_yaml",
                Syntax::Yaml,
                &LoadOptions::default(),
            )
            .map_err(|e| error(ctx, format!("parse_yaml: {e}")))?;
            from_json(
                ctx,
                docs.into_iter()
                    .next()
                    .map(|(v, _)| v)
                    .unwrap_or(Value::Null),
            )
        }),
    );
}

/// A path as Go's `filepath.Clean` writes it.
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn register_objects(runtime: &mut Runtime) {
    register(
        runtime,
        "items",
        vec![ArgumentType::Union(vec![Object, Array]), Str, Str],
        Box::new(|a, ctx| {
            let (key, val) = (text(a, 1), text(a, 2));
            let pairs: Vec<(Value, Value)> = match &*a[0] {
                Variable::Object(map) => map
                    .iter()
                    .map(|(k, v)| Ok((Value::from(k.clone()), to_json(ctx, v)?)))
                    .collect::<Result<_, JmespathError>>()?,
                Variable::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Ok((Value::from(i), to_json(ctx, v)?)))
                    .collect::<Result<_, JmespathError>>()?,
                _ => Vec::new(),
            };
            let list: Vec<Value> = pairs
                .into_iter()
                .map(|(k, v)| {
                    let mut entry = serde_json::Map::new();
                    entry.insert(key.clone(), k);
                    entry.insert(val.clone(), v);
                    Value::Object(entry)
                })
                .collect();
            from_json(ctx, Value::Array(list))
        }),
    );
    register(
        runtime,
        "object_from_lists",
        vec![Array, Array],
        Box::new(|a, _| {
            let (Some(keys), Some(values)) = (a[0].as_array(), a[1].as_array()) else {
                return var(Variable::Null);
            };
            let object: BTreeMap<String, Rcvar> = keys
                .iter()
                .enumerate()
                .filter_map(|(i, k)| {
                    let value = values
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Rcvar::new(Variable::Null));
                    k.as_string().map(|k| (k.clone(), value))
                })
                .collect();
            var(Variable::Object(object))
        }),
    );
    register(
        runtime,
        "lookup",
        vec![
            ArgumentType::Union(vec![Object, Array]),
            ArgumentType::Union(vec![Str, Number]),
        ],
        Box::new(|a, _| {
            let found = match (&*a[0], &*a[1]) {
                (Variable::Object(map), Variable::String(k)) => map.get(k).cloned(),
                (Variable::Array(items), Variable::Number(n)) => {
                    n.as_u64().and_then(|i| items.get(i as usize).cloned())
                }
                _ => None,
            };
            Ok(found.unwrap_or_else(|| Rcvar::new(Variable::Null)))
        }),
    );
}

/// The operands of a `divide` whose result is a plain number, as
/// Kyverno's: two numbers, two quantities (`divide('300Mi', '100Mi')` is
/// 3) or two durations.
fn ratio_operands(x: &Rcvar, y: &Rcvar) -> Option<(f64, f64)> {
    use super::values::{parse_duration, parse_quantity};
    match (&**x, &**y) {
        (Variable::Number(_), Variable::Number(_)) => Some((x.as_number()?, y.as_number()?)),
        (Variable::String(x), Variable::String(y)) => parse_quantity(x)
            .zip(parse_quantity(y))
            .or_else(|| parse_duration(x).zip(parse_duration(y))),
        _ => None,
    }
}

fn to_json(ctx: &JpContext<'_>, v: &Rcvar) -> Result<Value, JmespathError> {
    serde_json::to_value(&**v).map_err(|e| error(ctx, e.to_string()))
}

/// An arithmetic operation; `None` for operands it refuses.
type Arithmetic = fn(f64, f64) -> Option<f64>;

fn register_arithmetic(runtime: &mut Runtime) {
    let binary: [(&str, Arithmetic); 4] = [
        ("add", |x, y| Some(x + y)),
        ("subtract", |x, y| Some(x - y)),
        ("multiply", |x, y| Some(x * y)),
        ("modulo", |x, y| {
            (y != 0.0 && x.fract() == 0.0 && y.fract() == 0.0).then(|| x % y)
        }),
    ];
    for (name, op) in binary {
        register(
            runtime,
            name,
            vec![Number, Number],
            Box::new(move |a, ctx| {
                let result = op(number(a, 0), number(a, 1)).ok_or_else(|| {
                    error(
                        ctx,
                        format!("{name}: invalid operands (zero divisor, or not integers)"),
                    )
                })?;
                num(ctx, result)
            }),
        );
    }
    register(
        runtime,
        "divide",
        vec![Any, Any],
        Box::new(|a, ctx| {
            let (x, y) = ratio_operands(&a[0], &a[1]).ok_or_else(|| {
                error(
                    ctx,
                    "divide: operands must be two numbers, two quantities or two durations"
                        .to_string(),
                )
            })?;
            if y == 0.0 {
                return Err(error(ctx, "divide: zero divisor".to_string()));
            }
            num(ctx, x / y)
        }),
    );
    register(
        runtime,
        "sum",
        vec![Array],
        Box::new(|a, ctx| {
            let total = a[0]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_number())
                .sum();
            num(ctx, total)
        }),
    );
    register(
        runtime,
        "round",
        vec![Number, Number],
        Box::new(|a, ctx| {
            let scale = 10f64.powi(number(a, 1) as i32);
            num(ctx, (number(a, 0) * scale).round() / scale)
        }),
    );
}

/// `semver_compare(version, range)`: whether the version is in the range,
/// written as blang/semver ranges are (`>=1.2.0 <2.0.0 || 3.x` without
/// the `x`): comparators joined by spaces (all must hold) and `||` (any).
fn register_semver(runtime: &mut Runtime) {
    register(
        runtime,
        "semver_compare",
        vec![Str, Str],
        Box::new(|a, ctx| {
            let version = semver::Version::parse(text(a, 0).trim_start_matches('v'))
                .map_err(|e| error(ctx, format!("semver_compare: {e}")))?;
            let range = text(a, 1);
            let mut any = false;
            for clause in range.split("||") {
                let mut all = true;
                for comparator in clause.split_whitespace() {
                    all &= comparator_holds(&version, comparator).ok_or_else(|| {
                        error(ctx, format!("semver_compare: bad range {range:?}"))
                    })?;
                }
                any |= all;
            }
            boolean(any)
        }),
    );
}

fn comparator_holds(version: &semver::Version, comparator: &str) -> Option<bool> {
    let split = comparator.find(|c: char| c.is_ascii_digit())?;
    let (op, wanted) = comparator.split_at(split);
    let wanted = semver::Version::parse(wanted).ok()?;
    let order = version.cmp_precedence(&wanted);
    use std::cmp::Ordering::{Equal, Greater, Less};
    Some(match op {
        "" | "=" | "==" => order == Equal,
        "!" | "!=" => order != Equal,
        ">" => order == Greater,
        ">=" => order != Less,
        "<" => order == Less,
        "<=" => order != Greater,
        _ => return None,
    })
}

fn register_times(runtime: &mut Runtime) {
    let time = |ctx: &JpContext<'_>, s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| error(ctx, format!("{s:?} is not an RFC 3339 time: {e}")))
    };
    register(
        runtime,
        "time_now_utc",
        Vec::new(),
        Box::new(|_, _| {
            string(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }),
    );
    register(
        runtime,
        "time_before",
        vec![Str, Str],
        Box::new(move |a, ctx| boolean(time(ctx, &text(a, 0))? < time(ctx, &text(a, 1))?)),
    );
    register(
        runtime,
        "time_after",
        vec![Str, Str],
        Box::new(move |a, ctx| boolean(time(ctx, &text(a, 0))? > time(ctx, &text(a, 1))?)),
    );
    register(
        runtime,
        "time_between",
        vec![Str, Str, Str],
        Box::new(move |a, ctx| {
            let t = time(ctx, &text(a, 0))?;
            boolean(time(ctx, &text(a, 1))? < t && t < time(ctx, &text(a, 2))?)
        }),
    );
    register(
        runtime,
        "time_add",
        vec![Str, Str],
        Box::new(move |a, ctx| {
            let seconds = super::values::parse_duration(&text(a, 1))
                .ok_or_else(|| error(ctx, format!("{:?} is not a duration", text(a, 1))))?;
            let shifted =
                time(ctx, &text(a, 0))? + chrono::Duration::milliseconds((seconds * 1000.0) as i64);
            string(shifted.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }),
    );
    register(
        runtime,
        "time_utc",
        vec![Str],
        Box::new(move |a, ctx| {
            let t = time(ctx, &text(a, 0))?.with_timezone(&chrono::Utc);
            string(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }),
    );
    register(
        runtime,
        "time_truncate",
        vec![Str, Str],
        Box::new(move |a, ctx| {
            let step = super::values::parse_duration(&text(a, 1))
                .filter(|s| *s > 0.0)
                .ok_or_else(|| {
                    error(ctx, format!("{:?} is not a positive duration", text(a, 1)))
                })?;
            let t = time(ctx, &text(a, 0))?.with_timezone(&chrono::Utc);
            let step_ms = (step * 1000.0) as i64;
            let ms = t.timestamp_millis();
            let truncated = chrono::DateTime::from_timestamp_millis(ms - ms.rem_euclid(step_ms))
                .ok_or_else(|| error(ctx, "time_truncate: out of range".to_string()))?;
            string(truncated.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }),
    );
    // time_since(layout, start, end): only RFC 3339 (layout ""); an empty
    // end is now.
    register(
        runtime,
        "time_since",
        vec![Str, Str, Str],
        Box::new(move |a, ctx| {
            if !text(a, 0).is_empty() {
                return Err(error(
                    ctx,
                    "time_since: only RFC 3339 times (layout \"\") are supported".to_string(),
                ));
            }
            let start = time(ctx, &text(a, 1))?;
            let end = match text(a, 2).as_str() {
                "" => chrono::Utc::now().fixed_offset(),
                other => time(ctx, other)?,
            };
            string(go_duration((end - start).num_milliseconds()))
        }),
    );
    register(
        runtime,
        "time_diff",
        vec![Str, Str],
        Box::new(move |a, ctx| {
            let diff = time(ctx, &text(a, 1))? - time(ctx, &text(a, 0))?;
            string(go_duration(diff.num_milliseconds()))
        }),
    );
}

/// A duration as Go's `time.Duration.String` writes it (`1h2m3s`, `1.5s`,
/// `0s`), from milliseconds.
fn go_duration(millis: i64) -> String {
    if millis == 0 {
        return "0s".to_string();
    }
    let sign = if millis < 0 { "-" } else { "" };
    let millis = millis.unsigned_abs();
    if millis < 1000 {
        return format!("{sign}{millis}ms");
    }
    let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        format!(
            "{}s",
            format!("{:.3}", rest as f64 / 1000.0).trim_end_matches('0')
        )
    };
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expression: &str) -> Value {
        let mut runtime = Runtime::new();
        runtime.register_builtin_functions();
        register_all(&mut runtime);
        let compiled = runtime.compile(expression).unwrap();
        let data = Variable::from_serializable(serde_json::json!({
            "labels": {"app": "web", "team": "a"},
            "m": {"b": 2, "a": 1}
        }))
        .unwrap();
        serde_json::to_value(&*compiled.search(data).unwrap()).unwrap()
    }

    #[test]
    fn kyverno_functions() {
        use serde_json::json;
        for (expression, expected) in [
            ("compare('a', 'b')", json!(-1)),
            ("replace('aaa', 'a', 'b', `2`)", json!("bba")),
            ("trim_prefix('v1.2', 'v')", json!("1.2")),
            (
                "regex_replace_all('([a-z])-([0-9])', 'a-1 b-2', '${2}${1}')",
                json!("1a 2b"),
            ),
            (
                "regex_replace_all_literal('[0-9]', 'a1b2', '$')",
                json!("a$b$"),
            ),
            ("pattern_match('nginx:*', 'nginx:1.2')", json!(true)),
            ("label_match(`{\"app\": \"web\"}`, labels)", json!(true)),
            ("label_match(`{\"app\": \"db\"}`, labels)", json!(false)),
            (
                "base64_decode(base64_encode('hi there'))",
                json!("hi there"),
            ),
            (
                "sha256('abc')",
                json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ),
            ("path_canonicalize('/a/./b/../c//d/')", json!("/a/c/d")),
            ("path_canonicalize('../a/..')", json!("..")),
            ("parse_json('{\"a\": [1, 2]}').a[1]", json!(2)),
            ("parse_yaml('a:\n  b: c').a.b", json!("c")),
            (
                "items(m, 'key', 'value')",
                json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}]),
            ),
            (
                "object_from_lists(['x', 'y'], [`1`, `2`])",
                json!({"x": 1, "y": 2}),
            ),
            ("lookup(m, 'b')", json!(2)),
            ("add(`1`, `2`)", json!(3)),
            ("divide(`7`, `2`)", json!(3.5)),
            ("divide('300Mi', '100Mi')", json!(3)),
            ("divide('1h', '30m')", json!(2)),
            ("modulo(`7`, `2`)", json!(1)),
            ("sum([`1`, `2.5`])", json!(3.5)),
            ("round(`2.71828`, `2`)", json!(2.72)),
            ("semver_compare('1.10.0', '>=1.2.0 <2.0.0')", json!(true)),
            ("semver_compare('2.1.0', '<2.0.0 || >=3.0.0')", json!(false)),
            (
                "time_before('2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z')",
                json!(true),
            ),
            (
                "time_add('2024-01-01T00:00:00Z', '1h30m')",
                json!("2024-01-01T01:30:00Z"),
            ),
            (
                "time_diff('2024-01-01T00:00:00Z', '2024-01-01T01:02:03Z')",
                json!("1h2m3s"),
            ),
        ] {
            assert_eq!(eval(expression), expected, "{expression}");
        }
    }
}
