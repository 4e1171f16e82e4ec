//! The tool catalogue is data: a tool protoreg was not built with, declared in a workspace's
//! `toolchains/tools.bzl`, goes through bump (from a static host on loopback), publish (to
//! Debian's docker-registry), materialize (from the registry, upstream gone) and generates
//! code with its real binary (Debian's grpc_cpp_plugin, repacked as an upstream release).
//! Wrong declarations are refused with the file, the line and the key.

mod common;

use std::path::{Path, PathBuf};

use common::http::{HttpServer, Route};
use common::ops::*;
use common::*;

const SHIPPED: &str = include_str!("../toolchains/tools.bzl");
const VERSION: &str = "1.51.1";

/// The shipped catalogue with `extra` entries added to `TOOLS`.
fn catalogue_with(extra: &str) -> String {
    let (head, tail) = SHIPPED
        .rsplit_once("\n}\n")
        .expect("tools.bzl ends its TOOLS dict with `}`");
    format!("{head}\n{extra}}}\n{tail}")
}

/// Pins files these tests read in this process name tools of their workspaces' catalogues:
/// point the process-wide catalogue at one declaring them all, for the whole run.
fn in_process_catalogue() {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("catalogue-tests-tools.bzl");
        let tools = grpc_cpp("http://127.0.0.1:9") + &protoc_xz("http://127.0.0.1:9");
        std::fs::write(&path, catalogue_with(&tools)).unwrap();
        path
    });
    protoreg::maintain::tools::configure(Some(file), None);
}

/// The declaration under test: a gRPC C++ plugin on a static host, one tar.gz per platform
/// with a `.sha256` beside it (Maven Central's shape), its binary not named protoc-gen-*.
fn grpc_cpp(base: &str) -> String {
    format!(
        "    \"grpc-cpp\": {{\n\
         \x20       \"upstream\": \"url\",\n\
         \x20       \"url\": \"{base}/grpc/{{version}}/{{asset}}\",\n\
         \x20       \"checksum_url\": \"{base}/grpc/{{version}}/{{asset}}.sha256\",\n\
         \x20       \"asset\": \"grpc-cpp-plugin-{{version}}-{{protoc}}.tar.gz\",\n\
         \x20       \"platforms\": [\"linux-aarch64\", \"linux-x86_64\"],\n\
         \x20       \"strip_prefix\": \"grpc-cpp-plugin-{VERSION}\",\n\
         \x20       \"binaries\": [\"bin/grpc_cpp_plugin\"],\n\
         \x20       \"oci_repository\": \"plugins/grpc-cpp\",\n\
         \x20       \"plugin_name\": \"grpc\",\n\
         \x20   }},\n"
    )
}

/// A tool shipped as `.tar.xz` in Node's layout (one top directory): the protoc fixture
/// repacked by `tar -cJf`, on a static host with a `.sha256` beside it.
fn protoc_xz(base: &str) -> String {
    format!(
        "    \"protoc-xz\": {{\n\
         \x20       \"upstream\": \"url\",\n\
         \x20       \"url\": \"{base}/xz/{{version}}/{{asset}}\",\n\
         \x20       \"checksum_url\": \"{base}/xz/{{version}}/{{asset}}.sha256\",\n\
         \x20       \"asset\": \"protoc-{{version}}-{{platform}}.tar.xz\",\n\
         \x20       \"platforms\": [\"linux-x86_64\"],\n\
         \x20       \"strip_prefix\": \"{{asset_stem}}\",\n\
         \x20       \"binaries\": [\"bin/protoc\"],\n\
         \x20       \"oci_repository\": \"tools/protoc-xz\",\n\
         \x20   }},\n"
    )
}

#[test]
fn a_tar_xz_tool_is_bumped_published_and_materialized() {
    let reg = RegistryServer::start();
    let upstream_files = scratch();
    let txz = pin(&xz::protoc_txz(upstream_files.path()));
    let name = txz.path.file_name().unwrap().to_str().unwrap().to_string();
    let sum = upstream_files.path().join("sum");
    std::fs::write(&sum, format!("{}  {name}\n", txz.sha256.hex())).unwrap();
    let server = HttpServer::start();
    server.route(&format!("/xz/36.2/{name}"), Route::File(txz.path.clone()));
    server.route(&format!("/xz/36.2/{name}.sha256"), Route::File(sum));
    let ws = workspace(&reg, &catalogue_with(&protoc_xz(&server.url(""))));
    let pins_path = ws.dir.path().join("toolchains/pins.bzl");
    in_process_catalogue();

    // bump: the asset's name makes the pin a tar.xz one.
    let o = ws.run(&["bump", "protoc-xz", "36.2"]);
    assert!(o.status.success(), "{}", text(&o));
    let pins = protoreg::maintain::pins::Pins::load(&pins_path).unwrap();
    let got = &pins.pins["protoc-xz"]["36.2"]["linux-x86_64"];
    assert_eq!(got.format, protoreg::pipeline::extract::Format::TarXz);
    assert_eq!((&got.sha256, got.size), (&txz.sha256, Some(txz.size)));
    let text_after = std::fs::read_to_string(&pins_path).unwrap();
    assert!(text_after.contains("(\"tar.xz\", "), "{text_after}");

    // publish: one layer of this project's tar+xz type, the upstream file byte for byte.
    let report = ws.json(&[
        "publish",
        "--tool",
        "protoc-xz",
        "--version",
        "36.2",
        "--json",
    ]);
    assert!(report.to_string().contains("published"), "{report}");
    let manifest = run(std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/{NS}/tools/protoc-xz:v36.2-linux-x86_64",
            reg.host
        )));
    assert!(manifest.status.success(), "{}", text(&manifest));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"], "application/vnd.buck2-protobuf.archive.v1.tar+xz",
        "{manifest}"
    );
    assert_eq!(manifest["layers"][0]["digest"], txz.sha256.oci());

    // materialize by name, upstream gone: from the registry, streamed and verified.
    drop(server);
    let out = ws.dir.path().join("protoc-xz");
    let o = ws.run(&[
        "materialize",
        "protoc-xz",
        "--platform",
        "linux-x86_64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(protoc_version(&out), "libprotoc 36.2");
}

/// An upstream-shaped release of Debian's grpc_cpp_plugin: `grpc-cpp-plugin-<v>/bin/…` in a
/// tar.gz per platform (the aarch64 one with a README so its bytes differ), and the sha256
/// of each in `<asset>.sha256`, served from a loopback static host.
fn static_host(dir: &Path) -> (HttpServer, Vec<(String, PathBuf)>) {
    let plugin = std::fs::read("/usr/bin/grpc_cpp_plugin")
        .expect("Debian's protobuf-compiler-grpc: run scripts/install-deps");
    let server = HttpServer::start();
    let mut assets = Vec::new();
    for (platform, extra) in [("linux-x86_64", false), ("linux-aarch_64", true)] {
        let name = format!("grpc-cpp-plugin-{VERSION}-{platform}.tar.gz");
        let prefix = format!("grpc-cpp-plugin-{VERSION}");
        let bin = format!("{prefix}/bin/grpc_cpp_plugin");
        let readme = format!("{prefix}/README");
        let mut files: Vec<(&str, u32, &[u8])> = vec![(bin.as_str(), 0o755, &plugin)];
        if extra {
            files.push((readme.as_str(), 0o644, b"gRPC C++ plugin\n"));
        }
        let path = tgz_files(dir, &name, &files);
        let p = pin(&path);
        let sum = dir.join(format!("{name}.sha256"));
        std::fs::write(&sum, format!("{}\n", p.sha256.hex())).unwrap();
        server.route(
            &format!("/grpc/{VERSION}/{name}"),
            Route::File(path.clone()),
        );
        server.route(&format!("/grpc/{VERSION}/{name}.sha256"), Route::File(sum));
        assets.push((name, path));
    }
    (server, assets)
}

/// The fixture protoc, materialized into the workspace: the tree holding bin/protoc.
fn materialized_protoc(ws: &Workspace) -> PathBuf {
    let host = HttpServer::start();
    let url = host.route("/protoc.zip", Route::File(fixture(PROTOC_ZIP)));
    let tree = ws.dir.path().join("protoc");
    let o = run(protoreg()
        .args(materialize_args(
            &pin(&fixture(PROTOC_ZIP)),
            "zip",
            &ws.cache(),
            &tree,
        ))
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    tree
}

/// A workspace whose `toolchains/` holds the catalogue and a pins file with protoc only.
fn workspace(reg: &RegistryServer, catalogue: &str) -> Workspace {
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let dir = ws.dir.path().join("toolchains");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tools.bzl"), catalogue).unwrap();
    let p = pin(&fixture(PROTOC_ZIP));
    let pins = format!(
        "DEFAULTS = {{\"protoc\": \"36.2\"}}\n\
         PINS = {{\"protoc\": {{\"36.2\": {{\"linux-x86_64\": (\"zip\", {}, \"{}\", \"https://github.com/protocolbuffers/protobuf/releases/download/v36.2/protoc-36.2-linux-x86_64.zip\")}}}}}}\n\
         PROVENANCE = {{\"protoc\": {{\"36.2\": \"test fixture\"}}}}\n",
        p.size, p.sha256
    );
    std::fs::write(dir.join("pins.bzl"), pins).unwrap();
    ws
}

#[test]
fn a_declared_plugin_is_bumped_published_materialized_and_generates_code() {
    let reg = RegistryServer::start();
    let upstream_files = scratch();
    let (server, assets) = static_host(upstream_files.path());
    let ws = workspace(&reg, &catalogue_with(&grpc_cpp(&server.url(""))));
    let pins_path = ws.dir.path().join("toolchains/pins.bzl");
    in_process_catalogue();

    // bump: the sha256 from each `.sha256`, the size the host states, the host's binary
    // downloaded and verified.
    let o = ws.run(&["bump", "grpc-cpp", VERSION]);
    assert!(o.status.success(), "{}", text(&o));
    let pins = protoreg::maintain::pins::Pins::load(&pins_path).unwrap();
    assert_eq!(pins.defaults["grpc-cpp"], VERSION);
    for (platform, (name, path)) in ["linux-x86_64", "linux-aarch64"].iter().zip(&assets) {
        let want = pin(path);
        let got = &pins.pins["grpc-cpp"][VERSION][*platform];
        assert_eq!(got.sha256, want.sha256, "{platform}");
        assert_eq!(got.size, Some(want.size), "{platform}");
        assert_eq!(got.url, server.url(&format!("/grpc/{VERSION}/{name}")));
        assert_eq!(got.format, protoreg::pipeline::extract::Format::TarGz);
    }
    let provenance = &pins.provenance["grpc-cpp"][VERSION];
    assert!(provenance.contains("checksum_url"), "{provenance}");
    // Pins stay in canonical form, with the new tool among the defaults.
    let text_after = std::fs::read_to_string(&pins_path).unwrap();
    assert_eq!(pins.render(), text_after);
    assert!(text_after.contains("    \"grpc-cpp\": \"1.51.1\",\n"));

    // publish: to the registry, verified against the checksums and the new pins; again is
    // a no-op.
    let report = ws.json(&[
        "publish",
        "--tool",
        "grpc-cpp",
        "--version",
        VERSION,
        "--json",
    ]);
    let outcomes = report["outcomes"].as_array().unwrap();
    let statuses: Vec<&str> = outcomes
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["published", "published", "index-published"],
        "{report}"
    );
    for o in outcomes {
        assert!(
            o["repository"]
                .as_str()
                .unwrap()
                .ends_with("plugins/grpc-cpp"),
            "{report}"
        );
    }
    let again = ws.json(&[
        "publish",
        "--tool",
        "grpc-cpp",
        "--version",
        VERSION,
        "--json",
    ]);
    for o in again["outcomes"].as_array().unwrap() {
        let status = o["status"].as_str().unwrap();
        assert!(!status.contains("published"), "{again}");
    }
    let versions = ws.json(&["versions", "grpc-cpp", "--json"]);
    assert!(versions.to_string().contains(VERSION), "{versions}");
    let tags = tag_digests(&reg, &format!("{NS}/plugins/grpc-cpp"));
    assert!(
        tags.iter().any(|(t, _)| t.contains("linux-x86_64")),
        "{tags:?}"
    );

    // materialize by name: upstream gone, so the registry (registry.yaml) serves it.
    drop(server);
    let out = ws.dir.path().join("plugin");
    let o = ws.run(&[
        "materialize",
        "grpc-cpp",
        "--platform",
        "linux-x86_64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let plugin = out.join("bin/grpc_cpp_plugin");
    assert!(is_file(&plugin));

    // ...and protoc (pinned, materialized the same way) runs it.
    let protoc_tree = materialized_protoc(&ws);
    let src = ws.dir.path().join("src");
    std::fs::create_dir_all(src.join("acme/v1")).unwrap();
    std::fs::write(
        src.join("acme/v1/greeter.proto"),
        "syntax = \"proto3\";\npackage acme.v1;\n\
         message HelloRequest { string name = 1; }\n\
         message HelloReply { string message = 1; }\n\
         service Greeter { rpc SayHello(HelloRequest) returns (HelloReply); }\n",
    )
    .unwrap();
    let gen = ws.dir.path().join("gen");
    std::fs::create_dir_all(&gen).unwrap();
    let o = run(std::process::Command::new(protoc_tree.join("bin/protoc"))
        .arg(format!("--plugin=protoc-gen-grpc={}", plugin.display()))
        .arg(format!("--grpc_out={}", gen.display()))
        .arg(format!("-I{}", src.display()))
        .arg("acme/v1/greeter.proto"));
    assert!(o.status.success(), "{}", text(&o));
    let header = std::fs::read_to_string(gen.join("acme/v1/greeter.grpc.pb.h")).unwrap();
    assert!(header.contains("class Greeter final"), "{header}");
    assert!(header.contains("SayHello"), "{header}");
}

/// Run `protoreg bump` against a workspace whose catalogue is `catalogue`.
fn with_catalogue(catalogue: &str) -> std::process::Output {
    let tmp = scratch();
    let dir = tmp.path().join("toolchains");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tools.bzl"), catalogue).unwrap();
    std::fs::write(
        dir.join("pins.bzl"),
        "DEFAULTS = {}\nPINS = {}\nPROVENANCE = {}\n",
    )
    .unwrap();
    run(protoreg()
        .current_dir(tmp.path())
        .env_remove("PROTOREG_PINS")
        // Nothing listens there: a catalogue that is accepted fails next, with exit 1.
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .args(["bump", "protoc", "36.2", "--dry-run"]))
}

#[test]
fn wrong_declarations_are_refused_with_file_line_and_key() {
    let entry = |body: &str| catalogue_with(&format!("    \"protoc-gen-x\": {{\n{body}    }},\n"));
    let good = "        \"upstream\": \"github\",\n\
                \x20       \"repository\": \"acme/x\",\n\
                \x20       \"tag\": \"v{version}\",\n\
                \x20       \"asset\": \"x-{version}-{goos}-{goarch}.tar.gz\",\n\
                \x20       \"platforms\": [\"linux-x86_64\"],\n\
                \x20       \"binaries\": [\"protoc-gen-x\"],\n\
                \x20       \"oci_repository\": \"plugins/protoc-gen-x\",\n";
    // The line of the key that is wrong, counted in the file as written.
    let line_of = |text: &str, needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap()
    };
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            good.replace("{goarch}", "{arch}"),
            "\"asset\": \"x-",
            "TOOLS[\"protoc-gen-x\"][\"asset\"]",
            "unknown placeholder `{arch}`",
        ),
        (
            good.replace("\"linux-x86_64\"]", "\"linux-riscv64\"]"),
            "\"platforms\": [\"linux-riscv64",
            "TOOLS[\"protoc-gen-x\"][\"platforms\"]",
            "unknown platform `linux-riscv64`",
        ),
        (
            good.replace("        \"binaries\": [\"protoc-gen-x\"],\n", ""),
            "\"protoc-gen-x\": {",
            "TOOLS[\"protoc-gen-x\"][\"binaries\"]",
            "missing",
        ),
        (
            good.replace("\"upstream\": \"github\"", "\"upstream\": \"gitlab\""),
            "\"upstream\": \"gitlab\"",
            "TOOLS[\"protoc-gen-x\"][\"upstream\"]",
            "unknown upstream `gitlab`",
        ),
        (
            format!("{good}        \"strip\": \"x\",\n"),
            "\"strip\": \"x\"",
            "TOOLS[\"protoc-gen-x\"][\"strip\"]",
            "unknown field",
        ),
        (
            good.replace("[\"protoc-gen-x\"],", "[\"../../etc/passwd\"],"),
            "\"binaries\": [\"../",
            "TOOLS[\"protoc-gen-x\"][\"binaries\"]",
            "`../../etc/passwd` is not a relative path inside the tree",
        ),
        (
            format!("{good}        \"platform_binaries\": {{\"windows-x86_64\": [\"x\"]}},\n"),
            "[\"x\"]}",
            "TOOLS[\"protoc-gen-x\"][\"platform_binaries\"][\"windows-x86_64\"]",
            "is not one of the tool's platforms",
        ),
        (
            format!("{good}        \"platform_binaries\": {{\"linux-x86_64\": [\"../x\"]}},\n"),
            "[\"../x\"]}",
            "TOOLS[\"protoc-gen-x\"][\"platform_binaries\"][\"linux-x86_64\"]",
            "must name the executables, as relative paths in the tree",
        ),
        // One path rule for every field that becomes a file name or a URL path segment.
        (
            good.replace("\"v{version}\"", "\"../../v{version}\""),
            "\"tag\": \"../",
            "TOOLS[\"protoc-gen-x\"][\"tag\"]",
            "`../../v{version}` is not a tag name",
        ),
        (
            good.replace("\"acme/x\"", "\"acme/..\""),
            "\"repository\": \"acme/..",
            "TOOLS[\"protoc-gen-x\"][\"repository\"]",
            "`acme/..` is not OWNER/REPO",
        ),
        (
            format!("{good}        \"checksum_file\": \"../sums-{{version}}.txt\",\n"),
            "\"checksum_file\": \"../",
            "TOOLS[\"protoc-gen-x\"][\"checksum_file\"]",
            "`../sums-{version}.txt` is not one plain file name",
        ),
        (
            good.replace("\"x-{version}", "\"/x-{version}"),
            "\"asset\": \"/x-",
            "TOOLS[\"protoc-gen-x\"][\"asset\"]",
            "`/x-{version}-{goos}-{goarch}.tar.gz` is not one plain file name (for linux-x86_64: `/x-1.0.0-linux-amd64.tar.gz`)",
        ),
    ];
    for (body, at, key, what) in cases {
        let text = entry(&body);
        let o = with_catalogue(&text);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{key}: {err}");
        let line = line_of(&text, at);
        assert!(
            err.contains(&format!("toolchains/tools.bzl:{line}: `{key}`: {what}")),
            "want line {line}, {key}, {what}:\n{err}"
        );
        assert!(err.contains("hint:"), "{err}");
    }
    // Not Starlark literals at all.
    let o = with_catalogue("TOOLS = {\"x\": load()}\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tools.bzl:1:"));
    // The shipped catalogue itself is accepted, and so is the same with a new entry.
    let o = with_catalogue(&entry(good));
    assert_ne!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn the_shipped_catalogue_declares_every_pinned_tool_and_the_issue_s_plugins() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("toolchains/tools.bzl");
    let catalogue = protoreg::maintain::tools::Catalogue::parse(SHIPPED, &file).unwrap();
    let names: Vec<&str> = catalogue.tools.iter().map(|t| t.name.as_str()).collect();
    for want in [
        "buf",
        "protoc",
        "protoc-gen-connect-go",
        "protoc-gen-go",
        "protoc-gen-go-grpc",
        "protoc-gen-grpc-gateway",
        "protoc-gen-grpc-java",
        "protoc-gen-openapiv2",
        "protoc-gen-validate",
        "protoreg",
    ] {
        assert!(names.contains(&want), "{want} not declared: {names:?}");
    }
    let java = catalogue
        .tools
        .iter()
        .find(|t| t.name == "protoc-gen-grpc-java")
        .unwrap();
    let asset = |platform: &str| {
        java.asset("1.79.0", protoreg::platform::by_name(platform).unwrap(), "")
            .unwrap()
    };
    assert_eq!(
        asset("darwin-arm64").url,
        "https://repo1.maven.org/maven2/io/grpc/protoc-gen-grpc-java/1.79.0/protoc-gen-grpc-java-1.79.0-osx-aarch_64.exe"
    );
    assert_eq!(
        asset("windows-x86_64").name,
        "protoc-gen-grpc-java-1.79.0-windows-x86_64.exe"
    );
    assert_eq!(
        asset("linux-x86_64").format,
        protoreg::pipeline::extract::Format::Raw
    );
    assert_eq!(java.plugin().as_deref(), Some("grpc-java"));
    let gateway = catalogue
        .tools
        .iter()
        .find(|t| t.name == "protoc-gen-grpc-gateway")
        .unwrap();
    let win = gateway
        .asset(
            "2.26.3",
            protoreg::platform::by_name("windows-arm64").unwrap(),
            "https://github.com",
        )
        .unwrap();
    assert_eq!(win.url, "https://github.com/grpc-ecosystem/grpc-gateway/releases/download/v2.26.3/protoc-gen-grpc-gateway-v2.26.3-windows-arm64.exe");
    assert_eq!(
        gateway.checksum_file_for("2.26.3").as_deref(),
        Some("grpc-gateway_2.26.3_checksums.txt")
    );
}

/// googleapis' .proto files (PyPI's, in GitHub's archive layout) on a loopback static host at
/// `/googleapis/archive/<ref>.zip`, and a workspace whose catalogue points there.
fn googleapis_workspace(reg: &RegistryServer) -> (Workspace, HttpServer, String) {
    let r#ref = "common-protos-1.76.0";
    let server = HttpServer::start();
    server.route(
        &format!("/googleapis/archive/{ref}.zip"),
        Route::File(fixture(&format!("googleapis-{ref}.zip"))),
    );
    let catalogue = SHIPPED.replace(
        "https://github.com/googleapis/googleapis/archive",
        &server.url("/googleapis/archive"),
    );
    (workspace(reg, &catalogue), server, r#ref.to_string())
}

#[test]
fn an_archive_of_protos_is_bumped_published_and_materialized_and_protoc_imports_it() {
    let reg = RegistryServer::start();
    let (ws, server, version) = googleapis_workspace(&reg);
    in_process_catalogue();

    // bump: a commit-like ref is a version; the archive is downloaded, hashed and unpacked,
    // and every declared .proto looked for.
    let o = ws.run(&["bump", "googleapis", &version]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("7 .proto files present"), "{}", text(&o));
    let pins =
        protoreg::maintain::pins::Pins::load(&ws.dir.path().join("toolchains/pins.bzl")).unwrap();
    let zip = pin(&fixture(&format!("googleapis-{version}.zip")));
    let got = &pins.pins["googleapis"][&version]["any"];
    assert_eq!((got.sha256.clone(), got.size), (zip.sha256, Some(zip.size)));
    assert_eq!(pins.defaults["googleapis"], version);

    // publish, then materialize by name with upstream gone: the registry serves it.
    let report = ws.json(&[
        "publish",
        "--tool",
        "googleapis",
        "--version",
        &version,
        "--json",
    ]);
    assert!(
        report["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["status"] == "published"
                && o["repository"]
                    .as_str()
                    .unwrap()
                    .ends_with("protos/googleapis")),
        "{report}"
    );
    drop(server);
    let tree = ws.dir.path().join("googleapis");
    let o = ws.run(&["materialize", "googleapis", "--out", tree.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(is_file(&tree.join("google/api/annotations.proto")));

    // protoc compiles a file importing it by upstream's path.
    let protoc_tree = materialized_protoc(&ws);
    let src = ws.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("api.proto"),
        "syntax = \"proto3\";\npackage acme;\nimport \"google/api/annotations.proto\";\n\
         message R {}\nservice S { rpc Get(R) returns (R) { option (google.api.http) = {get: \"/v1\"}; } }\n",
    )
    .unwrap();
    let o = run(std::process::Command::new(protoc_tree.join("bin/protoc"))
        .arg(format!("-I{}", src.display()))
        .arg(format!("-I{}", tree.display()))
        .arg(format!("-I{}", protoc_tree.join("include").display()))
        .arg(format!(
            "--descriptor_set_out={}",
            ws.dir.path().join("api.binpb").display()
        ))
        .arg("api.proto"));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_archive_without_a_declared_proto_is_not_pinned() {
    let reg = RegistryServer::start();
    let (ws, _server, version) = googleapis_workspace(&reg);
    let tools = ws.dir.path().join("toolchains/tools.bzl");
    let text_of = std::fs::read_to_string(&tools).unwrap();
    std::fs::write(
        &tools,
        text_of.replace(
            "\"google/rpc/status.proto\",",
            "\"google/rpc/status.proto\",\n            \"google/api/not_there.proto\",",
        ),
    )
    .unwrap();
    let before = std::fs::read(ws.dir.path().join("toolchains/pins.bzl")).unwrap();
    let o = ws.run(&["bump", "googleapis", &version]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("google/api/not_there.proto"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(ws.dir.path().join("toolchains/pins.bzl")).unwrap(),
        before
    );
    // A tool's entry cannot take srcs, and an archive's cannot run anything.
    let bad = SHIPPED.replace(
        "        \"srcs\": [\n            \"google/api/annotations.proto\",",
        "        \"binaries\": [\"x\"],\n        \"srcs\": [\n            \"google/api/annotations.proto\",",
    );
    let o = with_catalogue(&bad);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("`TOOLS[\"googleapis\"][\"binaries\"]`: is for tools"),
        "{}",
        text(&o)
    );
}

/// A workspace's `toolchains/` with `catalogue` and `pins` in it; `outdated` there, against
/// an upstream nothing listens on (an accepted catalogue fails next, with exit 1).
fn outdated_with(catalogue: &str, pins: &str) -> (Scratch, std::process::Output) {
    let tmp = scratch();
    let dir = tmp.path().join("toolchains");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tools.bzl"), catalogue).unwrap();
    std::fs::write(dir.join("pins.bzl"), pins).unwrap();
    let o = run(protoreg()
        .current_dir(tmp.path())
        .env_remove("PROTOREG_PINS")
        .env_remove("PROTOREG_CATALOGUE")
        .env_remove("GITHUB_TOKEN")
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .args(["outdated"]));
    (tmp, o)
}

/// Pins of buf 1.75.0 (the fixture's values), `extra` added inside PINS.
fn buf_pins(extra: &str) -> String {
    let p = pin(&fixture(BUF_TGZ));
    format!(
        "DEFAULTS = {{\"buf\": \"1.75.0\"}}\n\
         PINS = {{\n\
         \x20   \"buf\": {{\"1.75.0\": {{\"linux-x86_64\": (\"tar.gz\", {}, \"{}\", \"https://example.invalid/buf.tar.gz\")}}}},\n\
         {extra}}}\n\
         PROVENANCE = {{}}\n",
        p.size, p.sha256
    )
}

#[test]
fn a_repeated_key_in_the_catalogue_or_the_pins_is_refused_at_its_second_line() {
    // Buck2 refuses both files; "last wins" would let a second entry hide behind the first.
    let repeated = catalogue_with(
        "    \"buf\": {\"upstream\": \"github\", \"repository\": \"evil/buf\", \"tag\": \"v{version}\", \"asset\": \"b\", \"platforms\": [\"linux-x86_64\"], \"binaries\": [\"b\"], \"oci_repository\": \"tools/buf\"},\n",
    );
    let second = repeated
        .lines()
        .position(|l| l.contains("evil/buf"))
        .unwrap()
        + 1;
    let first = repeated
        .lines()
        .position(|l| l.trim_start().starts_with("\"buf\": {"))
        .unwrap()
        + 1;
    let (_tmp, o) = outdated_with(&repeated, &buf_pins(""));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "toolchains/tools.bzl:{second}: `TOOLS`: key \"buf\" repeated (first on line {first})"
        )),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    // A field repeated inside one entry, too.
    let field = catalogue_with(
        "    \"x\": {\"upstream\": \"github\", \"repository\": \"a/x\", \"tag\": \"v{version}\",\n        \"asset\": \"x\", \"platforms\": [\"linux-x86_64\"], \"binaries\": [\"x\"],\n        \"asset\": \"../x\", \"oci_repository\": \"plugins/x\"},\n",
    );
    let line = field.lines().position(|l| l.contains("../x")).unwrap() + 1;
    let (_tmp, o) = outdated_with(&field, &buf_pins(""));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "tools.bzl:{line}: `TOOLS`: key \"asset\" repeated"
        )),
        "{}",
        text(&o)
    );

    // The pins: a second "buf" in PINS.
    let p = pin(&fixture(BUF_TGZ));
    let pins = buf_pins(&format!(
        "    \"buf\": {{\"1.75.0\": {{\"linux-x86_64\": (\"tar.gz\", {}, \"{}\", \"https://evil.invalid/buf.tar.gz\")}}}},\n",
        p.size, p.sha256
    ));
    let line = pins
        .lines()
        .position(|l| l.contains("evil.invalid"))
        .unwrap()
        + 1;
    let (_tmp, o) = outdated_with(SHIPPED, &pins);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "toolchains/pins.bzl:{line}: `pins`: key \"buf\" repeated (first on line 3)"
        )),
        "{}",
        text(&o)
    );
}

#[test]
fn outdated_reports_a_broken_catalogue_entry_with_the_catalogue_s_file_and_line() {
    // buf's entry broken: the error is the catalogue's, not "`buf`: unknown tool" in the pins.
    let broken = SHIPPED.replacen("\"buf-{buf}.{tgz_or_exe}\"", "\"buf-{arch}.tar.gz\"", 1);
    assert_ne!(broken, SHIPPED);
    let line = broken
        .lines()
        .position(|l| l.contains("buf-{arch}"))
        .unwrap()
        + 1;
    let (_tmp, o) = outdated_with(&broken, &buf_pins(""));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "toolchains/tools.bzl:{line}: `TOOLS[\"buf\"][\"asset\"]`: unknown placeholder `{{arch}}`"
        )),
        "{err}"
    );
    assert!(!err.contains("unknown tool"), "{err}");
}
