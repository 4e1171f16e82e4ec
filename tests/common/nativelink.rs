//! Real NativeLink (`../shared/tools/nativelink`, a REAPI v2 server and worker in one process)
//! on loopback, for Buck2's remote execution. It runs as an unprivileged user: its worker
//! hardlinks action inputs out of its CAS, and an action run as root could write through them
//! and corrupt the stored blobs. Fresh state, free ports, stopped by the PID started.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::user::User;
use super::Scratch;

/// How long NativeLink may take to say it is ready (it starts in well under a second; the
/// first run also unpacks the binary).
const START_LIMIT: Duration = Duration::from_secs(60);

/// The instance name `loopback.json5` serves.
pub const INSTANCE: &str = "main";

pub struct NativeLink {
    child: Child,
    /// The REAPI port Buck2 talks to.
    pub port: u16,
    /// `NATIVELINK_DIR`: the stores, the worker's work directory and the log.
    pub state: Scratch,
    /// A configuration of the test's own (a Windows worker), kept while it runs.
    _config: Option<Scratch>,
}

/// `$NATIVELINK_TOOLS`, else `../shared/tools/nativelink` beside this checkout.
fn tools_dir() -> PathBuf {
    let dir = std::env::var_os("NATIVELINK_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/nativelink")
        });
    assert!(
        dir.join("nativelink").is_file() && dir.join("loopback.json5").is_file(),
        "NativeLink not found in {} (set NATIVELINK_TOOLS to the directory of nativelink and \
         loopback.json5)",
        dir.display()
    );
    dir
}

/// A port nothing listens on now (the kernel's pick, released for NativeLink to take).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

impl NativeLink {
    /// Starts NativeLink as `user` with fresh state, and waits (bounded) until its server
    /// listens and its worker has registered.
    pub fn start(user: &User) -> NativeLink {
        NativeLink::start_with(user, &tools_dir().join("loopback.json5"))
    }

    /// A Windows executor: the same server whose worker declares `OSFamily=windows,
    /// Arch=amd64` (what prelude//platforms:exec-windows-x86_64 asks for) and runs every
    /// action's command through `entrypoint` (a Wine launcher, tests/common/wine.rs).
    pub fn start_windows(user: &User, entrypoint: &Path) -> NativeLink {
        let linux = std::fs::read_to_string(tools_dir().join("loopback.json5")).unwrap();
        let worker = "        name: \"loopback-worker-\",\n";
        let os = "          OSFamily: { values: [\"linux\"] },\n";
        assert!(linux.contains(worker) && linux.contains(os), "{linux}");
        let windows = linux
            .replace(
                worker,
                &format!("{worker}        entrypoint: \"{}\",\n", entrypoint.display()),
            )
            .replace(
                os,
                "          OSFamily: { values: [\"windows\"] },\n          Arch: { values: [\"amd64\"] },\n",
            );
        let dir = super::scratch();
        let config = dir.path().join("windows.json5");
        std::fs::write(&config, windows).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut nl = NativeLink::start_with(user, &config);
        nl._config = Some(dir);
        nl
    }

    fn start_with(user: &User, config: &Path) -> NativeLink {
        let tools = tools_dir();
        let state = user.tempdir();
        // The launcher unpacks the binary once per directory: one shared by every run.
        let unpack =
            std::env::temp_dir().join(format!("buck2-protobuf-nativelink-bin-{}", user.uid));
        user.own(&unpack);
        let (port, worker_port) = (free_port(), free_port());
        let log_path = state.path().join("nativelink.log");
        let log = std::fs::File::create(&log_path).expect("create the NativeLink log");
        let child = user
            .command(tools.join("nativelink"))
            .arg(config)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("NATIVELINK_UNPACK_DIR", &unpack)
            .env("NATIVELINK_DIR", state.path().join("nl"))
            .env("NATIVELINK_PORT", port.to_string())
            .env("NATIVELINK_WORKER_PORT", worker_port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start NativeLink");
        let mut nl = NativeLink {
            child,
            port,
            state,
            _config: None,
        };
        let ready = format!("Ready, listening on 127.0.0.1:{port}");
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let text = nl.log();
            if text.contains(&ready) && text.contains("Worker registered with scheduler") {
                return nl;
            }
            if let Ok(Some(status)) = nl.child.try_wait() {
                panic!("NativeLink exited ({status}) before it was ready:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "NativeLink not ready within {START_LIMIT:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `[buck2_re_client]` section that points Buck2 at this server.
    pub fn buckconfig(&self) -> String {
        let address = format!("grpc://127.0.0.1:{}", self.port);
        format!(
            "\n[buck2_re_client]\n  engine_address = {address}\n  action_cache_address = {address}\n  \
             cas_address = {address}\n  tls = false\n  instance_name = {INSTANCE}\n"
        )
    }

    /// What NativeLink logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("nativelink.log")).unwrap_or_default()
    }

    /// How many actions its worker has executed.
    pub fn executed(&self) -> usize {
        self.log().matches("Executing command").count()
    }
}

impl Drop for NativeLink {
    fn drop(&mut self) {
        // The launcher execs NativeLink (setpriv too), so this PID is NativeLink's own;
        // SIGTERM lets it shut down cleanly.
        // SAFETY: kill(2) on the PID this struct started and has not yet reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
