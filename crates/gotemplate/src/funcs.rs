//! Go's builtin template functions (`text/template/funcs.go`): `and`, `or`
//! (run by the executor, which stops early), `not`, `len`, `index`,
//! `slice`, `print`, `printf`, `println`, `html`, `js`, `urlquery`, `call`,
//! and the comparisons `eq`, `ne`, `lt`, `le`, `gt`, `ge`.

use foldhash::HashMap;
use std::cmp::Ordering;
use std::sync::Arc;

use crate::fmt::{sprint, sprintf, sprintln};
use crate::value::Value;
use crate::{Context, Function};

type Plain = fn(&[Value]) -> Result<Value, String>;

/// Go's builtins, by name.
pub(crate) fn builtins() -> HashMap<String, Function> {
    let plain: [(&str, Plain); 18] = [
        ("not", not),
        ("len", len),
        ("index", index),
        ("slice", slice),
        ("print", |a| Ok(sprint(a).into())),
        ("println", |a| Ok(sprintln(a).into())),
        ("printf", printf),
        ("html", |a| Ok(html_escape(&escaper_text(a)).into())),
        ("js", |a| Ok(js_escape(&escaper_text(a)).into())),
        ("urlquery", |a| Ok(query_escape(&escaper_text(a)).into())),
        ("call", call),
        ("eq", eq),
        ("ne", |a| {
            arity("ne", a, 2)?;
            Ok(Value::Bool(!equal(&a[0], &a[1])?))
        }),
        ("lt", |a| compare_is("lt", a, |o| o == Ordering::Less)),
        ("le", |a| compare_is("le", a, |o| o != Ordering::Greater)),
        ("gt", |a| compare_is("gt", a, |o| o == Ordering::Greater)),
        ("ge", |a| compare_is("ge", a, |o| o != Ordering::Less)),
        ("and", |_| Err("and is evaluated by the executor".into())),
    ];
    let mut map: HashMap<String, Function> = plain
        .into_iter()
        .map(|(name, f)| {
            let function: Function =
                Arc::new(move |_: &mut Context<'_, '_>, args: &[Value]| f(args));
            (name.to_string(), function)
        })
        .collect();
    // `and` and `or` never reach their functions (see `exec`); they are in
    // the map so that templates calling them parse.
    let or = map["and"].clone();
    map.insert("or".into(), or);
    map
}

/// Go's arity error for a function of `want` arguments.
pub(crate) fn arity(name: &str, args: &[Value], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn not(args: &[Value]) -> Result<Value, String> {
    arity("not", args, 1)?;
    Ok(Value::Bool(!args[0].is_true()))
}

fn len(args: &[Value]) -> Result<Value, String> {
    arity("len", args, 1)?;
    let n = match &args[0] {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Object(o) if o.elements().is_some() => o.elements().map_or(0, |e| e.len()),
        Value::Object(o) if o.entries().is_some() => o.entries().map_or(0, |e| e.len()),
        Value::Missing | Value::Nil => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(Value::Int(n as i64))
}

/// An index argument: an integer of any Go integer type.
fn index_of(value: &Value, what: &str) -> Result<i64, String> {
    match value {
        Value::Int(n) | Value::Int64(n) => Ok(*n),
        Value::Missing | Value::Nil => Err(format!("cannot index {what} with nil")),
        other => Err(format!(
            "cannot index {what} with type {}",
            other.type_name()
        )),
    }
}

fn index(args: &[Value]) -> Result<Value, String> {
    let Some((item, keys)) = args.split_first() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    let mut item = item.clone();
    for key in keys {
        item = match &item {
            Value::List(list) => {
                let i = index_of(key, "slice/array")?;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| list.get(i))
                    .cloned()
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            Value::String(s) => {
                let i = index_of(key, "slice/array")?;
                let byte = usize::try_from(i)
                    .ok()
                    .and_then(|i| s.as_bytes().get(i))
                    .ok_or_else(|| format!("index out of range: {i}"))?;
                Value::Int(i64::from(*byte))
            }
            Value::Map(map) => match key {
                Value::String(k) => map.get(k).unwrap_or(Value::Nil),
                Value::Missing | Value::Nil => Value::Nil,
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Missing | Value::Nil => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(args: &[Value]) -> Result<Value, String> {
    let Some((item, bounds)) = args.split_first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    if bounds.len() > 3 {
        return Err(format!("too many slice indexes: {}", bounds.len()));
    }
    let len = match item {
        Value::String(s) => {
            if bounds.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        Value::Missing | Value::Nil => return Err("slice of untyped nil".into()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0usize, len, len];
    for (i, bound) in bounds.iter().enumerate() {
        let n = index_of(bound, "slice/array")?;
        idx[i] = usize::try_from(n)
            .ok()
            .filter(|n| *n <= len)
            .ok_or_else(|| format!("index out of range: {n}"))?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    Ok(match item {
        Value::String(s) => Value::string(
            s.get(idx[0]..idx[1])
                .ok_or("slice splits a character")?
                .to_string(),
        ),
        Value::List(l) => Value::list(l[idx[0]..idx[1]].to_vec()),
        _ => Value::Missing,
    })
}

fn printf(args: &[Value]) -> Result<Value, String> {
    match args.split_first() {
        Some((Value::String(format), rest)) => Ok(sprintf(format, rest).into()),
        Some((other, _)) => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
        None => Err("wrong number of args for printf: want at least 1 got 0".into()),
    }
}

fn call(args: &[Value]) -> Result<Value, String> {
    match args.first() {
        None => Err("wrong number of args for call: want at least 1 got 0".into()),
        Some(Value::Missing | Value::Nil) => Err("call of nil".into()),
        Some(other) => Err(format!("non-function of type {}", other.type_name())),
    }
}

/// The text the escapers work on: one string as is, else the arguments
/// printed by `fmt.Sprint` (nil as `<no value>`).
fn escaper_text(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Missing | Value::Nil => Value::string("<no value>"),
            v => v.clone(),
        })
        .collect();
    sprint(&printable)
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if (c as u32) >= 0x80 && c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The kinds Go's comparisons tell apart.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    String,
    Nil,
    Other,
}

fn kind(value: &Value) -> Kind {
    match value {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        Value::Missing | Value::Nil => Kind::Nil,
        _ => Kind::Other,
    }
}

fn incompatible(a: &Value, b: &Value) -> String {
    format!(
        "incompatible types for comparison: {} and {}",
        a.type_name(),
        b.type_name()
    )
}

/// Go's `eq` of two values.
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Nil || kb == Kind::Nil {
            return Ok(false);
        }
        return Err(incompatible(a, b));
    }
    match ka {
        Kind::Other => Err(format!(
            "non-comparable type {}: {}",
            crate::fmt::print_value(a),
            a.type_name()
        )),
        Kind::Int => Ok(a.as_int() == b.as_int()),
        _ => Ok(a == b),
    }
}

/// `eq x y z…`: whether x equals any of the others.
fn eq(args: &[Value]) -> Result<Value, String> {
    let Some((first, others)) = args.split_first() else {
        return Err("wrong number of args for eq: want at least 1 got 0".into());
    };
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for other in others {
        if equal(first, other)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

/// Go's ordering of two basic values of one kind.
fn order(a: &Value, b: &Value) -> Result<Ordering, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        return Err(incompatible(a, b));
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Equal)),
        _ => match (a.as_int(), b.as_int()) {
            (Some(x), Some(y)) => Ok(x.cmp(&y)),
            _ => Err("invalid type for comparison".into()),
        },
    }
}

fn compare_is(name: &str, args: &[Value], test: fn(Ordering) -> bool) -> Result<Value, String> {
    arity(name, args, 2)?;
    Ok(Value::Bool(test(order(&args[0], &args[1])?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapers_as_go() {
        assert_eq!(
            html_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"c<d>=&\\\n"),
            "a\\'b\\\"c\\u003Cd\\u003E\\u003D\\u0026\\\\\\u000A"
        );
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        // Go prints `<no value>` as a string operand: no space before it.
        assert_eq!(escaper_text(&[Value::Int(1), Value::Nil]), "1<no value>");
    }

    #[test]
    fn comparisons_keep_go_types_apart() {
        assert_eq!(eq(&[Value::Int(1), Value::Int64(1)]), Ok(Value::Bool(true)));
        assert_eq!(
            eq(&[Value::Int(1), Value::Float(1.0)]),
            Err("incompatible types for comparison: int and float64".into())
        );
        assert_eq!(eq(&[Value::Nil, Value::Int(1)]), Ok(Value::Bool(false)));
        assert_eq!(eq(&[Value::Nil, Value::Nil]), Ok(Value::Bool(true)));
        assert_eq!(
            eq(&["a".into(), "b".into(), "a".into()]),
            Ok(Value::Bool(true))
        );
        assert!(eq(&[Value::list(vec![]), Value::list(vec![])]).is_err());
        assert_eq!(
            compare_is("lt", &["a".into(), "b".into()], |o| o == Ordering::Less),
            Ok(Value::Bool(true))
        );
        assert!(
            compare_is("lt", &[Value::Int(1), Value::Float(2.5)], |o| o
                == Ordering::Less)
            .is_err()
        );
        assert!(
            compare_is("lt", &[Value::Bool(true), Value::Bool(false)], |o| o
                == Ordering::Less)
            .is_err()
        );
    }

    #[test]
    fn index_and_slice() {
        let list = Value::list(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(index(&[list.clone(), Value::Int(1)]), Ok("b".into()));
        assert!(index(&[list.clone(), Value::Int(5)]).is_err());
        assert_eq!(
            slice(&[list.clone(), Value::Int(1)]),
            Ok(Value::list(vec!["b".into(), "c".into()]))
        );
        assert_eq!(
            slice(&["hello".into(), Value::Int(1), Value::Int(3)]),
            Ok("el".into())
        );
        assert_eq!(
            index(&[Value::Nil, Value::Int(0)]),
            Err("index of untyped nil".into())
        );
    }
}
