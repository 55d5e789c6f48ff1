//! Sprig's lists, dicts, defaults and type functions.

use std::collections::BTreeMap;

use super::{Plain, boolean, exactly, int, is_empty, string, strval, wrong_type};
use crate::value::{Dict, Value};

/// Longest list `until`, `untilStep` and `seq` make.
const MAX_LIST: i64 = 1_000_000;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("list", |a| Ok(Value::list(a.to_vec()))),
    ("tuple", |a| Ok(Value::list(a.to_vec()))),
    ("dict", dict),
    ("get", get),
    ("set", set),
    ("unset", unset),
    ("hasKey", has_key),
    ("keys", keys),
    ("values", values),
    ("pluck", pluck),
    ("pick", |a| pick_or_omit("pick", a, true)),
    ("omit", |a| pick_or_omit("omit", a, false)),
    ("merge", |a| merge("merge", a, false)),
    ("mustMerge", |a| merge("mustMerge", a, false)),
    ("mergeOverwrite", |a| merge("mergeOverwrite", a, true)),
    ("mustMergeOverwrite", |a| {
        merge("mustMergeOverwrite", a, true)
    }),
    ("deepCopy", |a| {
        Ok(exactly::<1>("deepCopy", a)?[0].deep_copy())
    }),
    ("mustDeepCopy", |a| {
        Ok(exactly::<1>("mustDeepCopy", a)?[0].deep_copy())
    }),
    ("dig", dig),
    ("first", |a| pick_one("first", a, |l| l.first().cloned())),
    ("mustFirst", |a| {
        pick_one("first", a, |l| l.first().cloned())
    }),
    ("last", |a| pick_one("last", a, |l| l.last().cloned())),
    ("mustLast", |a| pick_one("last", a, |l| l.last().cloned())),
    ("rest", |a| {
        sub_list("rest", a, |l| l.get(1..).map(<[Value]>::to_vec))
    }),
    ("mustRest", |a| {
        sub_list("rest", a, |l| l.get(1..).map(<[Value]>::to_vec))
    }),
    ("initial", |a| {
        sub_list("initial", a, |l| {
            l.len().checked_sub(1).map(|n| l[..n].to_vec())
        })
    }),
    ("mustInitial", |a| {
        sub_list("initial", a, |l| {
            l.len().checked_sub(1).map(|n| l[..n].to_vec())
        })
    }),
    ("reverse", |a| {
        sub_list("reverse", a, |l| Some(l.iter().rev().cloned().collect()))
    }),
    ("mustReverse", |a| {
        sub_list("reverse", a, |l| Some(l.iter().rev().cloned().collect()))
    }),
    ("uniq", |a| sub_list("uniq", a, |l| Some(uniq(l)))),
    ("mustUniq", |a| sub_list("uniq", a, |l| Some(uniq(l)))),
    ("compact", |a| {
        sub_list("compact", a, |l| {
            Some(l.iter().filter(|v| !is_empty(v)).cloned().collect())
        })
    }),
    ("mustCompact", |a| {
        sub_list("compact", a, |l| {
            Some(l.iter().filter(|v| !is_empty(v)).cloned().collect())
        })
    }),
    ("append", |a| push("append", a, false)),
    ("push", |a| push("push", a, false)),
    ("mustAppend", |a| push("append", a, false)),
    ("mustPush", |a| push("push", a, false)),
    ("prepend", |a| push("prepend", a, true)),
    ("mustPrepend", |a| push("prepend", a, true)),
    ("concat", concat),
    ("without", without),
    ("mustWithout", without),
    ("has", has),
    ("mustHas", has),
    ("slice", slice),
    ("mustSlice", slice),
    ("chunk", chunk),
    ("mustChunk", chunk),
    ("sortAlpha", |a| {
        // Anything but a list, nil too, is a list of itself as a string.
        let [list] = exactly::<1>("sortAlpha", a)?;
        let mut items = match list {
            Value::List(_) => strslice(list),
            other => vec![strval(other)],
        };
        items.sort();
        Ok(strings_value(items))
    }),
    ("toStrings", |a| {
        Ok(strings_value(strslice(&exactly::<1>("toStrings", a)?[0])))
    }),
    ("join", |a| {
        let [sep, list] = exactly::<2>("join", a)?;
        Ok(strslice(list).join(string(sep)?).into())
    }),
    ("until", |a| {
        let n = int(&exactly::<1>("until", a)?[0])?;
        until_step(0, n, if n >= 0 { 1 } else { -1 })
    }),
    ("untilStep", |a| {
        let [start, stop, step] = exactly::<3>("untilStep", a)?;
        until_step(int(start)?, int(stop)?, int(step)?)
    }),
    ("seq", seq),
    ("default", default),
    ("empty", |a| {
        Ok(Value::Bool(is_empty(&exactly::<1>("empty", a)?[0])))
    }),
    ("coalesce", |a| {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    }),
    ("all", |a| Ok(Value::Bool(a.iter().all(|v| !is_empty(v))))),
    ("any", |a| Ok(Value::Bool(a.iter().any(|v| !is_empty(v))))),
    ("ternary", |a| {
        let [yes, no, condition] = exactly::<3>("ternary", a)?;
        Ok(if boolean(condition)? {
            yes.clone()
        } else {
            no.clone()
        })
    }),
    ("typeOf", |a| {
        Ok(exactly::<1>("typeOf", a)?[0].type_name().into())
    }),
    ("typeIs", |a| {
        let [target, v] = exactly::<2>("typeIs", a)?;
        Ok(Value::Bool(string(target)? == v.type_name()))
    }),
    ("typeIsLike", |a| {
        let [target, v] = exactly::<2>("typeIsLike", a)?;
        let target = string(target)?;
        Ok(Value::Bool(
            target == v.type_name() || format!("*{target}") == v.type_name(),
        ))
    }),
    ("kindOf", |a| {
        Ok(kind_of(&exactly::<1>("kindOf", a)?[0]).into())
    }),
    ("kindIs", |a| {
        let [target, v] = exactly::<2>("kindIs", a)?;
        Ok(Value::Bool(string(target)? == kind_of(v)))
    }),
    ("deepEqual", |a| {
        let [x, y] = exactly::<2>("deepEqual", a)?;
        Ok(Value::Bool(x == y))
    }),
];

/// Go's `reflect.Kind` names.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Missing | Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Int64(_) => "int64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(_) => "struct",
    }
}

/// The functions above whose parameters are `map[string]interface {}` in
/// Sprig, and which ones (argument indexes; `usize::MAX`: the variadic
/// rest).
pub(crate) const MAP_PARAMETERS: &[(&str, std::ops::Range<usize>)] = &[
    ("hasKey", 0..1),
    ("get", 0..1),
    ("set", 0..1),
    ("unset", 0..1),
    ("pick", 0..1),
    ("omit", 0..1),
    ("values", 0..1),
    ("keys", 0..usize::MAX),
    ("merge", 0..usize::MAX),
    ("mustMerge", 0..usize::MAX),
    ("mergeOverwrite", 0..usize::MAX),
    ("mustMergeOverwrite", 0..usize::MAX),
    ("pluck", 1..usize::MAX),
];

/// A `map[string]interface {}` parameter; nil is an empty map, as Go
/// passes nil for a map-typed parameter (`$s := (lookup …).data` then
/// `hasKey $s "k"`; a nil read from a field directly is refused before
/// the call, see [`MAP_PARAMETERS`]).
fn dict_arg(value: &Value) -> Result<Dict, String> {
    match value {
        Value::Map(d) => Ok(d.clone()),
        Value::Nil | Value::Missing => Ok(Dict::new(Default::default())),
        other => Err(wrong_type("map[string]interface {}", other)),
    }
}

/// A map parameter that is written to: nil is Go's nil map, which cannot
/// take an entry.
fn writable_dict_arg(value: &Value) -> Result<Dict, String> {
    if value.is_nil() {
        return Err("assignment to entry in nil map".into());
    }
    dict_arg(value)
}

/// A list argument of Sprig's list functions (any slice). Sprig asks nil
/// for its type's kind, which panics in Go; the template reports the
/// panic as the call's error.
fn list_arg<'a>(name: &str, value: &'a Value) -> Result<&'a [Value], String> {
    match value {
        Value::List(l) => Ok(l),
        Value::Missing | Value::Nil => Err(NIL_KIND_PANIC.into()),
        other => Err(format!("Cannot find {name} on type {}", kind_of(other))),
    }
}

/// Go's panic when Sprig asks nil for the kind of its type.
const NIL_KIND_PANIC: &str = "runtime error: invalid memory address or nil pointer dereference";

/// Sprig's `strslice`: each non-nil element as a string; a scalar is a
/// one-element list.
fn strslice(value: &Value) -> Vec<String> {
    match value {
        Value::List(items) => items.iter().filter(|v| !v.is_nil()).map(strval).collect(),
        Value::Missing | Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn strings_value(items: Vec<String>) -> Value {
    Value::list(items.into_iter().map(Value::from).collect())
}

fn dict(args: &[Value]) -> Result<Value, String> {
    let mut map = BTreeMap::new();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_else(|| "".into());
        map.insert(strval(&pair[0]), value);
    }
    Ok(Value::map(map))
}

fn get(args: &[Value]) -> Result<Value, String> {
    let [d, key] = exactly::<2>("get", args)?;
    Ok(dict_arg(d)?.get(string(key)?).unwrap_or_else(|| "".into()))
}

fn set(args: &[Value]) -> Result<Value, String> {
    let [d, key, value] = exactly::<3>("set", args)?;
    writable_dict_arg(d)?.insert(string(key)?.to_string(), value.clone());
    Ok(d.clone())
}

fn unset(args: &[Value]) -> Result<Value, String> {
    let [d, key] = exactly::<2>("unset", args)?;
    dict_arg(d)?.remove(string(key)?);
    Ok(d.clone())
}

fn has_key(args: &[Value]) -> Result<Value, String> {
    let [d, key] = exactly::<2>("hasKey", args)?;
    Ok(Value::Bool(dict_arg(d)?.contains_key(string(key)?)))
}

/// `keys`: the keys of every map, sorted (Go's order is random; sorted is
/// one of its orders and the same every time).
fn keys(args: &[Value]) -> Result<Value, String> {
    let mut all = Vec::new();
    for d in args {
        all.extend(dict_arg(d)?.keys());
    }
    Ok(strings_value(all))
}

fn values(args: &[Value]) -> Result<Value, String> {
    let [d] = exactly::<1>("values", args)?;
    Ok(Value::list(dict_arg(d)?.entries().into_values().collect()))
}

fn pluck(args: &[Value]) -> Result<Value, String> {
    let Some((name, dicts)) = args.split_first() else {
        return Err("wrong number of args for pluck: want at least 1 got 0".into());
    };
    let name = string(name)?;
    let mut out = Vec::new();
    for d in dicts {
        if let Some(v) = dict_arg(d)?.get(name) {
            out.push(v);
        }
    }
    Ok(Value::list(out))
}

fn pick_or_omit(name: &str, args: &[Value], keep: bool) -> Result<Value, String> {
    let (d, names) = super::first_and_rest(name, args)?;
    let names: Vec<&str> = names.iter().map(string).collect::<Result<_, _>>()?;
    let picked = dict_arg(d)?
        .entries()
        .into_iter()
        .filter(|(k, _)| names.contains(&k.as_str()) == keep)
        .collect();
    Ok(Value::map(picked))
}

/// `merge`/`mergeOverwrite` (mergo): deep, into the first map, which is
/// changed in place and returned.
fn merge(name: &str, args: &[Value], overwrite: bool) -> Result<Value, String> {
    let (dst, sources) = super::first_and_rest(name, args)?;
    let target = writable_dict_arg(dst)?;
    for source in sources {
        merge_into(&target, &dict_arg(source)?, overwrite, 0)?;
    }
    Ok(dst.clone())
}

fn merge_into(dst: &Dict, src: &Dict, overwrite: bool, depth: usize) -> Result<(), String> {
    if depth > 100 {
        return Err("maps nested too deeply to merge".into());
    }
    for (key, value) in src.entries() {
        match (dst.get(&key), &value) {
            (Some(Value::Map(d)), Value::Map(s)) if !d.same(s) => {
                merge_into(&d, s, overwrite, depth + 1)?;
            }
            (Some(existing), _) if !is_empty(&existing) => {
                if overwrite && !is_empty(&value) {
                    dst.insert(key, value);
                }
            }
            _ => dst.insert(key, value),
        }
    }
    Ok(())
}

/// `dig "a" "b" default $dict`.
fn dig(args: &[Value]) -> Result<Value, String> {
    if args.len() < 3 {
        return Err(format!(
            "wrong number of args for dig: want at least 3 got {}",
            args.len()
        ));
    }
    let (d, rest) = args.split_last().unwrap_or((&Value::Nil, &[]));
    let (default, path) = rest.split_last().unwrap_or((&Value::Nil, &[]));
    if d.is_nil() {
        // Sprig's dig converts its map argument from interface {}.
        return Err(
            "interface conversion: interface {} is nil, not map[string]interface {}".into(),
        );
    }
    let mut current = dict_arg(d)?;
    for (i, key) in path.iter().enumerate() {
        let Some(next) = current.get(string(key)?) else {
            return Ok(default.clone());
        };
        if i + 1 == path.len() {
            return Ok(next);
        }
        match next {
            Value::Map(m) => current = m,
            _ => return Ok(default.clone()),
        }
    }
    Ok(default.clone())
}

fn pick_one(name: &str, args: &[Value], f: fn(&[Value]) -> Option<Value>) -> Result<Value, String> {
    let [list] = exactly::<1>(name, args)?;
    Ok(f(list_arg(name, list)?).unwrap_or(Value::Nil))
}

fn sub_list(
    name: &str,
    args: &[Value],
    f: fn(&[Value]) -> Option<Vec<Value>>,
) -> Result<Value, String> {
    let [list] = exactly::<1>(name, args)?;
    Ok(f(list_arg(name, list)?).map_or(Value::Nil, Value::list))
}

fn uniq(items: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

fn push(name: &str, args: &[Value], front: bool) -> Result<Value, String> {
    let [list, value] = exactly::<2>(name, args)?;
    let mut items = list_arg(name, list)?.to_vec();
    if front {
        items.insert(0, value.clone());
    } else {
        items.push(value.clone());
    }
    Ok(Value::list(items))
}

fn concat(args: &[Value]) -> Result<Value, String> {
    let mut out = Vec::new();
    for list in args {
        out.extend_from_slice(list_arg("concat", list)?);
    }
    Ok(Value::list(out))
}

fn without(args: &[Value]) -> Result<Value, String> {
    let Some((list, omit)) = args.split_first() else {
        return Err("wrong number of args for without: want at least 1 got 0".into());
    };
    let kept = list_arg("without", list)?
        .iter()
        .filter(|v| !omit.contains(v))
        .cloned()
        .collect();
    Ok(Value::list(kept))
}

fn has(args: &[Value]) -> Result<Value, String> {
    let [needle, haystack] = exactly::<2>("has", args)?;
    if haystack.is_nil() {
        return Ok(Value::Bool(false));
    }
    Ok(Value::Bool(list_arg("has", haystack)?.contains(needle)))
}

/// Sprig's `slice` (it replaces Go's in Helm): lists only.
fn slice(args: &[Value]) -> Result<Value, String> {
    let Some((list, bounds)) = args.split_first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    if list.is_nil() {
        return Err(NIL_KIND_PANIC.into());
    }
    let Value::List(items) = list else {
        return Err(format!(
            "list should be type of slice or array but {}",
            kind_of(list)
        ));
    };
    let bound = |i: usize, default: usize| -> Result<usize, String> {
        match bounds.get(i) {
            None => Ok(default),
            Some(v) => usize::try_from(super::numbers::to_int64(v))
                .ok()
                .filter(|n| *n <= items.len())
                .ok_or_else(|| format!("slice bounds out of range [{}]", strval(v))),
        }
    };
    let (start, end) = (bound(0, 0)?, bound(1, items.len())?);
    if start > end {
        return Err(format!("slice bounds out of range [{start}:{end}]"));
    }
    Ok(Value::list(items[start..end].to_vec()))
}

fn chunk(args: &[Value]) -> Result<Value, String> {
    let [size, list] = exactly::<2>("chunk", args)?;
    let size = usize::try_from(int(size)?)
        .ok()
        .filter(|s| *s > 0)
        .ok_or("chunk size must be positive")?;
    let chunks = list_arg("chunk", list)?
        .chunks(size)
        .map(|c| Value::list(c.to_vec()))
        .collect();
    Ok(Value::list(chunks))
}

fn until_step(start: i64, stop: i64, step: i64) -> Result<Value, String> {
    let count = match step {
        0 => 0,
        s if s > 0 && stop > start => (stop - start + s - 1) / s,
        s if s < 0 && stop < start => (start - stop + (-s) - 1) / (-s),
        _ => 0,
    };
    if count > MAX_LIST {
        return Err(format!("more than {MAX_LIST} elements"));
    }
    Ok(Value::list(
        (0..count).map(|i| Value::Int(start + i * step)).collect(),
    ))
}

fn seq(args: &[Value]) -> Result<Value, String> {
    let params: Vec<i64> = args.iter().map(int).collect::<Result<_, _>>()?;
    let (start, end, step) = match params.as_slice() {
        [end] => (1, *end, if *end < 1 { -1 } else { 1 }),
        [start, end] => (*start, *end, if end < start { -1 } else { 1 }),
        [start, end, step] => {
            if (start < end && *step <= 0) || (start > end && *step >= 0) {
                return Ok("".into());
            }
            (*start, *end, *step)
        }
        _ => return Ok("".into()),
    };
    let Value::List(items) = until_step(start, end + step, step)? else {
        return Ok("".into());
    };
    let words: Vec<String> = items.iter().map(strval).collect();
    Ok(words.join(" ").into())
}

fn default(args: &[Value]) -> Result<Value, String> {
    let Some((fallback, given)) = args.split_first() else {
        return Err("wrong number of args for default: want at least 1 got 0".into());
    };
    match given.first() {
        Some(v) if !is_empty(v) => Ok(v.clone()),
        _ => Ok(fallback.clone()),
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
    fn dicts_change_in_place_as_go_maps() {
        assert_eq!(
            r(
                r#"{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ $d }} {{ get $d "z" | quote }} {{ hasKey $d "a" }}"#
            ),
            "map[a:1 b:2] \"\" true"
        );
        assert_eq!(
            r(
                r#"{{ $d := dict "a" (dict "x" 1) "k" "" }}{{ $_ := merge $d (dict "a" (dict "y" 2) "k" "v" "n" 3) }}{{ $d }}"#
            ),
            "map[a:map[x:1 y:2] k:v n:3]"
        );
        assert_eq!(
            r(
                r#"{{ $d := dict "k" "old" }}{{ $_ := mergeOverwrite $d (dict "k" "new") }}{{ $d.k }} {{ keys (dict "b" 1 "a" 2) }} {{ pick (dict "a" 1 "b" 2) "a" }}"#
            ),
            "new [a b] map[a:1]"
        );
        assert_eq!(
            r(
                r#"{{ $c := deepCopy (dict "a" 1) }}{{ $_ := unset $c "a" }}{{ $c }} {{ dig "a" "b" "def" (dict "a" (dict "b" "found")) }} {{ dig "x" "def" (dict) }}"#
            ),
            "map[] found def"
        );
        // A nil where a map is wanted is an empty map (Go's nil map); it
        // cannot take an entry.
        assert_eq!(
            r(
                r#"{{ $s := (dict).data }}{{ hasKey $s "k" }} {{ keys $s | len }} {{ pick $s "a" }}"#
            ),
            "false 0 map[]"
        );
        let err = render(r#"{{ dig "a" "def" nil }}"#, &Value::Nil).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("interface {} is nil, not map[string]interface {}"),
            "{err}"
        );
        let err = render(r#"{{ set nil "a" 1 }}"#, &Value::Nil).unwrap_err();
        assert!(
            err.to_string().ends_with("assignment to entry in nil map"),
            "{err}"
        );
    }

    #[test]
    fn nil_read_from_a_field_is_refused_for_a_map_parameter() {
        let data = Value::map(
            [("n".to_string(), Value::Nil)]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        for call in [
            r#"hasKey .none "k""#,
            r#"hasKey .n "k""#,
            r#"hasKey (dict).data "k""#,
            r#"$x := dict }}{{ get $x.a "k""#,
            "keys (dict) .none",
            r#"pick .none "a""#,
            r#"pluck "a" (dict) .none"#,
            "merge (dict) .none",
        ] {
            let err = render(&format!("{{{{ {call} }}}}"), &data).unwrap_err();
            assert!(
                err.ends_with(
                    "wrong type for value; expected map[string]interface {}; got interface {}"
                ),
                "{call}: {err}"
            );
        }
        // From a variable, a pipeline or `nil`, nil is a nil map; a field
        // where the parameter is not a map is passed as it is.
        let ok = render(
            r#"{{ $s := .none }}{{ hasKey $s "k" }} {{ keys (index . "none") }} {{ .none | keys }} {{ pick nil "a" }} {{ default "d" .none }}"#,
            &data,
        );
        assert_eq!(ok.unwrap(), "false [] [] map[] d");
    }

    #[test]
    fn nil_where_a_list_is_wanted_fails_as_sprig_panics() {
        for call in [
            "first nil",
            "last nil",
            "rest nil",
            "initial nil",
            "reverse nil",
            "uniq nil",
            "compact nil",
            "append nil 1",
            "prepend nil 1",
            "concat (list 1) nil",
            "without nil 1",
            "chunk 2 nil",
            "slice nil",
        ] {
            let err = render(&format!("{{{{ {call} }}}}"), &Value::Nil).unwrap_err();
            assert!(
                err.ends_with("runtime error: invalid memory address or nil pointer dereference"),
                "{call}: {err}"
            );
        }
        assert_eq!(r("{{ has 1 nil }} {{ join \",\" nil }}"), "false ");
        assert_eq!(
            r("{{ sortAlpha nil }} {{ sortAlpha \"b\" }} {{ sortAlpha (list \"b\" nil \"a\") }}"),
            "[<nil>] [b] [a b]"
        );
    }

    #[test]
    fn lists() {
        assert_eq!(
            r(
                r#"{{ $l := list 1 "b" 3 }}{{ first $l }} {{ last $l }} {{ rest $l }} {{ initial $l }} {{ append $l 4 }} {{ prepend $l 0 }}"#
            ),
            "1 3 [b 3] [1 b] [1 b 3 4] [0 1 b 3]"
        );
        assert_eq!(
            r(
                r#"{{ uniq (list 1 1 2) }} {{ without (list 1 2 3) 2 }} {{ has 2 (list 1 2) }} {{ compact (list "" "a" 0 nil) }} {{ reverse (list 1 2) }}"#
            ),
            "[1 2] [1 3] true [a] [2 1]"
        );
        assert_eq!(
            r(
                r#"{{ sortAlpha (list "b" "a" 10) }} {{ join "," (list "a" 1 nil) }} {{ concat (list 1) (list 2) }} {{ slice (list 1 2 3) 1 }} {{ chunk 2 (list 1 2 3) }}"#
            ),
            "[10 a b] a,1 [1 2] [2 3] [[1 2] [3]]"
        );
        assert_eq!(
            r(r#"{{ until 3 }} {{ untilStep 0 10 4 }} {{ seq 3 }} {{ seq 3 1 }}"#),
            "[0 1 2] [0 4 8] 1 2 3 3 2 1"
        );
    }

    #[test]
    fn defaults_and_types() {
        assert_eq!(
            r(
                r#"{{ default "d" "" }} {{ default "d" "x" }} {{ default "d" nil }} {{ empty 0 }} {{ coalesce "" nil "c" }} {{ ternary "y" "n" true }}"#
            ),
            "d x d true c y"
        );
        assert_eq!(
            r(
                r#"{{ typeOf 1 }} {{ typeOf (list) }} {{ kindOf (dict) }} {{ kindIs "string" "a" }} {{ typeIs "int64" (add 1 1) }} {{ deepEqual (list 1) (list 1) }}"#
            ),
            "int []interface {} map true true true"
        );
        let err = render(r#"{{ first "abc" }}"#, &Value::Nil).unwrap_err();
        assert!(
            err.ends_with("error calling first: Cannot find first on type string"),
            "{err}"
        );
    }
}
