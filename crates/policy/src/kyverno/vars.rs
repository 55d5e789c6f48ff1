//! Kyverno variables: `{{ … }}` in any string of a rule is a JMESPath
//! expression over the rule's context (`request`, `element`, `images`,
//! `serviceAccountName`, context entries, test values), with a few of
//! Kyverno's own functions added to JMESPath's.
//!
//! A string that is exactly one `{{ … }}` becomes the value itself (a
//! number stays a number); otherwise values are written into the string.
//! `\{{` is a literal `{{`.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::OnceLock;

use gitplane_object::{Map, Value};
use jmespath::{Expression, Rcvar, Runtime, Variable};

/// Longest `{{ … }}` expression accepted, in bytes.
const MAX_EXPRESSION: usize = 4096;
/// Most substitutions one value may need.
const MAX_SUBSTITUTIONS: usize = 10_000;

/// The values `{{ … }}` can read.
#[derive(Debug, Clone)]
pub struct Vars {
    root: BTreeMap<String, Rcvar>,
}

impl Vars {
    /// A context with these top-level names.
    pub fn new(values: &Map<String, Value>) -> Vars {
        let mut vars = Vars {
            root: BTreeMap::new(),
        };
        for (name, value) in values {
            vars.set(name, value);
        }
        vars
    }

    /// Sets a top-level name (or a dotted path: `request.operation`).
    pub fn set(&mut self, name: &str, value: &Value) {
        let var = to_variable(value);
        match name.split_once('.') {
            None => {
                self.root.insert(name.to_string(), var);
            }
            Some((head, rest)) => {
                let mut object = self
                    .root
                    .get(head)
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                insert_path(&mut object, rest, var);
                self.root
                    .insert(head.to_string(), Rcvar::new(Variable::Object(object)));
            }
        }
    }

    /// Evaluates a JMESPath expression.
    pub fn search(&self, expression: &str) -> Result<Value, String> {
        let expression = expression.trim();
        if expression.len() > MAX_EXPRESSION {
            return Err(format!(
                "variable expression longer than {MAX_EXPRESSION} bytes"
            ));
        }
        let compiled = compile(expression)?;
        let data = Rcvar::new(Variable::Object(self.root.clone()));
        let found = compiled
            .search(data)
            .map_err(|e| format!("variable {{{{{expression}}}}}: {}", e.reason))?;
        serde_json::to_value(&*found).map_err(|e| format!("variable {{{{{expression}}}}}: {e}"))
    }

    /// Evaluates a JMESPath expression (Kyverno's functions included) with
    /// `value` as its current node (`@`).
    pub fn search_in(value: &Value, expression: &str) -> Result<Value, String> {
        let expression = expression.trim();
        if expression.len() > MAX_EXPRESSION {
            return Err(format!("expression longer than {MAX_EXPRESSION} bytes"));
        }
        let found = compile(expression)?
            .search(to_variable(value))
            .map_err(|e| format!("{expression}: {}", e.reason))?;
        serde_json::to_value(&*found).map_err(|e| format!("{expression}: {e}"))
    }

    /// Replaces every `{{ … }}` in the strings of `value`.
    pub fn substitute(&self, value: &Value) -> Result<Value, String> {
        let mut budget = MAX_SUBSTITUTIONS;
        self.substitute_within(value, &mut budget)
    }

    fn substitute_within(&self, value: &Value, budget: &mut usize) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => self.substitute_str(text, budget)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.substitute_within(v, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, v) in map {
                    let key = match self.substitute_str(key, budget)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.insert(key, self.substitute_within(v, budget)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Substitutes one string.
    pub fn substitute_text(&self, text: &str) -> Result<Value, String> {
        let mut budget = MAX_SUBSTITUTIONS;
        self.substitute_str(text, &mut budget)
    }

    fn substitute_str(&self, text: &str, budget: &mut usize) -> Result<Value, String> {
        if !text.contains("{{") {
            return Ok(Value::String(text.to_string()));
        }
        let resolved = self.resolve_nested(text, budget)?;
        let text = resolved.as_str();
        let trimmed = text.trim();
        if let Some(inner) = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
            && !inner.contains("{{")
            && !inner.contains("}}")
        {
            *budget = budget
                .checked_sub(1)
                .ok_or("too many variable substitutions")?;
            return self.search(inner);
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if rest[..start].ends_with('\\') {
                out.push_str(&rest[..start - 1]);
                out.push_str("{{");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find("}}") else {
                return Err(format!("unclosed {{{{ in {text:?}"));
            };
            *budget = budget
                .checked_sub(1)
                .ok_or("too many variable substitutions")?;
            match self.search(&rest[start + 2..start + end])? {
                Value::String(s) => out.push_str(&s),
                Value::Null => {}
                other => out.push_str(&other.to_string()),
            }
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

impl Vars {
    /// Variables inside variables (`{{ regex_match('…', '{{request.object.x}}') }}`)
    /// are substituted from the inside out, as text, as Kyverno does.
    fn resolve_nested(&self, text: &str, budget: &mut usize) -> Result<String, String> {
        let mut text = text.to_string();
        while let Some((open, close)) = innermost_nested(&text) {
            *budget = budget
                .checked_sub(1)
                .ok_or("too many variable substitutions")?;
            let replacement = match self.search(&text[open + 2..close])? {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            text.replace_range(open..close + 2, &replacement);
        }
        Ok(text)
    }
}

/// The byte range of a `{{…}}` nested in another one (its `{{` and the
/// start of its `}}`), the innermost first; escaped `\{{` do not count.
fn innermost_nested(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut opened: Vec<usize> = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match &bytes[i..i + 2] {
            b"{{" if i == 0 || bytes[i - 1] != b'\\' => {
                opened.push(i);
                i += 2;
            }
            b"}}" if !opened.is_empty() => {
                let open = opened.pop()?;
                if !opened.is_empty() {
                    return Some((open, i));
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

fn insert_path(object: &mut BTreeMap<String, Rcvar>, path: &str, value: Rcvar) {
    match path.split_once('.') {
        None => {
            object.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let mut inner = object
                .get(head)
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            insert_path(&mut inner, rest, value);
            object.insert(head.to_string(), Rcvar::new(Variable::Object(inner)));
        }
    }
}

/// JSON to a JMESPath value (numbers, strings and maps convert one to one).
pub fn to_variable(value: &Value) -> Rcvar {
    Rcvar::new(Variable::try_from(value).unwrap_or(Variable::Null))
}

/// Compiled expressions kept per thread: the same `{{ … }}` is evaluated
/// for every object and every `foreach` element.
const MAX_CACHED: usize = 1024;

thread_local! {
    static COMPILED: std::cell::RefCell<HashMap<String, Rc<Expression<'static>>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// A JMESPath expression compiled once per thread.
fn compile(expression: &str) -> Result<Rc<Expression<'static>>, String> {
    if let Some(hit) = COMPILED.with(|c| c.borrow().get(expression).cloned()) {
        return Ok(hit);
    }
    let compiled = Rc::new(
        runtime()
            .compile(expression)
            .map_err(|e| format!("invalid variable {{{{{expression}}}}}: {}", e.reason))?,
    );
    COMPILED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(expression.to_string(), compiled.clone());
    });
    Ok(compiled)
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let mut runtime = Runtime::new();
        runtime.register_builtin_functions();
        super::functions::register_all(&mut runtime);
        runtime
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::json;

    fn vars() -> Vars {
        Vars::new(
            json!({"request": {"object": {"metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "shop"}},
                "spec": {"replicas": 3, "containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "redis"}]}}}})
                .as_object()
                .unwrap_or(&Map::new()),
        )
    }

    #[test]
    fn nested_variables_are_substituted_from_the_inside_out() {
        let v = vars();
        assert_eq!(
            v.substitute_text("{{ regex_match('^[a-z]+$', '{{request.object.metadata.name}}') }}")
                .unwrap(),
            json!(true)
        );
        assert_eq!(
            v.substitute_text("x-{{ to_upper('{{request.object.metadata.name}}') }}-y")
                .unwrap(),
            json!("x-WEB-y")
        );
        assert_eq!(innermost_nested("\\{{ a }} {{ b }}"), None);
    }

    #[test]
    fn whole_strings_keep_their_type_and_parts_are_interpolated() {
        let v = vars();
        assert_eq!(
            v.substitute_text("{{ request.object.spec.replicas }}")
                .unwrap(),
            json!(3)
        );
        assert_eq!(
            v.substitute_text(
                "name {{request.object.metadata.name}} has {{request.object.spec.replicas}}"
            )
            .unwrap(),
            json!("name web has 3")
        );
        assert_eq!(
            v.substitute_text("{{ request.object.spec.containers[].image }}")
                .unwrap(),
            json!(["nginx:1", "redis"])
        );
        assert_eq!(
            v.substitute_text("{{ request.object.metadata.labels.\"app.kubernetes.io/name\" }}")
                .unwrap(),
            json!("shop")
        );
        assert_eq!(
            v.substitute_text("\\{{ literal }}").unwrap(),
            json!("{{ literal }}")
        );
    }

    #[test]
    fn kyverno_functions() {
        let v = vars();
        assert_eq!(
            v.search("to_upper(request.object.metadata.name)").unwrap(),
            json!("WEB")
        );
        assert_eq!(v.search("split('a:b', ':')").unwrap(), json!(["a", "b"]));
        assert_eq!(
            v.search("regex_match('^web$', request.object.metadata.name)")
                .unwrap(),
            json!(true)
        );
        assert_eq!(
            v.search("length(request.object.spec.containers)").unwrap(),
            json!(3 - 1)
        );
        assert!(v.search("regex_match('(', 'x')").is_err());
    }
}
