//! Files protoreg is pointed at that are not regular files: a FIFO (whose open blocks until
//! someone writes) and `/dev/zero` (which never ends) are refused at once with an error
//! naming them, never waited on or read. Each run is bounded, so a regression fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::bounded::run_within;
use common::ops::*;
use common::*;
use protoreg::operate::oci_layout::Layout;
use protoreg::pipeline::verify::Sha256;

const LIMIT: Duration = Duration::from_secs(30);

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn within(cmd: &mut Command) -> Output {
    run_within(cmd, LIMIT).expect("protoreg blocked on a file that is not a regular file")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn a_readme_that_is_a_fifo_or_a_device_is_refused_at_once() {
    let tmp = scratch();
    let pins = tmp.path().join("pins.bzl");
    std::fs::write(&pins, "TOOLS = {}\nPINS = {}\nPROVENANCE = {}\n").unwrap();
    let fifo = tmp.path().join("README.md");
    mkfifo(&fifo);
    for readme in [fifo.as_path(), Path::new("/dev/zero")] {
        let o = within(
            protoreg()
                .current_dir(tmp.path())
                .env("GITHUB_API_URL", "http://127.0.0.1:9")
                .env_remove("GITHUB_TOKEN")
                .args(["bump", "protoc", "36.2", "--dry-run", "--pins"])
                .arg(&pins)
                .arg("--readme")
                .arg(readme),
        );
        assert_eq!(o.status.code(), Some(2), "{readme:?}: {}", text(&o));
        let err = stderr(&o);
        assert!(err.contains(&readme.display().to_string()), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        assert!(err.contains("hint:"), "{err}");
    }
}

/// A layout `ROOT/tools/protoc` with tag `v1`: one small layer and the empty config. Returns
/// the layout's directory, the manifest's digest and the layer's.
fn small_layout(root: &Path) -> (PathBuf, Sha256, Sha256) {
    use protoreg::artifact;
    let dir = root.join("tools/protoc");
    let l = Layout::new(dir.clone());
    let config = l.put_blob_bytes(artifact::EMPTY_CONFIG).unwrap();
    let layer = l.put_blob_bytes(b"a layer").unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": artifact::MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": artifact::EMPTY_MEDIA_TYPE, "digest": config.oci(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer.oci(), "size": 7}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest = l
        .put_manifest(Some("v1"), &bytes, artifact::MANIFEST_MEDIA_TYPE)
        .unwrap();
    (dir, manifest, layer)
}

fn mirror_from(ws: &Workspace, src: &Path) -> Output {
    within(ws.cmd().args([
        "mirror",
        "--from",
        &format!("oci-layout:{}", src.display()),
        "--to",
        &format!("oci-layout:{}", ws.dir.path().join("dst").display()),
    ]))
}

#[test]
fn a_layout_index_that_is_a_fifo_is_refused_at_once() {
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let src = ws.dir.path().join("src");
    let (dir, _, _) = small_layout(&src);
    // The control: the layout as written mirrors.
    let o = mirror_from(&ws, &src);
    assert!(o.status.success(), "{}", text(&o));
    let index = dir.join("index.json");
    mkfifo(&index);
    let o = mirror_from(&ws, &src);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&index.display().to_string()), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_layout_manifest_or_layer_that_is_a_fifo_fails_that_source_at_once() {
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let src = ws.dir.path().join("src");
    let (dir, manifest, layer) = small_layout(&src);
    for digest in [&manifest, &layer] {
        let _ = std::fs::remove_dir_all(ws.dir.path().join("dst"));
        let blob = dir.join("blobs/sha256").join(digest.hex());
        let kept = std::fs::read(&blob).unwrap();
        mkfifo(&blob);
        let o = mirror_from(&ws, &src);
        assert_eq!(o.status.code(), Some(1), "{digest}: {}", text(&o));
        let err = stderr(&o);
        assert!(err.contains(&blob.display().to_string()), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_file(&blob).unwrap();
        std::fs::write(&blob, kept).unwrap();
    }
}

#[test]
fn materialize_from_a_layout_whose_blob_is_a_fifo_fails_at_once() {
    let p = pin(&fixture(PROTOC_ZIP));
    let tmp = scratch();
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let blob = layout.join("blobs/sha256").join(p.sha256.hex());
    mkfifo(&blob);
    let out = tmp.path().join("out");
    let o = within(
        protoreg()
            .args(materialize_args(&p, "zip", &tmp.path().join("cache"), &out))
            .arg("--source")
            .arg(format!("oci-layout:{}", layout.display())),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&blob.display().to_string()), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_archive_or_image_that_is_a_fifo_or_a_device_is_refused_at_once() {
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let fifo = ws.dir.path().join("named.pipe");
    mkfifo(&fifo);
    let p = pin(&fixture(PROTOC_ZIP));
    for file in [fifo.as_path(), Path::new("/dev/zero")] {
        let out = ws.dir.path().join("out");
        let o = within(
            protoreg()
                .arg("extract")
                .arg(file)
                .args(["--sha256", p.sha256.hex(), "--format", "zip", "--out"])
                .arg(&out),
        );
        assert_eq!(o.status.code(), Some(2), "{file:?}: {}", text(&o));
        assert!(stderr(&o).contains("not a regular file"), "{}", text(&o));
        assert!(!out.exists());
        let o = within(ws.cmd().args([
            "baseline",
            "push",
            file.to_str().unwrap(),
            "--repository",
            "images/x",
            "--tag",
            "v1",
        ]));
        assert_eq!(o.status.code(), Some(2), "{file:?}: {}", text(&o));
        assert!(
            stderr(&o).contains("is not a descriptor set"),
            "{}",
            text(&o)
        );
    }
}
