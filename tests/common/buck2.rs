//! Real Buck2 on scratch copies of this repository: the project (its own daemon, killed on
//! drop), and the loopback upstream and registry a project with fixture pins fetches from.
//! Shared by `tests/buck2_real.rs` and `tests/remote_exec.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::github::{Asset, FakeGitHub};
use super::http::Route;
use super::ops::{Workspace, BUF_REPO, NS, PROTOC_REPO};
use super::user::User;
use super::{fixture, pin, scratch, text, RegistryServer, Scratch};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Real Buck2: `$BUCK2`, else `../shared/tools/buck2/buck2` beside this checkout (CI has it).
pub fn buck2_bin() -> PathBuf {
    let path = std::env::var_os("BUCK2")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/tools/buck2/buck2"));
    assert!(
        path.is_file(),
        "real Buck2 not found at {} (set BUCK2 to a buck2 binary)",
        path.display()
    );
    path
}

pub fn host_platform() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-x86_64",
        ("linux", "aarch64") => "linux-aarch64",
        ("macos", "x86_64") => "darwin-x86_64",
        ("macos", "aarch64") => "darwin-arm64",
        other => panic!("no canonical platform for {other:?}"),
    }
}

/// A scratch Buck2 project with its own daemon, killed on drop.
pub struct Project {
    dir: Scratch,
    /// Who runs Buck2 (the test's user when None), with a home of their own.
    user: Option<(User, Scratch)>,
    /// A directory put first on Buck2's `PATH` (so on its local actions').
    path_first: Option<PathBuf>,
}

impl Project {
    /// The repository's tracked files (in CI, a clean checkout: exactly what is committed):
    /// no `.fixtures`, no `node_modules`, no `target`.
    pub fn as_committed() -> Project {
        let dir = scratch();
        let list = Command::new("git")
            .args(["ls-files", "-z", "--cached"])
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(list.status.success(), "git ls-files: {}", text(&list));
        for rel in list.stdout.split(|b| *b == 0).filter(|s| !s.is_empty()) {
            let rel = std::str::from_utf8(rel).unwrap();
            let from = repo_root().join(rel);
            if !from.is_file() {
                continue; // deleted in the work tree
            }
            let to = dir.path().join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
        Project {
            dir,
            user: None,
            path_first: None,
        }
    }

    /// An empty project, to be written by the test.
    pub fn empty() -> Project {
        Project {
            dir: scratch(),
            user: None,
            path_first: None,
        }
    }

    /// From now on Buck2 (its daemon, and so its local actions) finds programs in `dir` first.
    pub fn path_first(&mut self, dir: &Path) {
        self.path_first = Some(dir.to_path_buf());
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let p = self.path().join(rel);
        let old = std::fs::read_to_string(&p).unwrap();
        assert!(old.contains(from), "{rel} has no `{from}`");
        std::fs::write(p, old.replace(from, to)).unwrap();
    }

    /// From now on Buck2 runs as `user`, who is given the project and a home.
    pub fn run_as(&mut self, user: User) {
        let home = user.tempdir();
        if user.dropped() {
            let owner = format!("{}:{}", user.uid, user.gid);
            let chown = Command::new("chown")
                .args(["-R", &owner])
                .arg(self.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        self.user = Some((user, home));
    }

    pub fn buck2(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The home Buck2 runs with after [`Project::run_as`].
    pub fn home(&self) -> &Path {
        self.user
            .as_ref()
            .map(|(_, home)| home.path())
            .expect("Project::run_as first")
    }

    /// `buck2 ARGS`, or None when it did not finish within `limit` (a build waiting on a
    /// remote executor that never takes its actions); then the client is killed by its PID
    /// (the daemon dies with the project). Output goes through files: a build's can exceed
    /// a pipe.
    pub fn buck2_within(&self, args: &[&str], limit: std::time::Duration) -> Option<Output> {
        let logs = scratch();
        let (out, err) = (logs.path().join("stdout"), logs.path().join("stderr"));
        let mut child = self
            .command(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        Some(Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.user {
            Some((user, home)) => {
                let mut c = user.command(buck2_bin());
                c.env("HOME", home.path()).env_remove("XDG_CACHE_HOME");
                c
            }
            None => Command::new(buck2_bin()),
        };
        cmd.args(args)
            .current_dir(self.path())
            .env("BUCK2_UNPACK_DIR", buck2_unpack_dir())
            .env_remove("PROTOREG_CACHE_DIR")
            .env("DOCKER_CONFIG", "/nonexistent-docker-config")
            .stdin(Stdio::null());
        if let Some(dir) = &self.path_first {
            let rest = std::env::var_os("PATH").unwrap_or_default();
            let path = std::iter::once(dir.clone()).chain(std::env::split_paths(&rest));
            cmd.env("PATH", std::env::join_paths(path).unwrap());
        }
        cmd
    }

    /// Runs buck2, requires success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.buck2(args);
        assert!(
            out.status.success(),
            "buck2 {} failed in {}:\n{}",
            args.join(" "),
            self.path().display(),
            buck2_errors(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.buck2(&["kill"]);
        // Outputs and protoreg's cache are read-only; make them removable.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(self.path())
            .status();
    }
}

/// Where the buck2 launcher unpacks the binary: shared by every test, so it unpacks once.
pub fn buck2_unpack_dir() -> PathBuf {
    std::env::var_os("BUCK2_UNPACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("buck2-protobuf-buck2-bin"))
}

/// stderr without Buck2's timestamped progress lines, and stdout: what a failure shows.
pub fn buck2_errors(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let err: Vec<&str> = err.lines().filter(|l| !l.starts_with("[20")).collect();
    format!(
        "{}\n--- stdout\n{}",
        err.join("\n"),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// The loopback upstream and registry the fixture projects fetch from: a GitHub-shaped
/// server with the real protoc 36.2, buf 1.75.0 and Go plugins in upstream's archive layouts,
/// and a `docker-registry` holding the host's artifacts, published by `protoreg publish`.
pub struct Loopback {
    pub gh: FakeGitHub,
    pub reg: RegistryServer,
    pub ws: Workspace,
}

pub const GO_REPO: &str = "protocolbuffers/protobuf-go";
pub const GRPC_REPO: &str = "grpc/grpc-go";
pub const GO_TGZ: &str = "protoc-gen-go.v1.28.1.linux.amd64.tar.gz";
pub const GRPC_TGZ: &str = "protoc-gen-go-grpc.v1.0.0.linux.amd64.tar.gz";
pub const GRPC_TAG: &str = "cmd/protoc-gen-go-grpc/v1.0.0";
/// protoc-gen-grpc-java, declared in the shipped catalogue with Maven Central's layout: Debian's
/// build of it, served in that layout on loopback (the catalogue's host swapped for it).
pub const GRPC_JAVA: &str = "protoc-gen-grpc-java";
pub const GRPC_JAVA_VERSION: &str = "1.41.3";
pub const GRPC_JAVA_BIN: &str = "/usr/bin/grpc_java_plugin";
/// googleapis as GitHub serves a commit's archive, with PyPI's googleapis-common-protos
/// files (scripts/pack_upstream.py); the ref names the fixture.
pub const GOOGLEAPIS_REF: &str = "common-protos-1.76.0";

pub fn googleapis_zip() -> (String, PathBuf) {
    (
        format!("/googleapis/googleapis/archive/{GOOGLEAPIS_REF}.zip"),
        fixture(&format!("googleapis-{GOOGLEAPIS_REF}.zip")),
    )
}

/// This machine's node, packed as Node.js ships it for Linux x64 (`.fixtures/upstream`).
pub const NODE_VERSION: &str = "20.20.2";
pub const NODE_TXZ: &str = "node-v20.20.2-linux-x64.tar.xz";

/// The node archive: (its path under the static host, as on nodejs.org, its file).
pub fn node_asset() -> (String, PathBuf) {
    (
        format!("/dist/v{NODE_VERSION}/{NODE_TXZ}"),
        fixture(NODE_TXZ),
    )
}

/// The host's grpc-java asset: (its path under the static host, its file).
pub fn grpc_java_asset() -> (String, PathBuf) {
    let spelling = protoreg::platform::by_name(host_platform()).unwrap().protoc;
    let name = format!("{GRPC_JAVA}-{GRPC_JAVA_VERSION}-{spelling}.exe");
    let bin = PathBuf::from(GRPC_JAVA_BIN);
    assert!(
        bin.is_file(),
        "{GRPC_JAVA_BIN} missing: run scripts/install-deps"
    );
    (
        format!("/maven2/io/grpc/{GRPC_JAVA}/{GRPC_JAVA_VERSION}/{name}"),
        bin,
    )
}

impl Loopback {
    pub fn start() -> Loopback {
        let gh = super::ops::github_with_protoc_and_buf();
        let go = fixture(GO_TGZ);
        gh.release(GO_REPO, "v1.28.1", &[Asset::new(GO_TGZ, &go)], false, false);
        let grpc = fixture(GRPC_TGZ);
        gh.release(
            GRPC_REPO,
            GRPC_TAG,
            &[Asset::new(GRPC_TGZ, &grpc)],
            false,
            false,
        );
        let reg = RegistryServer::start();
        let ws = Workspace::new(&reg.host, &gh.api_url(), "");
        // The static host of a declared plugin: its asset and `.sha256`, and the shipped
        // catalogue pointed at it (as a user of a Maven mirror would).
        let (path, bin) = grpc_java_asset();
        gh.server.route(&path, Route::File(bin.clone()));
        let sum = ws.dir.path().join("grpc-java.sha256");
        std::fs::write(&sum, format!("{}\n", pin(&bin).sha256.hex())).unwrap();
        gh.server.route(&format!("{path}.sha256"), Route::File(sum));
        let (path, zip) = googleapis_zip();
        gh.server.route(&path, Route::File(zip));
        let (path, txz) = node_asset();
        gh.server.route(&path, Route::File(txz.clone()));
        let sums = ws.dir.path().join("SHASUMS256.txt");
        std::fs::write(&sums, format!("{}  {NODE_TXZ}\n", pin(&txz).sha256.hex())).unwrap();
        gh.server.route(
            &format!("/dist/v{NODE_VERSION}/SHASUMS256.txt"),
            Route::File(sums),
        );
        let catalogue = ws.dir.path().join("tools.bzl");
        let shipped = std::fs::read_to_string(repo_root().join("toolchains/tools.bzl")).unwrap();
        for upstream in [
            "https://repo1.maven.org/maven2/io/grpc/",
            "https://github.com/googleapis/googleapis/archive/",
            "https://nodejs.org/dist/",
        ] {
            assert!(shipped.contains(upstream), "{upstream}");
        }
        std::fs::write(
            &catalogue,
            shipped
                .replace("https://repo1.maven.org", &gh.server.url(""))
                .replace("https://nodejs.org", &gh.server.url(""))
                .replace(
                    "https://github.com/googleapis/googleapis/archive",
                    &gh.server.url("/googleapis/googleapis/archive"),
                ),
        )
        .unwrap();
        for (tool, version, platform) in [
            ("protoc", "36.2", host_platform()),
            ("buf", "1.75.0", host_platform()),
            ("protoc-gen-go", "1.28.1", host_platform()),
            ("protoc-gen-go-grpc", "1.0.0", host_platform()),
            (GRPC_JAVA, GRPC_JAVA_VERSION, host_platform()),
            ("googleapis", GOOGLEAPIS_REF, "any"),
            ("node", NODE_VERSION, host_platform()),
        ] {
            let out = ws.run(&[
                "publish",
                "--tool",
                tool,
                "--version",
                version,
                "--platform",
                platform,
                "--catalogue",
                catalogue.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "publish {tool}: {}", text(&out));
        }
        Loopback { gh, reg, ws }
    }

    pub fn url(&self, repo: &str, tag: &str, name: &str) -> String {
        self.gh
            .server
            .url(&format!("/download/{repo}/{tag}/{name}"))
    }

    /// Pins of the fixture archives, with the loopback upstream's URLs. protoc on the host
    /// has no size (verified by sha256 alone, as most shipped pins are); buf on Windows is a
    /// raw `.exe` (analysis only).
    pub fn pins_bzl(&self) -> String {
        self.pins().render()
    }

    /// [`Loopback::pins_bzl`], to add to.
    pub fn pins(&self) -> protoreg::maintain::pins::Pins {
        use protoreg::maintain::pins::{Pin, Pins};
        use protoreg::pipeline::extract::Format;
        let mut pins = Pins::default();
        let mut add = |tool: &str,
                       version: &str,
                       platform: &str,
                       repo: &str,
                       tag: &str,
                       name: &str,
                       sized: bool| {
            let p = pin(&fixture(name));
            let fixed = Pin {
                format: Format::of_file_name(name),
                size: sized.then_some(p.size),
                sha256: p.sha256,
                url: self.url(repo, tag, name),
            };
            let why = "test fixture: the real binaries repacked as upstream ships them";
            pin_as_default(&mut pins, tool, version, platform, fixed, why);
        };
        for (platform, asset) in [
            ("linux-x86_64", "linux-x86_64"),
            ("linux-aarch64", "linux-aarch_64"),
            ("darwin-x86_64", "osx-x86_64"),
            ("darwin-arm64", "osx-aarch_64"),
            ("windows-x86_64", "win64"),
        ] {
            let name = format!("protoc-36.2-{asset}.zip");
            add(
                "protoc",
                "36.2",
                platform,
                PROTOC_REPO,
                "v36.2",
                &name,
                platform != host_platform(),
            );
        }
        add(
            "buf",
            "1.75.0",
            "linux-x86_64",
            BUF_REPO,
            "v1.75.0",
            "buf-Linux-x86_64.tar.gz",
            true,
        );
        add(
            "buf",
            "1.75.0",
            "windows-x86_64",
            BUF_REPO,
            "v1.75.0",
            "buf-Windows-x86_64.exe",
            true,
        );
        add(
            "protoc-gen-go",
            "1.28.1",
            "linux-x86_64",
            GO_REPO,
            "v1.28.1",
            GO_TGZ,
            true,
        );
        add(
            "protoc-gen-go-grpc",
            "1.0.0",
            "linux-x86_64",
            GRPC_REPO,
            GRPC_TAG,
            GRPC_TGZ,
            true,
        );
        // Node.js, sized (a deferrable download in native mode), and grpc-java, a raw binary,
        // from their static hosts.
        let mut add_hosted =
            |tool: &str, version: &str, (path, file): (String, PathBuf), format, why: &str| {
                let p = pin(&file);
                let fixed = Pin {
                    format,
                    size: Some(p.size),
                    sha256: p.sha256,
                    url: self.gh.server.url(&path),
                };
                pin_as_default(&mut pins, tool, version, host_platform(), fixed, why);
            };
        add_hosted(
            "node",
            NODE_VERSION,
            node_asset(),
            Format::TarXz,
            "test fixture: this machine's node in Node.js's archive layout",
        );
        add_hosted(
            GRPC_JAVA,
            GRPC_JAVA_VERSION,
            grpc_java_asset(),
            Format::Raw,
            "test fixture: Debian's grpc_java_plugin in Maven Central's layout",
        );
        // googleapis, without a size as the shipped pin has none.
        let (path, zip) = googleapis_zip();
        let p = pin(&zip);
        let fixed = Pin {
            format: Format::Zip,
            size: None,
            sha256: p.sha256,
            url: self.gh.server.url(&path),
        };
        pin_as_default(
            &mut pins,
            "googleapis",
            GOOGLEAPIS_REF,
            "any",
            fixed,
            "test fixture: PyPI's googleapis-common-protos in GitHub's archive layout",
        );
        pins
    }

    /// `[protobuf]` pointed at the loopback registry, protoreg built by this workspace, and a
    /// cache of the project's own.
    pub fn configure(&self, p: &Project) {
        p.edit(
            ".buckconfig",
            "registry = oras.birb.homes/buck2-protobuf",
            &format!("registry = {}/{NS}", self.reg.host),
        );
        p.edit(".buckconfig", "plain_http = false", "plain_http = true");
        p.edit(
            ".buckconfig",
            "cache_dir =\n",
            &format!(
                "cache_dir = {}\n",
                p.path().join(".protoreg-cache").display()
            ),
        );
        p.edit(
            ".buckconfig",
            "protoreg = target/release/protoreg",
            &format!("protoreg = {}", env!("CARGO_BIN_EXE_protoreg")),
        );
        p.write("toolchains/pins.bzl", &self.pins_bzl());
    }

    /// Every request the loopback upstream has answered (downloads and listings).
    pub fn upstream_requests(&self) -> usize {
        self.gh.server.total()
    }

    pub fn protoc_downloads(&self) -> usize {
        self.gh
            .downloads(PROTOC_REPO, "v36.2", "protoc-36.2-linux-x86_64.zip")
    }
}

/// `git ARGS` in `dir`, which must succeed; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A bare git origin at `at` holding the repository as committed, as one commit: what a
/// consumer's `[external_cell_protobuf] git_origin` names. Returns that commit.
pub fn rules_origin(at: &Path) -> String {
    let shipped = Project::as_committed();
    git(shipped.path(), &["init", "-q"]);
    git(shipped.path(), &["add", "-A"]);
    git(
        shipped.path(),
        &["commit", "-q", "-m", "buck2-protobuf as committed"],
    );
    git(
        shipped.path(),
        &["clone", "-q", "--bare", ".", at.to_str().unwrap()],
    );
    git(shipped.path(), &["rev-parse", "HEAD"])
        .trim()
        .to_string()
}

/// A consumer's `//api`: a proto_library importing a well-known type, with a service; its Go
/// and gRPC code; its buf lint test.
pub fn write_thing_api(p: &Project) {
    p.write(
        "api/BUCK",
        "load(\"@protobuf//prelude/proto:defs.bzl\", \"buf_lint_test\", \"go_proto_gen\", \"proto_library\")\n\n\
         proto_library(\n    name = \"api\",\n    srcs = [\"acme/thing/v1/thing.proto\"],\n    strip_import_prefix = \"/api\",\n)\n\n\
         go_proto_gen(name = \"api_go\", protos = [\":api\"], grpc = True)\n\n\
         buf_lint_test(\n    name = \"lint\",\n    proto = \":api\",\n)\n",
    );
    p.write(
        "api/acme/thing/v1/thing.proto",
        "syntax = \"proto3\";\n\npackage acme.thing.v1;\n\nimport \"google/protobuf/timestamp.proto\";\n\noption go_package = \"example.com/acme/thing/v1;thingv1\";\n\n// A thing.\nmessage Thing {\n  // Its name.\n  string name = 1;\n  // When it was made.\n  google.protobuf.Timestamp made_at = 2;\n}\n\n// Things.\nservice ThingService {\n  // One thing.\n  rpc GetThing(GetThingRequest) returns (GetThingResponse);\n}\n\n// Which thing.\nmessage GetThingRequest {\n  // Its name.\n  string name = 1;\n}\n\n// The thing.\nmessage GetThingResponse {\n  // It.\n  Thing thing = 1;\n}\n",
    );
}

/// In both fetch modes: `//api`'s descriptor set, Go and gRPC code build, its buf test passes.
pub fn build_and_test_thing_api(p: &Project) {
    for mode in ["helper", "native"] {
        let fetch_mode = format!("protobuf.fetch_mode={mode}");
        let go = outputs(p, "//api:api_go[go-grpc]", &["-c", &fetch_mode]);
        assert!(
            go[0].join("acme/thing/v1/thing_grpc.pb.go").is_file(),
            "{mode}: {go:?}"
        );
        let set = outputs(p, "//api:api", &["-c", &fetch_mode]);
        assert!(std::fs::metadata(&set[0]).unwrap().len() > 0);
        let tests = p.ok(&["test", "//api:lint", "-c", &fetch_mode]);
        assert!(!tests.contains("FAIL"), "{mode}: {tests}");
    }
}

/// A `.buckconfig` with Meta's bundled prelude and these rules vendored as the `protobuf`
/// cell ([`vendor_rules`]), executing on `execution_platforms`, then `rest` (`[protobuf]` …).
pub fn bundled_prelude_buckconfig(execution_platforms: &str, rest: &str) -> String {
    format!(
        "[cells]\n  root = .\n  prelude = prelude\n  toolchains = toolchains\n  protobuf = third-party/buck2-protobuf/prelude\n  none = none\n\
         [cell_aliases]\n  config = prelude\n  ovr_config = prelude\n  fbcode = none\n  fbsource = none\n  fbcode_macros = none\n  buck = none\n\
         [external_cells]\n  prelude = bundled\n\
         [parser]\n  target_platform_detector_spec = target:root//...->prelude//platforms:default target:toolchains//...->prelude//platforms:default\n\
         [build]\n  execution_platforms = {execution_platforms}\n\
         {rest}"
    )
}

/// A repository with Meta's bundled prelude and these rules vendored as the `protobuf` cell,
/// its `[protobuf]` section pointed at the loopback registry, a cache of its own and this
/// workspace's protoreg, then `more` (further `[protobuf]` keys, each `  KEY = VALUE\n`).
pub fn bundled_prelude_project(up: &Loopback, more: &str) -> Project {
    let p = Project::empty();
    vendor_rules(&p);
    p.write(
        ".buckconfig",
        &bundled_prelude_buckconfig(
            "prelude//platforms:default",
            &format!(
                "[protobuf]\n  registry = {}/{NS}\n  plain_http = true\n  cache_dir = {}\n  protoreg = {}\n{more}",
                up.reg.host,
                p.path().join(".protoreg-cache").display(),
                env!("CARGO_BIN_EXE_protoreg"),
            ),
        ),
    );
    p
}

/// These rules in `p` as the `protobuf` cell's directory, `third-party/buck2-protobuf/prelude`
/// (the layout prelude/proto/README.md gives for vendoring them).
pub fn vendor_rules(p: &Project) {
    let vendored = p.path().join("third-party/buck2-protobuf");
    std::fs::create_dir_all(&vendored).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(repo_root().join("prelude"))
        .arg(&vendored)
        .status()
        .unwrap();
    assert!(copied.success());
}

/// protoc-gen-es into `p`, as `npm ci --prefix examples/es` (scripts/install-deps) installed
/// it: copied, since Buck2's glob does not follow a symlink.
pub fn copy_node_modules(p: &Project) {
    let node_modules = repo_root().join("examples/es/node_modules");
    assert!(
        node_modules.join("@bufbuild/protoc-gen-es").is_dir(),
        "examples/es/node_modules is missing: run scripts/install-deps"
    );
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&node_modules)
        .arg(p.path().join("examples/es/"))
        .status()
        .unwrap();
    assert!(copied.success());
}

pub fn python() -> PathBuf {
    repo_root().join(".fixtures/venv/bin/python")
}

/// `buck2 build TARGET --show-full-json-output`: the target's default outputs.
pub fn outputs(p: &Project, target: &str, extra: &[&str]) -> Vec<PathBuf> {
    let mut args = vec!["build", target, "--show-full-json-output"];
    args.extend_from_slice(extra);
    let json: serde_json::Value = serde_json::from_str(&p.ok(&args)).unwrap();
    let mut out: Vec<PathBuf> = json
        .as_object()
        .unwrap()
        .values()
        .map(|v| PathBuf::from(v.as_str().unwrap()))
        .collect();
    out.sort();
    out
}

/// Terminal colours out of Buck2's report.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every file under `root`, by relative path.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Generated code equals the golden copy the harness also checks against
/// (tests/buck2_harness/fixtures/golden, whose README says when to regenerate it).
pub fn assert_matches_golden(set: &str, generated: &Path) {
    let golden = repo_root()
        .join("tests/buck2_harness/fixtures/golden")
        .join(set);
    let (want, got) = (tree(&golden), tree(generated));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{set}: other files than the golden ones"
    );
    for (rel, bytes) in &want {
        assert!(
            got[rel] == *bytes,
            "{set}/{rel} differs from its golden copy"
        );
    }
}

/// `pin` as `tool`'s default `version` on `platform`, with where it came from.
pub fn pin_as_default(
    pins: &mut protoreg::maintain::pins::Pins,
    tool: &str,
    version: &str,
    platform: &str,
    pin: protoreg::maintain::pins::Pin,
    provenance: &str,
) {
    pins.defaults.insert(tool.into(), version.into());
    pins.provenance
        .entry(tool.into())
        .or_default()
        .insert(version.into(), provenance.into());
    pins.insert(tool, version, platform, pin);
}

/// A repository that is not this one, made by `protoreg` (the binary at `protoreg`) `init`:
/// Meta's bundled prelude, these rules as a git cell from a bare origin of this repository
/// at its HEAD, `[protobuf] protoreg = setting`, the loopback registry; its own pins the
/// fixture pins, and `//api` (a library, its Go and gRPC code, a buf lint test).
pub fn consumer_by_init(protoreg: &Path, up: &Loopback, setting: &str) -> Project {
    let p = Project::empty();
    let origin = p.path().join("third-party/buck2-protobuf.git");
    let head = rules_origin(&origin);
    let init = Command::new(protoreg)
        .arg("init")
        .arg(p.path())
        .args(["--origin", &format!("file://{}", origin.display())])
        .args(["--commit", &head])
        .args([
            "--registry",
            &format!("{}/{NS}", up.reg.host),
            "--plain-http",
        ])
        .args(["--protoreg", setting])
        .output()
        .unwrap();
    assert!(init.status.success(), "protoreg init: {}", text(&init));
    p.write("toolchains/pins.bzl", &up.pins_bzl());
    write_thing_api(&p);
    p
}
