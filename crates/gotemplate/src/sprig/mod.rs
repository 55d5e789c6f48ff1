//! Sprig 3's function library (what Helm, Argo CD ApplicationSets and
//! notifications add to Go's builtins), with its Go semantics: typed
//! parameters (`indent` wants an `int`, and an `int64` is an error, as in Go),
//! arithmetic in `int64`, `default` by Sprig's emptiness, maps changed in
//! place by `set`, `unset` and `merge`.
//!
//! The random functions (`randAlphaNum`, `uuidv4`…) repeat for the same
//! seed and template (see `random`); the key and certificate generators
//! make new keys on every call, as Sprig does (see `crypto`); `addf` and
//! the other float functions compute in decimals (see `decimal`).
//! Functions that read the clock, and the others not written yet, are
//! listed in [`NOT_IMPLEMENTED`]: a template calling them parses and fails
//! with an error naming the function.

mod collections;
mod crypto;
mod date;
mod decimal;
mod der;
mod encoding;
pub(crate) mod numbers;
mod paths;
mod random;
mod salted;
mod strings;
mod toml;
mod url;

use std::sync::Arc;

use crate::value::Value;
use crate::{Context, Function, Templates};

pub use date::{CLOCK_FUNCTIONS, reads_clock};

/// The key and certificate generators: new keys on every call.
pub const KEY_GENERATORS: [&str; 7] = crypto::NAMES;

/// Functions whose result is random: the random ones and the salted ones
/// (`bcrypt`, `htpasswd`, `encryptAES`; repeatable here, new values on
/// every render in Helm) and the key and certificate generators (new keys
/// on every render, here too), so a caller may want to say where they are
/// used.
pub const RANDOM_FUNCTIONS: [&str; 18] = [
    random::NAMES[0],
    random::NAMES[1],
    random::NAMES[2],
    random::NAMES[3],
    random::NAMES[4],
    random::NAMES[5],
    random::NAMES[6],
    random::NAMES[7],
    crypto::NAMES[0],
    crypto::NAMES[1],
    crypto::NAMES[2],
    crypto::NAMES[3],
    crypto::NAMES[4],
    crypto::NAMES[5],
    crypto::NAMES[6],
    salted::NAMES[0],
    salted::NAMES[1],
    salted::NAMES[2],
];

/// A Sprig function that needs no access to the executing set.
pub(crate) type Plain = fn(&[Value]) -> Result<Value, String>;

/// Sprig names gitplane does not implement (yet), with why.
pub const NOT_IMPLEMENTED: &[(&str, &str)] =
    &[("getHostByName", "it would resolve names on the host")];

/// Adds Sprig's functions to a set.
pub fn add_sprig(set: &mut Templates) {
    let groups: [&[(&str, Plain)]; 11] = [
        strings::FUNCTIONS,
        crypto::FUNCTIONS,
        paths::FUNCTIONS,
        date::FUNCTIONS,
        collections::FUNCTIONS,
        numbers::FUNCTIONS,
        decimal::FUNCTIONS,
        encoding::FUNCTIONS,
        toml::FUNCTIONS,
        url::FUNCTIONS,
        crate::semver::FUNCTIONS,
    ];
    for (name, f) in groups.into_iter().flatten() {
        set.add_function(name, plain(*f));
    }
    for (name, positions) in collections::MAP_PARAMETERS {
        set.declare_map_parameters(name, positions.clone());
    }
    for (name, f) in random::functions()
        .into_iter()
        .chain(crypto::functions())
        .chain(salted::functions())
    {
        set.add_function(name, f);
    }
    for (name, why) in NOT_IMPLEMENTED {
        let message = format!("gitplane does not implement {name}: {why}");
        set.add_function(
            name,
            Arc::new(move |_: &mut Context<'_, '_>, _: &[Value]| Err(message.clone())),
        );
    }
}

/// Executes `src` with Sprig's functions and nil as dot (for tests).
#[cfg(test)]
pub(crate) fn render_for_test(src: &str) -> Result<String, String> {
    let mut set = Templates::new(crate::Options::default());
    add_sprig(&mut set);
    set.parse("t", src).map_err(|e| e.to_string())?;
    set.execute("t", &Value::Nil).map_err(|e| e.to_string())
}

/// A [`Function`] from a plain one.
pub(crate) fn plain(f: Plain) -> Function {
    Arc::new(move |_: &mut Context<'_, '_>, args: &[Value]| f(args))
}

/// Go's error for an argument of the wrong type.
pub(crate) fn wrong_type(expected: &str, got: &Value) -> String {
    match got {
        Value::Missing | Value::Nil => format!("invalid value; expected {expected}"),
        _ => format!(
            "wrong type for value; expected {expected}; got {}",
            got.type_name()
        ),
    }
}

/// The arguments, checked against Go's arity.
pub(crate) fn exactly<'a, const N: usize>(
    name: &str,
    args: &'a [Value],
) -> Result<&'a [Value; N], String> {
    args.try_into().map_err(|_| {
        format!(
            "wrong number of args for {name}: want {N} got {}",
            args.len()
        )
    })
}

/// The first argument and the rest, for functions of at least one.
pub(crate) fn first_and_rest<'a>(
    name: &str,
    args: &'a [Value],
) -> Result<(&'a Value, &'a [Value]), String> {
    args.split_first()
        .ok_or_else(|| format!("wrong number of args for {name}: want at least 1 got 0"))
}

/// A `string` parameter.
pub(crate) fn string(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| wrong_type("string", value))
}

/// An `int` parameter (an `int64` is not one, as in Go).
pub(crate) fn int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(n) => Ok(*n),
        _ => Err(wrong_type("int", value)),
    }
}

/// A `bool` parameter.
pub(crate) fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        _ => Err(wrong_type("bool", value)),
    }
}

/// Sprig's `strval`: a string as is, anything else as `%v` prints it.
pub(crate) fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => crate::fmt::print_value(other),
    }
}

/// Sprig's emptiness (for `default`, `empty`, `coalesce`, `compact`):
/// Go's falsehood.
pub(crate) fn is_empty(value: &Value) -> bool {
    !value.is_true()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders `src` with Sprig and `data`.
    pub(crate) fn render(src: &str, data: &Value) -> Result<String, String> {
        let mut set = Templates::default();
        add_sprig(&mut set);
        set.parse("t", src).map_err(|e| e.to_string())?;
        set.execute("t", data).map_err(|e| e.to_string())
    }

    #[test]
    fn unimplemented_functions_parse_and_fail_by_name() {
        let err = render("{{ getHostByName \"example.com\" }}", &Value::Nil).unwrap_err();
        assert!(
            err.ends_with("error calling getHostByName: gitplane does not implement getHostByName: it would resolve names on the host"),
            "{err}"
        );
    }

    #[test]
    fn typed_parameters_as_go_checks_them() {
        let err = render("{{ indent (add 1 1) \"x\" }}", &Value::Nil).unwrap_err();
        assert!(
            err.ends_with("wrong type for value; expected int; got int64"),
            "{err}"
        );
        assert_eq!(
            render("{{ indent (int (add 1 1)) \"x\" }}", &Value::Nil).unwrap(),
            "  x"
        );
    }
}
