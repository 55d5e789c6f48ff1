//! Templates executed as Go executes them: each case is a template, data,
//! and Go's output or error.

use std::collections::BTreeMap;
use std::sync::Arc;

use gitplane_gotemplate::{
    Context, Error, GoObject, Limits, MissingKey, Options, Templates, Value,
};

fn map(entries: &[(&str, Value)]) -> Value {
    Value::map(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// Data like Helm's: numbers from YAML are float64.
fn data() -> Value {
    map(&[
        ("name", "web".into()),
        ("replicas", Value::Float(3.0)),
        ("big", Value::Float(1_000_000.0)),
        ("enabled", Value::Bool(true)),
        ("empty", "".into()),
        ("none", Value::Nil),
        (
            "list",
            Value::list(vec!["a".into(), "b".into(), "c".into()]),
        ),
        (
            "labels",
            map(&[("tier", "front".into()), ("app", "web".into())]),
        ),
        ("nested", map(&[("inner", map(&[("x", Value::Int(7))]))])),
    ])
}

fn run_with(options: Options, src: &str, data: &Value) -> Result<String, Error> {
    let mut set = Templates::new(options);
    set.parse("t", src)?;
    set.execute("t", data)
}

fn run(src: &str) -> String {
    run_with(Options::default(), src, &data()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn fails(src: &str) -> String {
    match run_with(Options::default(), src, &data()) {
        Ok(out) => panic!("{src}: expected an error, got {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fields_printing_and_missing_keys() {
    assert_eq!(run("{{.name}}:{{.replicas}}:{{.big}}"), "web:3:1e+06");
    assert_eq!(run("{{.labels.tier}}"), "front");
    assert_eq!(run("{{.labels}}"), "map[app:web tier:front]");
    assert_eq!(run("{{.list}}"), "[a b c]");
    assert_eq!(run("[{{.missing}}]"), "[<no value>]");
    assert_eq!(run("[{{.none}}]"), "[<no value>]");
    assert_eq!(run("[{{.missing.deeper}}]"), "[<no value>]");
    assert_eq!(run("{{print .none}} {{print .missing}}"), "<nil> <nil>");
    assert_eq!(run("{{$}}"), run("{{.}}"));
    // Chains through nested maps, from dot and from a variable, ending
    // at a value, at a missing key, or past one.
    assert_eq!(run("{{.nested.inner.x}}"), "7");
    assert_eq!(run("{{$n := .nested}}{{$n.inner.x}}"), "7");
    assert_eq!(run("[{{.nested.inner.y}}]"), "[<no value>]");
    assert_eq!(run("[{{.nested.missing.y}}]"), "[<no value>]");
    assert_eq!(run("{{.nested.inner}}"), "map[x:7]");
}

#[test]
fn helm_missingkey_zero() {
    let zero = Options {
        missing_key: MissingKey::Zero,
        ..Options::default()
    };
    assert_eq!(
        run_with(zero.clone(), "[{{.missing}}]", &data()).unwrap(),
        "[<no value>]"
    );
    let err = run_with(zero.clone(), "{{.missing.deeper}}", &data()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:1:10: executing \"t\" at <.missing.deeper>: nil pointer evaluating interface {}.deeper"
    );
    let strict = Options {
        missing_key: MissingKey::Error,
        ..Options::default()
    };
    let err = run_with(strict.clone(), "{{.missing}}", &data()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("map has no entry for key \"missing\""),
        "{err}"
    );
    let err = run_with(strict, "{{.nested.inner.y}}", &data()).unwrap_err();
    assert!(
        err.to_string().ends_with("map has no entry for key \"y\""),
        "{err}"
    );
}

#[test]
fn control_structures() {
    assert_eq!(run("{{if .enabled}}on{{else}}off{{end}}"), "on");
    assert_eq!(run("{{if .empty}}1{{else if .none}}2{{else}}3{{end}}"), "3");
    assert_eq!(run("{{with .labels}}{{.app}}{{end}}"), "web");
    assert_eq!(run("{{with .missing}}x{{else}}none{{end}}"), "none");
    assert_eq!(
        run("{{with .empty}}x{{else with .name}}{{.}}{{end}}"),
        "web"
    );
    assert_eq!(run("{{range .list}}{{.}},{{end}}"), "a,b,c,");
    assert_eq!(
        run("{{range $i, $e := .list}}{{$i}}={{$e}} {{end}}"),
        "0=a 1=b 2=c "
    );
    assert_eq!(
        run("{{range $k, $v := .labels}}{{$k}}:{{$v}};{{end}}"),
        "app:web;tier:front;"
    );
    assert_eq!(run("{{range .missing}}x{{else}}empty{{end}}"), "empty");
    assert_eq!(run("{{range 3}}{{.}}{{end}}"), "012");
    assert_eq!(
        run(
            "{{range .list}}{{if eq . \"b\"}}{{continue}}{{end}}{{if eq . \"c\"}}{{break}}{{end}}{{.}}{{end}}"
        ),
        "a"
    );
    assert_eq!(run("{{range $e := .list}}{{$e}}{{end}}"), "abc");
}

#[test]
fn variables_scope_to_their_block() {
    assert_eq!(
        run("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}"),
        "2"
    );
    assert_eq!(
        run("{{$x := .name}}{{with .labels}}{{$x}}-{{.app}}-{{$.name}}{{end}}"),
        "web-web-web"
    );
    assert_eq!(run("{{$n := len .list}}{{$n}}"), "3");
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(run("a  {{- /* note */ -}}  b"), "ab");
    assert_eq!(run("x\n  {{- .name }}\n"), "xweb\n");
    assert_eq!(run("{{ .name -}}\n\n  !"), "web!");
}

#[test]
fn pipelines_and_builtins() {
    assert_eq!(
        run("{{.name | printf \"%s-%d\" \"x\" }}"),
        "x-%!d(string=web)"
    );
    assert_eq!(run("{{printf \"%s-%v\" .name .replicas}}"), "web-3");
    assert_eq!(
        run("{{len .list}} {{index .list 1}} {{index .labels \"app\"}}"),
        "3 b web"
    );
    assert_eq!(run("{{print 1 2 \"x\" 3}}"), "1 2x3");
    assert_eq!(run("{{println \"a\" 1}}"), "a 1\n");
    assert_eq!(
        run("{{and 1 0 (index .list 9)}}|{{or 0 \"\" .name}}"),
        "0|web"
    );
    assert_eq!(run("{{not .enabled}} {{not .empty}}"), "false true");
    assert_eq!(
        run("{{eq .replicas 3.0}} {{lt 1 2}} {{ge \"b\" \"a\"}}"),
        "true true true"
    );
    assert_eq!(
        run("{{html \"<a>\"}} {{js \"it's\"}} {{urlquery \"a b\"}}"),
        "&lt;a&gt; it\\'s a+b"
    );
    assert_eq!(run("{{slice .list 1 2}}"), "[b]");
    assert_eq!(
        run("{{printf \"%T %T %T\" 1 1.5 .list}}"),
        "int float64 []interface {}"
    );
    assert_eq!(run("{{'a'}} {{0x10}} {{1e3}}"), "97 16 1000");
}

#[test]
fn go_errors_name_the_template_line_and_node() {
    assert_eq!(
        fails("line one\n{{eq .replicas 3}}"),
        "template: t:2:2: executing \"t\" at <eq .replicas 3>: error calling eq: incompatible types for comparison: float64 and int"
    );
    assert_eq!(
        fails("{{index .list 5}}"),
        "template: t:1:2: executing \"t\" at <index .list 5>: error calling index: index out of range: 5"
    );
    assert!(fails("{{.name.x}}").ends_with("can't evaluate field x in type string"));
    assert!(fails("{{nil}}").ends_with("nil is not a command"));
    assert!(fails("{{.labels.app 1}}").ends_with("app is not a method but has arguments"));
    assert!(fails("{{range .name}}{{end}}").ends_with("range can't iterate over web"));
    assert_eq!(
        fails("{{template \"nope\" .name}}"),
        "template: t:1:2: executing \"t\" at <{{template \"nope\" .name}}>: template \"nope\" not defined"
    );
    assert_eq!(fails("{{if}}"), "template: t:1: missing value for if");
    assert_eq!(
        fails("a\n{{undefined_fn}}"),
        "template: t:2: function \"undefined_fn\" not defined"
    );
}

#[test]
fn defines_templates_and_blocks() {
    let mut set = Templates::default();
    set.parse(
        "_helpers.tpl",
        "{{define \"name\"}}{{.name}}-app{{end}}{{define \"empty\"}}x{{end}}",
    )
    .unwrap();
    set.parse(
        "main",
        "{{template \"name\" .}} {{block \"b\" .labels}}{{.tier}}{{end}}{{define \"empty\"}}  {{end}}",
    )
    .unwrap();
    assert_eq!(set.execute("main", &data()).unwrap(), "web-app front");
    // A define with an empty body does not replace one with a body.
    assert_eq!(set.execute("empty", &data()).unwrap(), "x");
    assert_eq!(set.names(), ["_helpers.tpl", "b", "empty", "main", "name"]);
}

#[test]
fn a_source_parsed_apart_adds_to_any_set_as_parse_would() {
    let mut parsed_in = Templates::default();
    parsed_in
        .parse("_helpers.tpl", "{{define \"name\"}}{{.name}}{{end}}")
        .unwrap();
    let body = "{{define \"name\"}}   {{end}}{{template \"name\" .}}!";
    parsed_in.parse("main", body).unwrap();
    let apart = Templates::default().parse_apart("main", body).unwrap();
    let mut added_to = Templates::default();
    added_to
        .parse("_helpers.tpl", "{{define \"name\"}}{{.name}}{{end}}")
        .unwrap();
    added_to.add_parsed(&apart);
    assert_eq!(added_to.names(), parsed_in.names());
    // The empty define did not replace the helper's, in either set.
    assert_eq!(added_to.execute("main", &data()).unwrap(), "web!");
    assert_eq!(parsed_in.execute("main", &data()).unwrap(), "web!");
    // Names are checked at parse time against the parsing set.
    let err = Templates::default()
        .parse_apart("t", "{{nope}}")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:1: function \"nope\" not defined"
    );
}

/// Helm's `include`, for the tests that call it.
fn add_include(set: &mut Templates) {
    set.add_function(
        "include",
        Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| match args {
            [Value::String(name), dot] => cx.include(name, dot).map(Value::from),
            _ => Err("include wants a name and a value".into()),
        }),
    );
}

#[test]
fn templates_executed_in_turn_each_know_where_they_started() {
    let mut set = Templates::default();
    add_include(&mut set);
    set.add_function(
        "where",
        Arc::new(|cx: &mut Context<'_, '_>, _: &[Value]| {
            Ok(format!("{}<{}", cx.template_name(), cx.executed_name()).into())
        }),
    );
    set.parse("_h", "{{define \"h\"}}{{where}}{{end}}").unwrap();
    set.parse("a", "{{where}} {{include \"h\" .}}").unwrap();
    set.parse("b", "{{.name}} {{where}}").unwrap();
    let data = data();
    let outputs = set.execute_each(&[("a", &data), ("b", &data)]).unwrap();
    assert_eq!(outputs, ["a<a h<a", "web b<b"]);
    // The first error stops the rest.
    set.parse("bad", "{{index .name 9}}").unwrap();
    let err = set
        .execute_each(&[("bad", &data), ("a", &data)])
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("template: bad:1:2: executing \"bad\""),
        "{err}"
    );
}

#[test]
fn outputs_are_handed_over_in_order_and_an_error_still_wins() {
    let mut set = Templates::default();
    // Outputs big enough to go over in several batches.
    set.parse("big", "{{range 70000}}x{{end}}").unwrap();
    set.parse("small", "{{.name}}").unwrap();
    set.parse("bad", "{{index .name 9}}").unwrap();
    let data = data();
    let jobs = [
        ("small", &data),
        ("big", &data),
        ("small", &data),
        ("big", &data),
    ];
    let mut seen = Vec::new();
    let lengths = set
        .execute_each_then(&jobs, |index, output| {
            seen.push(index);
            output.len()
        })
        .unwrap();
    assert_eq!(lengths, [3, 70000, 3, 70000]);
    assert_eq!(seen, [0, 1, 2, 3]);
    // Earlier outputs were handled; the execution error is the answer.
    let mut handled = 0;
    let err = set
        .execute_each_then(&[("big", &data), ("bad", &data)], |_, _| handled += 1)
        .unwrap_err();
    assert_eq!(handled, 1);
    assert!(err.to_string().contains("executing \"bad\""), "{err}");
}

#[derive(Debug)]
struct Files;

impl GoObject for Files {
    fn type_name(&self) -> &str {
        "files.Files"
    }
    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (name, args) {
            ("Get", [Value::String(path)]) => Some(Ok(format!("contents of {path}").into())),
            ("Get", _) => Some(Err(format!(
                "wrong number of args for Get: want 1 got {}",
                args.len()
            ))),
            _ => None,
        }
    }
    fn print(&self) -> String {
        "map[]".into()
    }
}

#[test]
fn methods_with_arguments_on_go_objects() {
    let data = map(&[("Files", Value::Object(Arc::new(Files)))]);
    let out = run_with(
        Options::default(),
        "{{.Files.Get \"a.txt\"}}|{{\"b\" | .Files.Get}}",
        &data,
    );
    assert_eq!(out.unwrap(), "contents of a.txt|contents of b");
    let err = run_with(Options::default(), "{{.Files.Nope}}", &data).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("can't evaluate field Nope in type files.Files"),
        "{err}"
    );
}

#[test]
fn functions_can_include_and_render() {
    let mut set = Templates::default();
    add_include(&mut set);
    set.add_function(
        "tpl",
        Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| match args {
            [Value::String(text), dot] => cx.render(text, dot).map(Value::from),
            _ => Err("tpl wants a text and a value".into()),
        }),
    );
    set.parse("t", "{{define \"x\"}}<{{.}}>{{end}}{{include \"x\" .name | printf \"%q\"}} {{tpl \"{{.name}}!\" .}}")
        .unwrap();
    assert_eq!(set.execute("t", &data()).unwrap(), "\"<web>\" web!");
    // An empty text renders empty: it does not run the template calling
    // `tpl` again (which would recurse until the depth limit).
    set.parse("e", "[{{tpl \"\" .}}][{{tpl \"  \" .}}]")
        .unwrap();
    assert_eq!(set.execute("e", &data()).unwrap(), "[][  ]");
}

#[test]
fn execution_is_bounded() {
    let limited = |limits: Limits| Options {
        limits,
        ..Options::default()
    };
    let steps = run_with(
        limited(Limits {
            max_steps: 1_000,
            ..Limits::default()
        }),
        "{{range 100000}}x{{end}}",
        &data(),
    );
    assert!(
        steps
            .unwrap_err()
            .to_string()
            .contains("exceeded 1000 steps")
    );
    let output = run_with(
        limited(Limits {
            max_output: 100,
            ..Limits::default()
        }),
        "{{range 1000}}xx{{end}}",
        &data(),
    );
    assert!(
        output
            .unwrap_err()
            .to_string()
            .contains("output exceeded 100 bytes")
    );
    let recursion = run_with(
        Options::default(),
        "{{define \"loop\"}}{{template \"loop\" .}}{{end}}{{template \"loop\" .}}",
        &data(),
    );
    assert!(
        recursion
            .unwrap_err()
            .to_string()
            .contains("exceeded maximum template depth (1000)")
    );
}
