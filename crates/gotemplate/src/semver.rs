//! Semantic versions and constraints as Masterminds/semver v3 reads them
//! (what Helm's `semverCompare`, chart dependency ranges and `kubeVersion`
//! use): lenient versions (`v1.2`, `1.29.3-gke.100`), constraints joined by
//! `,` or spaces (and) and `||` (or), `=` `!=` `>` `<` `>=` `<=` `~` `^`,
//! `x`/`*` wildcards and `a - b` ranges. A version with a prerelease matches
//! only constraints that name a prerelease (`>=1.19-0`).

use std::cmp::Ordering;

use crate::memo::Memo;
use crate::sprig::{Plain, exactly, string};
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("semverCompare", |a| {
        let [constraint, version] = exactly::<2>("semverCompare", a)?;
        compare(string(constraint)?, string(version)?).map(Value::Bool)
    }),
    ("semver", |a| {
        let [text] = exactly::<1>("semver", a)?;
        Ok(Value::Object(std::sync::Arc::new(SemverObject::parse(
            string(text)?,
        )?)))
    }),
];

/// Answers of `semverCompare`, at most 1,024: charts compare the same
/// constraints with the same Kubernetes version in many templates.
static COMPARED: Memo<String, Result<bool, String>> = Memo::new(1024);

/// `semverCompare constraint version`, answered once per pair.
fn compare(constraint: &str, version: &str) -> Result<bool, String> {
    // The length first keeps the pair apart however either is written.
    let key = format!("{}:{constraint}{version}", constraint.len());
    COMPARED.get_or(key.as_str(), || {
        Constraint::parse(constraint).and_then(|c| Version::parse(version).map(|v| c.matches(&v)))
    })
}

/// What Sprig's `semver` gives: a `*semver.Version` with its fields as
/// methods (`Major`, `Minor`, `Patch`, `Prerelease`, `Metadata`,
/// `Original`, `String`) and comparisons with another (`Compare`,
/// `LessThan`, `GreaterThan`, `Equal`).
#[derive(Debug)]
struct SemverObject {
    version: Version,
    metadata: String,
    original: String,
}

impl SemverObject {
    fn parse(text: &str) -> Result<SemverObject, String> {
        Ok(SemverObject {
            version: Version::parse(text)?,
            metadata: text
                .split_once('+')
                .map_or("", |(_, m)| m)
                .trim()
                .to_string(),
            original: text.to_string(),
        })
    }

    /// `1.2.3-pre+meta`, as Masterminds' `String` writes it.
    fn canonical(&self) -> String {
        let v = &self.version;
        let mut text = format!("{}.{}.{}", v.major, v.minor, v.patch);
        if !v.prerelease.is_empty() {
            text.push_str(&format!("-{}", v.prerelease));
        }
        if !self.metadata.is_empty() {
            text.push_str(&format!("+{}", self.metadata));
        }
        text
    }
}

impl crate::value::GoObject for SemverObject {
    fn type_name(&self) -> &str {
        "*semver.Version"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let v = &self.version;
        let number = |n: u64| Value::Int64(i64::try_from(n).unwrap_or(i64::MAX));
        let plain = match name {
            "Major" => Some(number(v.major)),
            "Minor" => Some(number(v.minor)),
            "Patch" => Some(number(v.patch)),
            "Prerelease" => Some(Value::string(v.prerelease.as_str())),
            "Metadata" => Some(Value::string(self.metadata.as_str())),
            "Original" => Some(Value::string(self.original.as_str())),
            "String" => Some(Value::string(self.canonical())),
            _ => None,
        };
        if let Some(value) = plain {
            return Some(crate::funcs::arity(name, args, 0).map(|()| value));
        }
        let compare = |args: &[Value]| -> Result<Ordering, String> {
            crate::funcs::arity(name, args, 1)?;
            let other = match &args[0] {
                Value::Object(other) => other.as_any(),
                _ => None,
            }
            .and_then(|any| any.downcast_ref::<SemverObject>())
            .ok_or_else(|| format!("{name}: expected a *semver.Version"))?;
            Ok(v.cmp(&other.version))
        };
        Some(match name {
            "Compare" => compare(args).map(|o| Value::Int(o as i64)),
            "LessThan" => compare(args).map(|o| Value::Bool(o == Ordering::Less)),
            "GreaterThan" => compare(args).map(|o| Value::Bool(o == Ordering::Greater)),
            "Equal" => compare(args).map(|o| Value::Bool(o == Ordering::Equal)),
            _ => return None,
        })
    }

    fn print(&self) -> String {
        self.canonical()
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// A version: major.minor.patch, a prerelease and build metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    /// After `-`, empty if none.
    pub prerelease: String,
}

impl Version {
    /// Parses a version leniently (`v` prefix, missing minor or patch).
    pub fn parse(text: &str) -> Result<Version, String> {
        let invalid = || format!("Invalid Semantic Version: {text}");
        let body = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let body = body.split_once('+').map_or(body, |(v, _)| v);
        let (core, prerelease) = body.split_once('-').unwrap_or((body, ""));
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(invalid());
        }
        let number = |i: usize| -> Result<u64, String> {
            match parts.get(i) {
                None => Ok(0),
                Some(p) => p.parse().map_err(|_| invalid()),
            }
        };
        Ok(Version {
            major: number(0)?,
            minor: number(1)?,
            patch: number(2)?,
            prerelease: prerelease.to_string(),
        })
    }

    fn core(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.core()
            .cmp(&other.core())
            .then_with(|| compare_prerelease(&self.prerelease, &other.prerelease))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// SemVer's prerelease order: none is highest; identifiers compare
/// numerically when both are numbers, numbers before words.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// One comparison: an operator and a bound.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound {
    op: Ordering,
    inclusive: bool,
    version: Version,
    /// The constraint named a prerelease (so prereleases may match).
    prerelease: bool,
}

impl Bound {
    fn matches(&self, v: &Version) -> bool {
        let order = v.cmp(&self.version);
        order == self.op || (self.inclusive && order == Ordering::Equal)
    }
}

/// What one comparator of a constraint means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// All bounds hold.
    Within(Vec<Bound>),
    /// Not equal to (or not within the wildcard of) these bounds.
    Outside(Vec<Bound>),
}

/// A constraint: alternatives (`||`) of comparators that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    alternatives: Vec<Vec<Check>>,
}

impl Constraint {
    /// Parses a constraint.
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let invalid = || format!("improper constraint: {text}");
        if text.trim().is_empty() {
            return Err(invalid());
        }
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let normalized = normalize_ranges(alternative);
            let mut checks = Vec::new();
            for comparator in normalized.split(|c: char| c == ',' || c.is_whitespace()) {
                if comparator.is_empty() {
                    continue;
                }
                checks.push(parse_comparator(comparator).ok_or_else(invalid)?);
            }
            if checks.is_empty() {
                checks.push(parse_comparator("*").ok_or_else(invalid)?);
            }
            alternatives.push(checks);
        }
        Ok(Constraint { alternatives })
    }

    /// Whether `version` satisfies the constraint.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|checks| {
            checks.iter().all(|check| match check {
                Check::Within(bounds) => bounds
                    .iter()
                    .all(|b| (version.prerelease.is_empty() || b.prerelease) && b.matches(version)),
                Check::Outside(bounds) => !bounds.iter().all(|b| b.matches(version)),
            })
        })
    }
}

/// `1.2 - 1.4` → `>=1.2 <=1.4`; operators glued to their versions.
fn normalize_ranges(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if i + 2 < words.len() && words[i + 1] == "-" {
            out.push(format!(">={}", words[i]));
            out.push(format!("<={}", words[i + 2]));
            i += 3;
        } else if is_operator(words[i]) && i + 1 < words.len() {
            out.push(format!("{}{}", words[i], words[i + 1]));
            i += 2;
        } else {
            out.push(words[i].to_string());
            i += 1;
        }
    }
    out.join(" ")
}

fn is_operator(word: &str) -> bool {
    matches!(
        word,
        "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^"
    )
}

/// A version with wildcards: how many leading parts are given.
struct Partial {
    version: Version,
    given: usize,
    prerelease: bool,
}

fn parse_partial(text: &str) -> Option<Partial> {
    let body = text.strip_prefix('v').unwrap_or(text);
    let body = body.split_once('+').map_or(body, |(v, _)| v);
    let (core, prerelease) = body.split_once('-').unwrap_or((body, ""));
    let mut numbers = [0u64; 3];
    let mut given = 0;
    for (i, part) in core.split('.').enumerate() {
        if i > 2 {
            return None;
        }
        if matches!(part, "x" | "X" | "*") {
            break;
        }
        numbers[i] = part.parse().ok()?;
        given = i + 1;
    }
    Some(Partial {
        version: Version {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            prerelease: prerelease.to_string(),
        },
        given,
        prerelease: !prerelease.is_empty(),
    })
}

/// The version after the last given part is bumped (`1.2` → `1.3.0`).
fn bump(v: &Version, part: usize) -> Version {
    let (major, minor, patch) = match part {
        0 => (v.major + 1, 0, 0),
        1 => (v.major, v.minor + 1, 0),
        _ => (v.major, v.minor, v.patch + 1),
    };
    Version {
        major,
        minor,
        patch,
        prerelease: String::new(),
    }
}

fn parse_comparator(text: &str) -> Option<Check> {
    let op_len = text
        .find(|c: char| c.is_ascii_alphanumeric() || c == '*')
        .unwrap_or(text.len());
    let (op, rest) = text.split_at(op_len);
    let partial = parse_partial(rest)?;
    let floor = |v: &Version| Version {
        prerelease: if partial.prerelease {
            v.prerelease.clone()
        } else {
            String::new()
        },
        ..v.clone()
    };
    let bound = |op, inclusive, version| Bound {
        op,
        inclusive,
        version,
        prerelease: partial.prerelease,
    };
    let low = floor(&partial.version);
    // The range a wildcard version stands for: [low, high).
    let high = (partial.given < 3).then(|| bump(&partial.version, partial.given.saturating_sub(1)));
    let range = |low: Version, high: Option<Version>| {
        let mut bounds = vec![bound(Ordering::Greater, true, low)];
        if let Some(high) = high {
            bounds.push(bound(Ordering::Less, false, high));
        }
        bounds
    };
    let wildcard_range = || {
        if partial.given == 0 {
            range(
                Version::parse("0.0.0").unwrap_or_else(|_| low.clone()),
                None,
            )
        } else {
            range(low.clone(), high.clone())
        }
    };
    Some(match op {
        "" | "=" => match high {
            Some(_) => Check::Within(wildcard_range()),
            None => Check::Within(vec![bound(Ordering::Equal, true, low)]),
        },
        "!=" => match high {
            Some(_) => Check::Outside(wildcard_range()),
            None => Check::Outside(vec![bound(Ordering::Equal, true, low)]),
        },
        ">" => match high {
            Some(h) if partial.given > 0 => Check::Within(vec![bound(Ordering::Greater, true, h)]),
            _ => Check::Within(vec![bound(Ordering::Greater, false, low)]),
        },
        ">=" | "=>" => Check::Within(vec![bound(Ordering::Greater, true, low)]),
        "<" => Check::Within(vec![bound(Ordering::Less, false, low)]),
        "<=" | "=<" => match high {
            Some(h) if partial.given > 0 => Check::Within(vec![bound(Ordering::Less, false, h)]),
            _ => Check::Within(vec![bound(Ordering::Less, true, low)]),
        },
        "~" | "~>" => {
            let upper = bump(&partial.version, if partial.given <= 1 { 0 } else { 1 });
            Check::Within(range(low, Some(upper)))
        }
        "^" => {
            let part = match (partial.version.major, partial.version.minor) {
                (0, 0) if partial.given >= 3 => 2,
                (0, _) if partial.given >= 2 => 1,
                _ => 0,
            };
            Check::Within(range(low, Some(bump(&partial.version, part))))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `version` meets `constraint`, parsed here and as
    /// `semverCompare` answers it (twice: the second from its cache).
    fn matches(constraint: &str, version: &str) -> bool {
        let parsed = Constraint::parse(constraint)
            .unwrap()
            .matches(&Version::parse(version).unwrap());
        for _ in 0..2 {
            assert_eq!(compare(constraint, version), Ok(parsed), "{constraint}");
        }
        parsed
    }

    #[test]
    fn masterminds_constraints() {
        for (c, v, expected) in [
            (">=1.19-0", "v1.29.3-gke.100", true),
            (">=1.19", "v1.29.3-gke.100", false),
            (">=1.19", "1.29.3", true),
            ("<1.19", "1.18.20", true),
            ("1.2.x", "1.2.9", true),
            ("1.2.x", "1.3.0", false),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("^1.2.3", "1.9.0", true),
            ("^1.2.3", "2.0.0", false),
            ("^0.2.3", "0.3.0", false),
            (">= 1.2, < 1.4", "1.3.5", true),
            (">1.0 <2.0 || >=3", "3.1.0", true),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            ("!=1.2.3", "1.2.3", false),
            ("*", "5.0.0", true),
            ("<=1.2", "1.2.7", true),
            (">1.2", "1.2.7", false),
            (">=1.20.0-0", "1.21.0", true),
        ] {
            assert_eq!(matches(c, v), expected, "{c} {v}");
        }
    }

    #[test]
    fn versions_order_with_prereleases() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.0.0-alpha") < v("1.0.0"));
        assert!(v("1.0.0-alpha.2") < v("1.0.0-alpha.10"));
        assert!(v("1.0.0-2") < v("1.0.0-alpha"));
        assert_eq!(v("v1.2"), v("1.2.0"));
        assert!(Version::parse("1.x").is_err());
        assert!(Constraint::parse(">=abc").is_err());
        for _ in 0..2 {
            assert_eq!(
                compare(">=abc", "1.0.0"),
                Err("improper constraint: >=abc".to_string())
            );
            assert!(compare(">=1.0", "x.y").unwrap_err().contains("x.y"));
        }
        assert!(Constraint::parse("").is_err());
    }

    #[test]
    fn semver_gives_a_version_object() {
        let render = crate::sprig::render_for_test;
        // Printed by helm 4.1.4 for the same template.
        assert_eq!(
            render(
                r#"{{ $v := semver "v1.29.3-gke.100+build.7" }}{{ $v.Minor }} {{ $v.Prerelease }} {{ $v.Metadata }} {{ $v }} {{ $v.Compare (semver "1.30") }} {{ (semver "1.3").GreaterThan (semver "1.2.9") }}"#
            ),
            Ok("29 gke.100 build.7 1.29.3-gke.100+build.7 -1 true".to_string())
        );
        let error = render(r#"{{ semver "x.y" }}"#).unwrap_err();
        assert!(error.contains("Invalid Semantic Version: x.y"), "{error}");
    }
}
