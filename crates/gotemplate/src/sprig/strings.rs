//! Sprig's string functions.

use std::collections::BTreeMap;

use regex::Regex;

use super::{Plain, exactly, int, string, strval};
use crate::fmt::go_quote;
use crate::memo::Memo;
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("upper", |a| map_str("upper", a, |s| s.to_uppercase())),
    ("lower", |a| map_str("lower", a, |s| s.to_lowercase())),
    ("title", |a| map_str("title", a, title)),
    ("untitle", |a| map_str("untitle", a, untitle)),
    ("trim", |a| {
        map_str("trim", a, |s| s.trim_matches(is_go_space).to_string())
    }),
    ("nospace", |a| {
        map_str("nospace", a, |s| {
            s.chars().filter(|c| !c.is_whitespace()).collect()
        })
    }),
    ("swapcase", |a| map_str("swapcase", a, swapcase)),
    ("initials", |a| map_str("initials", a, initials)),
    ("snakecase", |a| {
        map_str("snakecase", a, |s| words(s).join("_"))
    }),
    ("kebabcase", |a| {
        map_str("kebabcase", a, |s| words(s).join("-"))
    }),
    ("camelcase", |a| map_str("camelcase", a, camelcase)),
    ("trimAll", |a| {
        two_str("trimAll", a, |cut, s| {
            s.trim_matches(|c| cut.contains(c)).to_string()
        })
    }),
    ("trimall", |a| {
        two_str("trimall", a, |cut, s| {
            s.trim_matches(|c| cut.contains(c)).to_string()
        })
    }),
    ("trimPrefix", |a| {
        two_str("trimPrefix", a, |p, s| {
            s.strip_prefix(p).unwrap_or(s).to_string()
        })
    }),
    ("trimSuffix", |a| {
        two_str("trimSuffix", a, |p, s| {
            s.strip_suffix(p).unwrap_or(s).to_string()
        })
    }),
    ("contains", |a| {
        two_bool("contains", a, |sub, s| s.contains(sub))
    }),
    ("hasPrefix", |a| {
        two_bool("hasPrefix", a, |p, s| s.starts_with(p))
    }),
    ("hasSuffix", |a| {
        two_bool("hasSuffix", a, |p, s| s.ends_with(p))
    }),
    ("replace", replace),
    ("repeat", repeat),
    ("substr", substr),
    ("trunc", trunc),
    ("abbrev", abbrev),
    ("abbrevboth", abbrev_both),
    ("indent", |a| indent("indent", a, "")),
    ("nindent", |a| indent("nindent", a, "\n")),
    ("quote", |a| Ok(quoted(a, go_quote).into())),
    ("squote", |a| Ok(quoted(a, |s| format!("'{s}'")).into())),
    ("cat", cat),
    ("plural", plural),
    ("toString", |a| {
        Ok(strval(&exactly::<1>("toString", a)?[0]).into())
    }),
    ("split", |a| split("split", a, None)),
    ("splitn", splitn),
    ("splitList", split_list),
    ("regexMatch", regex_match),
    ("mustRegexMatch", regex_match),
    ("regexFind", regex_find),
    ("mustRegexFind", regex_find),
    ("regexFindAll", regex_find_all),
    ("mustRegexFindAll", regex_find_all),
    ("regexReplaceAll", |a| {
        regex_replace("regexReplaceAll", a, false)
    }),
    ("mustRegexReplaceAll", |a| {
        regex_replace("mustRegexReplaceAll", a, false)
    }),
    ("regexReplaceAllLiteral", |a| {
        regex_replace("regexReplaceAllLiteral", a, true)
    }),
    ("mustRegexReplaceAllLiteral", |a| {
        regex_replace("mustRegexReplaceAllLiteral", a, true)
    }),
    ("regexSplit", regex_split),
    ("mustRegexSplit", regex_split),
    ("regexQuoteMeta", |a| {
        map_str("regexQuoteMeta", a, regex::escape)
    }),
    ("wrap", wrap),
    ("wrapWith", wrap_with),
    ("hello", |_| Ok("Hello!".into())),
];

/// Go's `unicode.IsSpace` for `strings.TrimSpace`.
fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

fn map_str(name: &str, args: &[Value], f: impl Fn(&str) -> String) -> Result<Value, String> {
    let [s] = exactly::<1>(name, args)?;
    Ok(f(string(s)?).into())
}

fn two_str(name: &str, args: &[Value], f: impl Fn(&str, &str) -> String) -> Result<Value, String> {
    let [a, b] = exactly::<2>(name, args)?;
    Ok(f(string(a)?, string(b)?).into())
}

fn two_bool(name: &str, args: &[Value], f: impl Fn(&str, &str) -> bool) -> Result<Value, String> {
    let [a, b] = exactly::<2>(name, args)?;
    Ok(Value::Bool(f(string(a)?, string(b)?)))
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_separates = true;
    for c in s.chars() {
        if previous_separates {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous_separates = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn untitle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_space = true;
    for c in s.chars() {
        if previous_space {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        previous_space = c.is_whitespace();
    }
    out
}

fn swapcase(s: &str) -> String {
    s.chars()
        .flat_map(|c| -> Vec<char> {
            if c.is_uppercase() {
                c.to_lowercase().collect()
            } else {
                c.to_uppercase().collect()
            }
        })
        .collect()
}

fn initials(s: &str) -> String {
    s.split_whitespace()
        .filter_map(|w| w.chars().next())
        .collect()
}

/// The lower-case words of an identifier (`fooBar baz-qux` → foo, bar, baz,
/// qux), as Sprig's snake and kebab case see them.
fn words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let boundary = c.is_uppercase()
            && i > 0
            && (chars[i - 1].is_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase())
                    && chars[i - 1].is_uppercase());
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Sprig's `camelcase`: words joined with their first letters upper-cased
/// (`foo_bar` → `FooBar`).
fn camelcase(s: &str) -> String {
    s.split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|f| f.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn replace(args: &[Value]) -> Result<Value, String> {
    let [old, new, src] = exactly::<3>("replace", args)?;
    Ok(string(src)?.replace(string(old)?, string(new)?).into())
}

fn repeat(args: &[Value]) -> Result<Value, String> {
    let [count, s] = exactly::<2>("repeat", args)?;
    let (count, s) = (int(count)?, string(s)?);
    let count = usize::try_from(count).map_err(|_| "strings: negative Repeat count".to_string())?;
    if s.len().saturating_mul(count) > 64 << 20 {
        return Err("strings: Repeat output length overflow".into());
    }
    Ok(s.repeat(count).into())
}

fn substr(args: &[Value]) -> Result<Value, String> {
    let [start, end, s] = exactly::<3>("substr", args)?;
    let (start, end, s) = (int(start)?, int(end)?, string(s)?);
    let len = s.len() as i64;
    let bytes = s.as_bytes();
    let slice = if start < 0 {
        &bytes[..end.clamp(0, len) as usize]
    } else if end < 0 || end > len {
        &bytes[start.min(len) as usize..]
    } else {
        &bytes[start.min(end) as usize..end as usize]
    };
    Ok(String::from_utf8_lossy(slice).into_owned().into())
}

fn trunc(args: &[Value]) -> Result<Value, String> {
    let [c, s] = exactly::<2>("trunc", args)?;
    let (c, s) = (int(c)?, string(s)?);
    let len = s.len() as i64;
    let bytes = s.as_bytes();
    let slice = if c < 0 && len + c > 0 {
        &bytes[(len + c) as usize..]
    } else if c >= 0 && len > c {
        &bytes[..c as usize]
    } else {
        bytes
    };
    Ok(String::from_utf8_lossy(slice).into_owned().into())
}

fn abbrev(args: &[Value]) -> Result<Value, String> {
    let [width, s] = exactly::<2>("abbrev", args)?;
    let (width, s) = (int(width)?, string(s)?);
    if width < 4 || s.chars().count() as i64 <= width {
        return Ok(s.into());
    }
    let kept: String = s.chars().take((width - 3) as usize).collect();
    Ok(format!("{kept}...").into())
}

fn abbrev_both(args: &[Value]) -> Result<Value, String> {
    let [left, right, s] = exactly::<3>("abbrevboth", args)?;
    let (left, right, s) = (int(left)?, int(right)?, string(s)?);
    if right < 4 || (left > 0 && right < 7) {
        return Ok(s.into());
    }
    Ok(abbreviate_full(s.as_bytes(), left, right).into())
}

/// goutils' `AbbreviateFull` (on bytes, as Go's): `...` on the side(s)
/// cut, keeping `width` bytes in all, starting near `offset`.
fn abbreviate_full(s: &[u8], offset: i64, width: i64) -> String {
    let len = s.len() as i64;
    if s.is_empty() || len <= width {
        return String::from_utf8_lossy(s).into_owned();
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    let text =
        |from: i64, to: i64| String::from_utf8_lossy(&s[from as usize..to as usize]).into_owned();
    if offset <= 4 {
        return format!("{}...", text(0, width - 3));
    }
    if offset + width - 3 < len {
        let rest = &s[offset as usize..];
        return format!("...{}", abbreviate_full(rest, 0, width - 3));
    }
    format!("...{}", text(len - (width - 3), len))
}

fn indent(name: &str, args: &[Value], prefix: &str) -> Result<Value, String> {
    let [spaces, v] = exactly::<2>(name, args)?;
    let spaces = usize::try_from(int(spaces)?).unwrap_or(0);
    let pad = " ".repeat(spaces);
    let text = string(v)?;
    // One pass into one buffer: this runs on most lines a chart prints.
    let breaks = text.bytes().filter(|b| *b == b'\n').count();
    let mut out = String::with_capacity(prefix.len() + text.len() + pad.len() * (breaks + 1));
    out.push_str(prefix);
    out.push_str(&pad);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(out.into())
}

/// `quote`/`squote`: each non-nil argument as a string, quoted, joined by
/// spaces.
fn quoted(args: &[Value], quote: fn(&str) -> String) -> String {
    let mut out = String::new();
    for arg in args.iter().filter(|a| !a.is_nil()) {
        if !out.is_empty() {
            out.push(' ');
        }
        let quoted = match arg {
            Value::String(s) => quote(s),
            other => quote(&strval(other)),
        };
        out.push_str(&quoted);
    }
    out
}

fn cat(args: &[Value]) -> Result<Value, String> {
    let words: Vec<String> = args.iter().filter(|a| !a.is_nil()).map(strval).collect();
    Ok(words.join(" ").into())
}

fn plural(args: &[Value]) -> Result<Value, String> {
    let [one, many, count] = exactly::<3>("plural", args)?;
    let word = if int(count)? == 1 { one } else { many };
    Ok(string(word)?.into())
}

/// `split`/`splitn`: a map `_0`, `_1`… of the parts.
fn split(name: &str, args: &[Value], n: Option<i64>) -> Result<Value, String> {
    let (sep, orig) = match args {
        [sep, orig] => (string(sep)?, string(orig)?),
        _ => {
            return Err(format!(
                "wrong number of args for {name}: want 2 got {}",
                args.len()
            ));
        }
    };
    let parts = go_split(orig, sep, n);
    let map: BTreeMap<String, Value> = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| (format!("_{i}"), Value::from(p)))
        .collect();
    Ok(Value::map(map))
}

fn splitn(args: &[Value]) -> Result<Value, String> {
    let [sep, n, orig] = exactly::<3>("splitn", args)?;
    split("splitn", &[sep.clone(), orig.clone()], Some(int(n)?))
}

fn split_list(args: &[Value]) -> Result<Value, String> {
    let [sep, orig] = exactly::<2>("splitList", args)?;
    let parts = go_split(string(orig)?, string(sep)?, None);
    Ok(Value::list(parts.into_iter().map(Value::from).collect()))
}

/// Go's `strings.Split`/`SplitN` (an empty separator splits into characters).
fn go_split(s: &str, sep: &str, n: Option<i64>) -> Vec<String> {
    match n {
        Some(0) => Vec::new(),
        Some(n) if n > 0 => {
            if sep.is_empty() {
                let chars: Vec<String> = s.chars().map(String::from).collect();
                let n = n as usize;
                if chars.len() <= n {
                    return chars;
                }
                let mut out: Vec<String> = chars[..n - 1].to_vec();
                out.push(chars[n - 1..].concat());
                return out;
            }
            s.splitn(n as usize, sep).map(String::from).collect()
        }
        _ if sep.is_empty() => s.chars().map(String::from).collect(),
        _ => s.split(sep).map(String::from).collect(),
    }
}

/// Patterns compiled so far, shared by every render of the process: charts
/// call the regex functions with the same few literal patterns in every
/// release, and compiling costs far more than matching. At most 1,024, so
/// templates generating patterns cannot grow it without bound.
static COMPILED: Memo<String, Result<Regex, String>> = Memo::new(1024);

/// `pattern` compiled (Rust's regex syntax is RE2's, as Go's `regexp`), from
/// the process-wide cache when it was compiled before.
fn compile(pattern: &str) -> Result<Regex, String> {
    COMPILED.get_or(pattern, || {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("error parsing regexp: {e}"))
    })
}

fn regex_match(args: &[Value]) -> Result<Value, String> {
    let [re, s] = exactly::<2>("regexMatch", args)?;
    Ok(Value::Bool(compile(string(re)?)?.is_match(string(s)?)))
}

fn regex_find(args: &[Value]) -> Result<Value, String> {
    let [re, s] = exactly::<2>("regexFind", args)?;
    let re = compile(string(re)?)?;
    Ok(re.find(string(s)?).map_or("", |m| m.as_str()).into())
}

fn regex_find_all(args: &[Value]) -> Result<Value, String> {
    let [re, s, n] = exactly::<3>("regexFindAll", args)?;
    let re = compile(string(re)?)?;
    let n = int(n)?;
    let found = re.find_iter(string(s)?).map(|m| Value::from(m.as_str()));
    let found: Vec<Value> = if n < 0 {
        found.collect()
    } else {
        found.take(n as usize).collect()
    };
    Ok(Value::list(found))
}

fn regex_replace(name: &str, args: &[Value], literal: bool) -> Result<Value, String> {
    let [re, s, repl] = exactly::<3>(name, args)?;
    let re = compile(string(re)?)?;
    let (s, repl) = (string(s)?, string(repl)?);
    let out = if literal {
        re.replace_all(s, regex::NoExpand(repl))
    } else {
        re.replace_all(s, repl)
    };
    Ok(out.into_owned().into())
}

fn regex_split(args: &[Value]) -> Result<Value, String> {
    let [re, s, n] = exactly::<3>("regexSplit", args)?;
    let re = compile(string(re)?)?;
    let (s, n) = (string(s)?, int(n)?);
    let parts: Vec<Value> = if n < 0 {
        re.split(s).map(Value::from).collect()
    } else if n == 0 {
        Vec::new()
    } else {
        re.splitn(s, n as usize).map(Value::from).collect()
    };
    Ok(Value::list(parts))
}

/// Sprig's `wrap`: breaks lines at word boundaries to the width.
fn wrap(args: &[Value]) -> Result<Value, String> {
    let [width, s] = exactly::<2>("wrap", args)?;
    Ok(wrap_custom(string(s)?, int(width)?, "\n", false).into())
}

fn wrap_with(args: &[Value]) -> Result<Value, String> {
    let [width, separator, s] = exactly::<3>("wrapWith", args)?;
    Ok(wrap_custom(string(s)?, int(width)?, string(separator)?, true).into())
}

/// goutils' `WrapCustom`, on bytes as Go runs it: breaks at the last space
/// within `width` (spaces only; newlines in the text are characters like
/// any other), a word longer than `width` cut (`wrap_long_words`) or left
/// whole.
fn wrap_custom(text: &str, width: i64, separator: &str, wrap_long_words: bool) -> String {
    let s = text.as_bytes();
    let width = usize::try_from(width.max(1)).unwrap_or(1);
    let separator = if separator.is_empty() {
        "\n"
    } else {
        separator
    };
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut offset = 0;
    while s.len() - offset > width {
        if s[offset] == b' ' {
            offset += 1;
            continue;
        }
        let window = &s[offset..(offset + width + 1).min(s.len())];
        if let Some(space) = window.iter().rposition(|b| *b == b' ') {
            out.extend_from_slice(&s[offset..offset + space]);
            out.extend_from_slice(separator.as_bytes());
            offset += space + 1;
        } else if wrap_long_words {
            out.extend_from_slice(&s[offset..offset + width]);
            out.extend_from_slice(separator.as_bytes());
            offset += width;
        } else {
            let end = offset + width;
            match s[end..].iter().position(|b| *b == b' ') {
                None => {
                    out.extend_from_slice(&s[offset..]);
                    offset = s.len();
                }
                Some(index) => {
                    out.extend_from_slice(&s[offset..end + index]);
                    out.extend_from_slice(separator.as_bytes());
                    offset = end + index + 1;
                }
            }
        }
    }
    out.extend_from_slice(&s[offset..]);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::super::tests::render;
    use crate::value::Value;

    fn r(src: &str) -> String {
        render(src, &Value::Nil).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn sprig_strings() {
        assert_eq!(
            r(r#"{{ "hello world" | upper }} {{ "ABC" | lower }} {{ "hello world" | title }}"#),
            "HELLO WORLD abc Hello World"
        );
        assert_eq!(
            r(
                r#"{{ "  x  " | trim }}|{{ trimSuffix "-" "a-" }}|{{ trimPrefix "v" "v1" }}|{{ trimAll "$" "$5$" }}"#
            ),
            "x|a|1|5"
        );
        assert_eq!(
            r(
                r#"{{ "a-b" | replace "-" "_" }} {{ trunc 3 "abcdef" }} {{ trunc -2 "abcdef" }} {{ abbrev 5 "hello world" }}"#
            ),
            "a_b abc ef he..."
        );
        assert_eq!(
            r(r#"{{ quote "a" 1 nil }} {{ squote "b" }} {{ cat "a" 1 nil "b" }}"#),
            "\"a\" \"1\" 'b' a 1 b"
        );
        assert_eq!(
            r("{{ \"a\\nb\" | indent 2 }}|{{ \"x\" | nindent 4 }}"),
            "  a\n  b|\n    x"
        );
        assert_eq!(
            r(
                r#"{{ splitList "," "a,b,,c" }} {{ (split "." "a.b")._1 }} {{ splitn "-" 2 "a-b-c" }}"#
            ),
            "[a b  c] b map[_0:a _1:b-c]"
        );
        assert_eq!(
            r(
                r#"{{ regexMatch "^[a-z]+$" "abc" }} {{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }} {{ regexFindAll "[0-9]" "a1b2c3" 2 }}"#
            ),
            "true -W-xxW- [1 2]"
        );
        assert_eq!(
            r(
                r#"{{ snakecase "FooBarBaz" }} {{ kebabcase "fooBar" }} {{ camelcase "foo_bar" }} {{ substr 1 3 "hello" }} {{ repeat 3 "ab" }}"#
            ),
            "foo_bar_baz foo-bar FooBar el ababab"
        );
        assert_eq!(
            r(
                r#"{{ contains "b" "abc" }} {{ hasPrefix "a" "abc" }} {{ hasSuffix "z" "abc" }} {{ toString 1.5 }} {{ plural "one" "many" 2 }}"#
            ),
            "true true false 1.5 many"
        );
    }
}
