//! Plain directories, as Argo CD's `directory` source renders them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: panics are its failure reports

use std::fs;

use gitplane_render::{
    DirectoryOptions, RelPath, RenderOptions, Root, SourceKind, detect_source, render,
};

fn repo() -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    let files = [
        ("b.yaml", cm("b")),
        ("a.yml", cm("a")),
        (
            "c.json",
            r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#.to_string(),
        ),
        ("README.md", "# not a manifest".to_string()),
        ("values.txt", "ignored".to_string()),
        ("sub/d.yaml", cm("d")),
        ("sub/deeper/e.yaml", cm("e") + "---\n" + &cm("e2")),
        (".github/workflow.yaml", "name: ci\non: push\n".to_string()),
    ];
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let root = Root::open(dir.path(), 1 << 20).unwrap();
    (dir, root)
}

fn names(root: &Root, directory: DirectoryOptions) -> Vec<String> {
    let options = RenderOptions {
        directory,
        ..RenderOptions::default()
    };
    render(root, &RelPath::root(), &options)
        .unwrap()
        .iter()
        .map(|o| o.name().to_string())
        .collect()
}

#[test]
fn top_level_only_by_default_in_path_order() {
    let (_d, root) = repo();
    assert_eq!(
        detect_source(&root, &RelPath::root()).unwrap(),
        SourceKind::Directory
    );
    assert_eq!(names(&root, DirectoryOptions::default()), ["a", "b", "c"]);
}

#[test]
fn recurse_skips_dot_directories() {
    let (_d, root) = repo();
    let all = names(
        &root,
        DirectoryOptions {
            recurse: true,
            ..DirectoryOptions::default()
        },
    );
    assert_eq!(all, ["a", "b", "c", "d", "e", "e2"]);
}

#[test]
fn include_and_exclude_globs() {
    let (_d, root) = repo();
    let only_yaml = DirectoryOptions {
        recurse: true,
        include: Some("{*.yaml,*.yml}".into()),
        ..DirectoryOptions::default()
    };
    assert_eq!(names(&root, only_yaml), ["a", "b", "d", "e", "e2"]);
    let no_sub = DirectoryOptions {
        recurse: true,
        exclude: Some("sub/deeper/*".into()),
        ..DirectoryOptions::default()
    };
    assert_eq!(names(&root, no_sub), ["a", "b", "c", "d"]);
}

#[test]
fn kubernetes_yaml_rules_apply_to_plain_manifests() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("d.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nspec:\n  enabled: yes\n  mode: 0755\n").unwrap();
    let root = Root::open(dir.path(), 1 << 20).unwrap();
    let objects = render(&root, &RelPath::root(), &RenderOptions::default()).unwrap();
    assert_eq!(
        objects[0].get(&["spec", "enabled"]),
        Some(&serde_json::json!(true))
    );
    assert_eq!(
        objects[0].get(&["spec", "mode"]),
        Some(&serde_json::json!(493))
    );
}
