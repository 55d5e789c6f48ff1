//! OPA evaluates the arguments of a call under `not` before the negation:
//! its compiler moves them into expressions of their own, so
//! `not accept(rule, params.ranges)` with `params.ranges` undefined makes
//! the rule body fail, where regorus negates an undefined call and
//! succeeds. Gatekeeper's library relies on OPA's reading (the
//! pod-security-policy `users` template with a `RunAsAny` rule and no
//! `ranges`). This rewrite does the same on the Rego text: a body line that
//! is only `not name(args)` gets each argument that is not a literal or a
//! plain variable bound first (`__gp_arg0 := params.ranges`), on the line
//! above, at the same indentation.

/// The Rego source with the arguments of negated calls evaluated first.
pub(super) fn hoist_negated_call_arguments(rego: &str) -> String {
    let mut next = 0;
    let mut out = Vec::new();
    for line in rego.lines() {
        match negated_call(line) {
            Some((indent, name, args)) if args.iter().any(|a| needs_binding(a)) => {
                let mut bound = Vec::with_capacity(args.len());
                for arg in args {
                    if needs_binding(arg) {
                        let var = format!("__gp_arg{next}");
                        next += 1;
                        out.push(format!("{indent}{var} := {arg}"));
                        bound.push(var);
                    } else {
                        bound.push(arg.to_string());
                    }
                }
                out.push(format!("{indent}not {name}({})", bound.join(", ")));
            }
            _ => out.push(line.to_string()),
        }
    }
    let mut text = out.join("\n");
    if rego.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `(indentation, function, arguments)` of a line that is exactly
/// `not name(arg, …)`.
fn negated_call(line: &str) -> Option<(&str, &str, Vec<&str>)> {
    let trimmed = line.trim();
    let indent = &line[..line.len() - line.trim_start().len()];
    let rest = trimmed.strip_prefix("not ")?.trim_start();
    let open = rest.find('(')?;
    let name = &rest[..open];
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    let inner = rest[open + 1..].strip_suffix(')')?;
    (is_name && !trimmed.contains('#')).then_some(())?;
    let args = split_arguments(inner)?;
    Some((indent, name, args))
}

/// The arguments of a call, split at the commas outside brackets and
/// strings; `None` when the brackets do not balance (the closing
/// parenthesis was not the call's).
fn split_arguments(inner: &str) -> Option<Vec<&str>> {
    let mut args = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '`' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            ',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 || quote.is_some() {
        return None;
    }
    let last = inner[start..].trim();
    if !last.is_empty() || !args.is_empty() {
        args.push(last);
    }
    Some(args)
}

/// Whether an argument is a reference or an expression (bound first), not
/// a literal or a plain variable.
fn needs_binding(arg: &str) -> bool {
    let plain = arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let literal = arg.starts_with(['"', '`', '-'])
        || arg.starts_with(|c: char| c.is_ascii_digit())
        || matches!(arg, "true" | "false" | "null");
    !arg.is_empty() && !plain && !literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negated_call_arguments_are_bound_first() {
        let rego = "p {\n  x := 1\n  not accept(rule, params.ranges, \"a,b\", f(x, [1, 2]))\n  not is_exempt(container)\n  not f(input.a) # note\n}\n";
        assert_eq!(
            hoist_negated_call_arguments(rego),
            "p {\n  x := 1\n  __gp_arg0 := params.ranges\n  __gp_arg1 := f(x, [1, 2])\n  not accept(rule, __gp_arg0, \"a,b\", __gp_arg1)\n  not is_exempt(container)\n  not f(input.a) # note\n}\n"
        );
        assert_eq!(split_arguments("a)(b"), None);
        assert_eq!(split_arguments(""), Some(vec![]));
    }
}
