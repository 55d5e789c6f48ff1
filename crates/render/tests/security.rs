//! Git content is hostile: nothing a repository says may make the renderer read
//! outside its root, and no error may echo the content of a refused file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: panics are its failure reports

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use gitplane_render::{DirectoryOptions, RelPath, RenderError, RenderOptions, Root, render};

const SECRET: &str = "TOP-SECRET-OUTSIDE-CONTENT";

/// A scratch area with `repo/` (the root) and a secret file next to it.
fn setup() -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("repo/app")).unwrap();
    fs::write(
        dir.path().join("outside.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: stolen}}\ndata: {{s: {SECRET}}}\n"
        ),
    )
    .unwrap();
    let root = Root::open(&dir.path().join("repo"), 1 << 20).unwrap();
    (dir, root)
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn render_app(root: &Root, options: &RenderOptions) -> Result<usize, RenderError> {
    render(root, &RelPath::root().join("app"), options).map(|objects| objects.len())
}

fn assert_refused(result: Result<usize, RenderError>) {
    let err = result.expect_err("must be refused");
    let text = err.to_string();
    assert!(!text.contains(SECRET), "error leaks content: {text}");
    assert!(
        matches!(
            err,
            RenderError::PathEscape { .. } | RenderError::Kustomize { .. }
        ),
        "unexpected error kind: {text}"
    );
}

#[test]
fn kustomize_resource_leaving_the_root() {
    let (dir, root) = setup();
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources:\n- ../../outside.yaml\n",
    );
    assert_refused(render_app(&root, &RenderOptions::default()));
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources:\n- /etc/passwd\n",
    );
    assert_refused(render_app(&root, &RenderOptions::default()));
}

#[test]
fn kustomize_base_directory_leaving_the_root() {
    let (dir, root) = setup();
    fs::create_dir_all(dir.path().join("evil-base")).unwrap();
    write(
        dir.path(),
        "evil-base/kustomization.yaml",
        "resources:\n- ../outside.yaml\n",
    );
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources:\n- ../../evil-base\n",
    );
    assert_refused(render_app(&root, &RenderOptions::default()));
}

#[test]
fn symlink_to_etc_passwd_in_a_directory_app() {
    let (dir, root) = setup();
    write(
        &dir.path().join("repo"),
        "app/ok.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
    );
    symlink("/etc/passwd", dir.path().join("repo/app/passwd.yaml")).unwrap();
    assert_refused(render_app(&root, &RenderOptions::default()));
}

#[test]
fn symlink_to_a_file_outside_as_kustomize_resource() {
    let (dir, root) = setup();
    symlink(
        dir.path().join("outside.yaml"),
        dir.path().join("repo/app/link.yaml"),
    )
    .unwrap();
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources:\n- link.yaml\n",
    );
    assert_refused(render_app(&root, &RenderOptions::default()));
}

#[test]
fn symlinked_directory_pointing_outside() {
    let (dir, root) = setup();
    symlink(dir.path(), dir.path().join("repo/app/up")).unwrap();
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources:\n- up/outside.yaml\n",
    );
    assert_refused(render_app(&root, &RenderOptions::default()));
    // A recursive directory render refuses the symlink too.
    fs::remove_file(dir.path().join("repo/app/kustomization.yaml")).unwrap();
    let options = RenderOptions {
        directory: DirectoryOptions {
            recurse: true,
            ..DirectoryOptions::default()
        },
        ..RenderOptions::default()
    };
    assert_refused(render_app(&root, &options));
}

#[test]
fn generator_files_leaving_the_root() {
    let (dir, root) = setup();
    for source in [
        "files: [../../outside.yaml]",
        "envs: [../../outside.yaml]",
        "files: [k=/etc/passwd]",
    ] {
        write(
            &dir.path().join("repo"),
            "app/kustomization.yaml",
            &format!("configMapGenerator:\n- name: g\n  {source}\n"),
        );
        assert_refused(render_app(&root, &RenderOptions::default()));
    }
}

#[test]
fn patch_files_leaving_the_root() {
    let (dir, root) = setup();
    write(
        &dir.path().join("repo"),
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\n",
    );
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources: [cm.yaml]\npatches:\n- path: ../../outside.yaml\n",
    );
    assert_refused(render_app(&root, &RenderOptions::default()));
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources: [cm.yaml]\npatchesStrategicMerge:\n- ../../outside.yaml\n",
    );
    assert_refused(render_app(&root, &RenderOptions::default()));
}

#[test]
fn a_file_in_a_sibling_directory_is_refused_like_kustomize_does() {
    let (dir, root) = setup();
    write(
        &dir.path().join("repo"),
        "shared/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
    );
    write(
        &dir.path().join("repo"),
        "app/kustomization.yaml",
        "resources:\n- ../shared/cm.yaml\n",
    );
    let err = render_app(&root, &RenderOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("not in or below the kustomization directory"),
        "{err}"
    );
}

#[test]
fn oversized_and_invalid_files_are_refused_with_positions() {
    let (dir, _) = setup();
    let root = Root::open(&dir.path().join("repo"), 64).unwrap();
    write(
        &dir.path().join("repo"),
        "app/big.yaml",
        &"# padding\n".repeat(20),
    );
    let err = render_app(&root, &RenderOptions::default()).unwrap_err();
    assert!(err.to_string().contains("larger than the limit"), "{err}");

    let root = Root::open(&dir.path().join("repo"), 1 << 20).unwrap();
    fs::remove_file(dir.path().join("repo/app/big.yaml")).unwrap();
    fs::write(
        dir.path().join("repo/app/bad.yaml"),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \xff\n",
    )
    .unwrap();
    let err = render_app(&root, &RenderOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "app/bad.yaml:4:9: invalid UTF-8");
}
