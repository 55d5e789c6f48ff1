//! Helm conformance: the fixture chart under `tests/helm/charts/web` (written
//! for gitplane) rendered with several option sets must equal, byte for
//! byte, what `helm template` 4.1.4 printed for the same options, kept in
//! `tests/helm/expected/`. To regenerate an expected file, run the helm
//! command in its case's comment from the chart directory.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

use std::path::Path;

use gitplane_render::helm::{HelmOptions, template};
use gitplane_render::{RelPath, Root};

fn root() -> Root {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm/charts");
    Root::open(&dir, 1 << 20).unwrap()
}

fn web() -> RelPath {
    root().resolve(&RelPath::root(), "web").unwrap()
}

fn options(name: &str) -> HelmOptions {
    HelmOptions {
        release_name: name.into(),
        ..HelmOptions::default()
    }
}

fn expect(case: &str, options: &HelmOptions) {
    let expected = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/helm/expected/{case}.yaml")),
    )
    .unwrap();
    let rendered = template(&root(), &web(), options).unwrap();
    assert_eq!(rendered.output, expected, "case {case}");
}

#[test]
fn set_flags_and_crds() {
    // helm template demo . --set replicaCount=3 --set image.tag=1.0 --include-crds
    expect(
        "set-and-crds",
        &HelmOptions {
            set: vec!["replicaCount=3".into(), "image.tag=1.0".into()],
            include_crds: true,
            ..options("demo")
        },
    );
}

#[test]
fn a_values_file_and_a_namespace() {
    // helm template rel . -f extra.yaml --namespace team-a
    expect(
        "values-file",
        &HelmOptions {
            value_files: vec!["extra.yaml".into()],
            namespace: "team-a".into(),
            ..options("rel")
        },
    );
}

#[test]
fn kube_version_no_hooks_and_set_string() {
    // helm template rel . --kube-version 1.31.2-gke.7 --no-hooks --set-string replicaCount=5
    expect(
        "kube-version",
        &HelmOptions {
            kube_version: Some("1.31.2-gke.7".into()),
            no_hooks: true,
            set_string: vec!["replicaCount=5".into()],
            ..options("rel")
        },
    );
}

#[test]
fn a_condition_turns_a_dependency_off() {
    // helm template rel . --set cache.enabled=false -a example.com/v1 --skip-tests
    expect(
        "condition-off",
        &HelmOptions {
            set: vec!["cache.enabled=false".into()],
            api_versions: vec!["example.com/v1".into()],
            skip_tests: true,
            ..options("rel")
        },
    );
}

#[test]
fn errors_read_as_helm_words_them() {
    let too_old = template(
        &root(),
        &web(),
        &HelmOptions {
            kube_version: Some("1.24.0".into()),
            ..options("rel")
        },
    )
    .unwrap_err();
    assert!(
        too_old.to_string().ends_with(
            "chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.24.0"
        ),
        "{too_old}"
    );
    let bad_name = template(&root(), &web(), &options("Bad_Name")).unwrap_err();
    assert!(
        bad_name.to_string().contains("invalid release name"),
        "{bad_name}"
    );
    let bad_set = template(
        &root(),
        &web(),
        &HelmOptions {
            set: vec!["noequals".into()],
            ..options("rel")
        },
    )
    .unwrap_err();
    assert!(bad_set.to_string().contains("has no value"), "{bad_set}");
}

#[test]
fn values_are_validated_against_the_charts_schemas() {
    // helm template rel . --set service.port=0 --set image.pullPolicy=Sometimes
    //   --set cache.port=70000 (helm 4.1.4; the order of the lines within a
    //   chart is the validator's own)
    let error = template(
        &root(),
        &web(),
        &HelmOptions {
            set: vec![
                "service.port=0".into(),
                "image.pullPolicy=Sometimes".into(),
                "cache.port=70000".into(),
            ],
            ..options("rel")
        },
    )
    .unwrap_err()
    .to_string();
    let report = error
        .split_once(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n",
        )
        .map(|(_, report)| report)
        .unwrap_or_else(|| panic!("{error}"));
    let (web_report, cache) = report.split_once("cache:\n").unwrap();
    let mut web_lines: Vec<&str> = web_report.lines().collect();
    web_lines.sort_unstable();
    assert_eq!(
        web_lines,
        [
            "- at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
            "- at '/service/port': minimum: got 0, want 1",
            "web:",
        ]
    );
    assert_eq!(cache, "- at '/port': maximum: got 70,000, want 65,535\n");
    // --skip-schema-validation renders anyway.
    let rendered = template(
        &root(),
        &web(),
        &HelmOptions {
            set: vec!["service.port=0".into()],
            skip_schema_validation: true,
            ..options("rel")
        },
    )
    .unwrap();
    assert!(rendered.output.contains("port: 0"));
}

#[test]
fn random_values_repeat_per_release() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("r");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: r\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/s.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: {{ randAlphaNum 16 | quote }}\n",
    )
    .unwrap();
    let root = Root::open(dir.path(), 1 << 20).unwrap();
    let path = root.resolve(&RelPath::root(), "r").unwrap();
    let render = |name: &str| template(&root, &path, &options(name)).unwrap().output;
    assert_eq!(render("a"), render("a"));
    assert_ne!(render("a"), render("b"));
    // Each template calling a random function is named, once per function,
    // also when the call is in a helper it includes.
    std::fs::write(
        chart.join("templates/_helpers.tpl"),
        "{{ define \"r.id\" }}{{ uuidv4 }}{{ end }}",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/c.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  id: {{ include \"r.id\" . }}\n  again: {{ include \"r.id\" . }}\n",
    )
    .unwrap();
    let (objects, notes) =
        gitplane_render::helm::render_chart(&root, &path, &options("a")).unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("r/templates/c.yaml calls uuidv4 (in r.id): "),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("r/templates/s.yaml calls randAlphaNum: "),
        "{notes:?}"
    );
    // A key generator makes new keys here too, and the note says so.
    std::fs::write(
        chart.join("templates/tls.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\nstringData:\n  ca.crt: {{ (genCA \"ca\" 30).Cert | quote }}\n",
    )
    .unwrap();
    let (_, notes) = gitplane_render::helm::render_chart(&root, &path, &options("a")).unwrap();
    assert!(
        notes[2]
            .starts_with("r/templates/tls.yaml calls genCA: it makes a new key on every render"),
        "{notes:?}"
    );
    // Reading the clock is noted (`date` of a float64 is the current
    // time, as in Sprig); formatting a given date is not.
    std::fs::write(
        chart.join("templates/t.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\ndata:\n  epoch: {{ date \"2006\" 0 | quote }}\n  at: {{ now | date \"2006\" | quote }}\n  float: {{ date \"2006\" 1.5 | quote }}\n",
    )
    .unwrap();
    let (_, notes) = gitplane_render::helm::render_chart(&root, &path, &options("a")).unwrap();
    assert_eq!(notes.len(), 5, "{notes:?}");
    assert!(
        notes[2].starts_with("r/templates/t.yaml calls date, which reads the clock: "),
        "{notes:?}"
    );
    assert!(notes[3].starts_with("r/templates/t.yaml calls now, which reads the clock: "));
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn subcharts_and_charts_packed_as_archives_render_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("web");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm/charts/web"),
        &chart,
    );
    // charts/cache becomes charts/cache-1.2.0.tgz, as `helm dependency build` leaves it.
    let pack = |source: &Path, name: &str| -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all(name, source).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    };
    let cache = chart.join("charts/cache");
    std::fs::write(chart.join("charts/cache-1.2.0.tgz"), pack(&cache, "cache")).unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
    // `helm package` leaves out what .helmignore names; packing by hand, so do we.
    std::fs::remove_file(chart.join("files/notes.bak")).unwrap();
    std::fs::write(dir.path().join("web-0.3.1.tgz"), pack(&chart, "web")).unwrap();
    let root = Root::open(dir.path(), 1 << 20).unwrap();
    let expected = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm/expected/set-and-crds.yaml"),
    )
    .unwrap();
    let options = HelmOptions {
        set: vec!["replicaCount=3".into(), "image.tag=1.0".into()],
        include_crds: true,
        ..options("demo")
    };
    for path in ["web", "web-0.3.1.tgz"] {
        let path = root.resolve(&RelPath::root(), path).unwrap();
        assert_eq!(
            template(&root, &path, &options).unwrap().output,
            expected,
            "{path:?}"
        );
    }
}

#[test]
fn a_chart_cache_loads_a_chart_once_and_templates_parse_by_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let write_chart = |name: &str, template: &str| {
        let chart = dir.path().join(name);
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        )
        .unwrap();
        std::fs::write(chart.join("values.yaml"), "greeting: hello\n").unwrap();
        std::fs::write(chart.join("templates/cm.yaml"), template).unwrap();
    };
    let config_map = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}\ndata:\n  {data}\n"
        )
    };
    // Two charts of one name whose template of one path differs.
    write_chart("one", &config_map("a: {{ .Values.greeting }}"));
    write_chart("two", &config_map("b: {{ .Values.greeting | upper }}"));
    let root = Root::open(dir.path(), 1 << 20).unwrap();
    let cache = gitplane_render::helm::ChartCache::default();
    let render = |chart: &str, release: &str, cached: bool| {
        let path = root.resolve(&RelPath::root(), chart).unwrap();
        let options = HelmOptions {
            chart_cache: cached.then(|| cache.clone()),
            ..options(release)
        };
        template(&root, &path, &options).unwrap().output
    };
    let expected = |name: &str, data: &str| {
        format!(
            "---\n# Source: app/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {data}\n"
        )
    };
    assert_eq!(render("one", "r1", true), expected("r1", "a: hello"));
    assert_eq!(render("two", "r1", true), expected("r1", "b: HELLO"));
    assert_eq!(render("one", "r2", false), expected("r2", "a: hello"));
    // The cache answers from what it loaded: a chart given to one must not
    // change (the controller's are per-commit snapshots).
    std::fs::write(dir.path().join("one/values.yaml"), "greeting: bye\n").unwrap();
    assert_eq!(render("one", "r3", true), expected("r3", "a: hello"));
    assert_eq!(render("one", "r3", false), expected("r3", "a: bye"));
}

#[test]
fn a_disabled_dependency_goes_also_when_its_version_is_out_of_range() {
    // Helm removes every chart named as a disabled dependency; one whose
    // version the range does not take is otherwise kept, as an extra chart.
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: db\n  version: 1.x.x\n  condition: db.enabled\n",
    );
    write("app/values.yaml", "db:\n  enabled: false\n");
    write(
        "app/charts/db/Chart.yaml",
        "apiVersion: v2\nname: db\nversion: 2.0.0\n",
    );
    write(
        "app/charts/db/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\n",
    );
    let root = Root::open(dir.path(), 1 << 20).unwrap();
    let path = root.resolve(&RelPath::root(), "app").unwrap();
    let render = |set: Vec<String>| {
        let options = HelmOptions {
            set,
            ..options("r")
        };
        template(&root, &path, &options).unwrap().output
    };
    assert!(!render(Vec::new()).contains("name: db"));
    assert!(render(vec!["db.enabled=true".into()]).contains("name: db"));
}

#[test]
fn import_values_in_both_forms() {
    // helm template x . (in charts/imports)
    let expected = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm/expected/imports.yaml"),
    )
    .unwrap();
    let path = root().resolve(&RelPath::root(), "imports").unwrap();
    let rendered = template(&root(), &path, &options("x")).unwrap();
    assert_eq!(rendered.output, expected);
    assert_eq!(
        rendered.warnings,
        ["import-values of chart c: no table \"missing.table\" to import"]
    );
}

#[test]
fn kustomize_helm_charts_render_as_kubectl_kustomize_enable_helm() {
    // kubectl kustomize --enable-helm --helm-command <helm 3.17.3> . (in tests/helm)
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm");
    let root = Root::open(&dir, 1 << 20).unwrap();
    let objects = gitplane_render::render(
        &root,
        &RelPath::root(),
        &gitplane_render::RenderOptions::default(),
    )
    .unwrap();
    let expected = std::fs::read_to_string(dir.join("expected/kustomize.yaml")).unwrap();
    assert_eq!(
        gitplane_object::yaml::objects_to_yaml_stream(&objects),
        expected
    );
}

#[test]
fn kustomize_helm_charts_with_a_repo_are_pulled_through_the_puller() {
    // The fixture kustomization, its chart named with a repo and version
    // and not in the repository: pulled (here, packed from the fixture),
    // it renders as the chart in the repository does.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    for file in ["kustomization.yaml", "extra-cm.yaml", "more-values.yaml"] {
        std::fs::copy(fixture.join(file), work.join(file)).unwrap();
    }
    let kustomization = std::fs::read_to_string(work.join("kustomization.yaml")).unwrap();
    std::fs::write(
        work.join("kustomization.yaml"),
        kustomization.replace(
            "  - name: web\n",
            "  - name: web\n    repo: https://charts.example.com\n    version: 0.3.x\n",
        ),
    )
    .unwrap();
    let archive = dir.path().join("pulled/web.tgz");
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    // Packed as `helm package` packs it: what .helmignore names left out.
    let chart = dir.path().join("chart");
    copy_tree(&fixture.join("charts/web"), &chart);
    std::fs::remove_file(chart.join("files/notes.bak")).unwrap();
    tar.append_dir_all("web", &chart).unwrap();
    std::fs::write(&archive, tar.into_inner().unwrap().finish().unwrap()).unwrap();

    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    let pulled = archive.clone();
    let options = gitplane_render::RenderOptions {
        chart_puller: Some(gitplane_render::Callback(std::sync::Arc::new(
            move |repo: &str, chart: &str, version: &str| {
                log.lock()
                    .unwrap()
                    .push(format!("{repo} {chart} {version}"));
                Ok(pulled.clone())
            },
        ))),
        ..gitplane_render::RenderOptions::default()
    };
    let root = Root::open(&work, 1 << 20).unwrap();
    let objects = gitplane_render::render(&root, &RelPath::root(), &options).unwrap();
    let expected = std::fs::read_to_string(fixture.join("expected/kustomize.yaml")).unwrap();
    assert_eq!(
        gitplane_object::yaml::objects_to_yaml_stream(&objects),
        expected
    );
    assert_eq!(
        *asked.lock().unwrap(),
        ["https://charts.example.com web 0.3.x"]
    );

    // Without a puller the missing chart is an error saying where it was
    // looked for.
    let error = gitplane_render::render(
        &root,
        &RelPath::root(),
        &gitplane_render::RenderOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("charts/web-0.3.x/web"), "{error}");
    assert!(error.contains("no chart here"), "{error}");
}
