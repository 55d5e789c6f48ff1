//! Sprig's path functions, as Go's `path` (and, on Linux, `path/filepath`)
//! computes them: `base`, `dir`, `clean`, `ext`, `isAbs` and their `os…`
//! forms.

use super::{Plain, exactly, string};
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("base", |a| text("base", a, base)),
    ("dir", |a| text("dir", a, dir)),
    ("clean", |a| text("clean", a, clean)),
    ("ext", |a| text("ext", a, ext)),
    ("isAbs", |a| is_abs("isAbs", a)),
    ("osBase", |a| text("osBase", a, base)),
    ("osDir", |a| text("osDir", a, dir)),
    ("osClean", |a| text("osClean", a, clean)),
    ("osExt", |a| text("osExt", a, ext)),
    ("osIsAbs", |a| is_abs("osIsAbs", a)),
];

fn text(name: &str, args: &[Value], f: fn(&str) -> String) -> Result<Value, String> {
    let path = string(&exactly::<1>(name, args)?[0])?;
    Ok(Value::string(f(path)))
}

fn is_abs(name: &str, args: &[Value]) -> Result<Value, String> {
    let path = string(&exactly::<1>(name, args)?[0])?;
    Ok(Value::Bool(path.starts_with('/')))
}

/// `path.Clean`: the shortest equivalent path (`.` and `..` resolved,
/// slashes collapsed; `..` above the root dropped).
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            other => parts.push(other),
        }
    }
    match (rooted, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".into(),
        (false, false) => parts.join("/"),
    }
}

/// `path.Base`: the last element (`/` for the root, `.` for nothing).
fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// `path.Dir`: everything before the last element, cleaned.
fn dir(path: &str) -> String {
    let head = path.rfind('/').map_or("", |i| &path[..=i]);
    clean(head)
}

/// `path.Ext`: the last element's suffix from its last dot.
fn ext(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.rfind('.')
        .map_or(String::new(), |i| last[i..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_go_computes_them() {
        let cases = [
            ("", ".", ".", ".", ""),
            ("/", "/", "/", "/", ""),
            (
                "a/b/../c/./d.tar.gz",
                "d.tar.gz",
                "a/c",
                "a/c/d.tar.gz",
                ".gz",
            ),
            ("/../x//y/", "y", "/x/y", "/x/y", ""),
            ("../../a", "a", "../..", "../../a", ""),
            ("dir/.hidden", ".hidden", "dir", "dir/.hidden", ".hidden"),
            ("a.b/c", "c", "a.b", "a.b/c", ""),
        ];
        for (path, b, d, c, e) in cases {
            assert_eq!(base(path), b, "base {path:?}");
            assert_eq!(dir(path), d, "dir {path:?}");
            assert_eq!(clean(path), c, "clean {path:?}");
            assert_eq!(ext(path), e, "ext {path:?}");
        }
    }
}
