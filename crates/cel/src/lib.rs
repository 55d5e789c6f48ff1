//! `gitplane-cel`: the one CEL environment of gitplane, shared by resource
//! graphs (`${…}` expressions), policy (ValidatingAdmissionPolicy, Kyverno
//! `cel` rules) and anything else that evaluates CEL.
//!
//! What goes in: an expression's source and named JSON values (an
//! [`Activation`]). What comes out: a value ([`Program::evaluate`]) or JSON
//! ([`Program::evaluate_json`]). Start with [`Env`]: it compiles once per
//! source (a bounded cache) and holds the [`Limits`].
//!
//! The functions are CEL's standard ones, the optional types (`a.?b`,
//! `orValue`), and the Kubernetes libraries from `kube-cel` (strings, lists,
//! sets, regex, url, ip/cidr, semver, quantity, format, math, base64).
//!
//! Expressions are hostile input. Before an expression runs, its source
//! length and nesting depth are checked and message construction
//! (`Foo{…}`, which the interpreter cannot evaluate) is refused. While it
//! runs, every function call and every iteration of a comprehension is
//! charged against a cost budget, results larger than the size limits are
//! refused, functions whose result can dwarf their input (`replace`,
//! `lists.range`) check the size first, and a deadline stops the rest. See
//! [`limits`].
//!
//! Resource graphs also see kro's functions ([`kro`], [`Library::Kro`]).

mod ast;
mod error;
pub mod kro;
pub mod limits;
mod program;
pub mod supplied;
mod value;

pub use error::CelError;
pub use kro::is_omit;
pub use limits::Limits;
pub use program::{Activation, Env, Library, Program};
pub use value::{from_json, string_map, to_json};

/// The CEL value type (from the `cel` crate, through `kube-cel`).
pub use kube_cel::cel::Value;
