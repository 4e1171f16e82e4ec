//! Executing analyzed actions for real, in dependency order, in a temporary project root
//! whose `buck-out` is fresh and whose sources are symlinks to the repository.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::analysis::{Action, ActionKind};
use crate::artifact::ArtifactPath;
use crate::harness::Harness;

/// The outputs of a build, alive as long as this value (the workspace is a temp dir).
pub struct Build {
    pub workspace: tempfile::TempDir,
    /// Absolute paths of the target's default (and other) outputs.
    pub outputs: Vec<PathBuf>,
    /// Command lines of the `run` actions executed, in order.
    pub executed: Vec<Vec<String>>,
}

fn make_workspace(root: &Path) -> anyhow::Result<tempfile::TempDir> {
    let ws = tempfile::Builder::new()
        .prefix("buck2-harness-")
        .tempdir()
        .context("failed to create a workspace")?;
    for e in
        std::fs::read_dir(root).with_context(|| format!("failed to list `{}`", root.display()))?
    {
        let e = e?;
        if e.file_name() == "buck-out" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), ws.path().join(e.file_name())).with_context(|| {
            format!("failed to link `{}` into the workspace", e.path().display())
        })?;
    }
    std::fs::create_dir(ws.path().join("buck-out"))?;
    Ok(ws)
}

struct Executor<'a> {
    ws: &'a Path,
    producers: HashMap<String, Action>,
    done: HashSet<String>,
    rewrites: &'a [(String, String)],
    executed: Vec<Vec<String>>,
}

impl Executor<'_> {
    fn ensure(&mut self, a: &Arc<ArtifactPath>) -> anyhow::Result<()> {
        if a.is_source() {
            if !self.ws.join(&a.path).exists() {
                bail!("source `{}` does not exist", a.path);
            }
            return Ok(());
        }
        // A projected artifact lives under its producer's output.
        let key = self
            .producers
            .keys()
            .find(|k| a.path == **k || a.path.starts_with(&format!("{k}/")))
            .cloned()
            .with_context(|| format!("no action produces `{}`", a.path))?;
        if self.done.contains(&key) {
            return Ok(());
        }
        let action = self.producers[&key].clone();
        for i in &action.inputs {
            self.ensure(i)?;
        }
        self.run(&action).with_context(|| {
            // Buck2's header: the owning target and the action's category and identifier.
            let owner = action.outputs[0].owner.as_deref().unwrap_or("<unknown>");
            match &action.identifier {
                Some(id) => format!("Action failed: {owner} ({} {id})", action.category),
                None => format!("Action failed: {owner} ({})", action.category),
            }
        })?;
        for o in &action.outputs {
            if std::fs::symlink_metadata(self.ws.join(&o.path)).is_err() {
                bail!(
                    "action `{}` did not produce its output `{}`",
                    action.category,
                    o.path
                );
            }
            self.done.insert(o.path.clone());
        }
        Ok(())
    }

    fn run(&mut self, action: &Action) -> anyhow::Result<()> {
        for o in &action.outputs {
            let p = self.ws.join(&o.path);
            std::fs::create_dir_all(p.parent().expect("outputs are in buck-out"))?;
        }
        let out0 = self.ws.join(&action.outputs[0].path);
        match &action.kind {
            ActionKind::Run { argv, env, .. } => {
                let scratch = self.ws.join("buck-out/v2/tmp").join(format!(
                    "{}-{}",
                    action.category,
                    self.executed.len()
                ));
                std::fs::create_dir_all(&scratch)?;
                let program = if argv[0].contains('/') && !argv[0].starts_with('/') {
                    self.ws.join(&argv[0])
                } else {
                    PathBuf::from(&argv[0])
                };
                // Buck2 keeps an action's output and shows it when the action fails.
                let out = Command::new(&program)
                    .args(&argv[1..])
                    .current_dir(self.ws)
                    .env("BUCK_SCRATCH_PATH", &scratch)
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .output()
                    .with_context(|| format!("failed to spawn `{}`", argv[0]))?;
                if !out.status.success() {
                    let code = out
                        .status
                        .code()
                        .map_or("<no exit code>".to_owned(), |c| c.to_string());
                    bail!(
                        "Local command returned non-zero exit code {code}\nReproduce locally: `{}`\nstdout:\n{}stderr:\n{}",
                        argv.join(" "),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                self.executed.push(argv.clone());
            }
            ActionKind::Write {
                content,
                executable,
            } => {
                std::fs::write(&out0, content)?;
                if *executable {
                    set_exec(&out0)?;
                }
            }
            ActionKind::Copy { src, symlink } => {
                let from = self.ws.join(&src.path);
                if *symlink {
                    std::os::unix::fs::symlink(&from, &out0)?;
                } else {
                    copy_tree(&from, &out0)?;
                }
            }
            ActionKind::Dir { entries, symlink } => {
                std::fs::create_dir_all(&out0)?;
                for (rel, src) in entries {
                    let dest = out0.join(rel);
                    std::fs::create_dir_all(dest.parent().expect("has a parent"))?;
                    let from = self.ws.join(&src.path);
                    if *symlink {
                        std::os::unix::fs::symlink(&from, &dest)?;
                    } else {
                        copy_tree(&from, &dest)?;
                    }
                }
            }
            ActionKind::Download {
                url,
                sha1,
                sha256,
                size,
                executable,
            } => {
                let mut url = url.clone();
                for (from, to) in self.rewrites {
                    if let Some(rest) = url.strip_prefix(from.as_str()) {
                        url = format!("{to}{rest}");
                    }
                }
                let Some(want) = sha256 else {
                    bail!(
                        "the harness verifies downloads by sha256 only; `{url}` has only sha1 `{}`",
                        sha1.as_deref().unwrap_or("")
                    );
                };
                download(&url, &out0, want, *size)?;
                if *executable {
                    set_exec(&out0)?;
                }
            }
        }
        Ok(())
    }
}

fn set_exec(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(p)?.permissions();
    perm.set_mode(perm.mode() | 0o111);
    std::fs::set_permissions(p, perm)?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        std::fs::copy(from, to).with_context(|| format!("failed to copy `{}`", from.display()))?;
    }
    Ok(())
}

/// A plain HTTP GET, hashed while streaming; the file is kept only if digest and size match.
fn download(url: &str, dest: &Path, sha256: &str, size: Option<u64>) -> anyhow::Result<()> {
    let resp = ureq::get(url)
        .call()
        .with_context(|| format!("failed to download `{url}`"))?;
    let mut reader = resp.into_body().into_reader();
    let tmp = dest.with_extension("partial");
    let mut file = std::fs::File::create(&tmp)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        total += n as u64;
    }
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got != sha256.to_ascii_lowercase() {
        let _ = std::fs::remove_file(&tmp);
        // Buck2's `HttpDownloadError::InvalidChecksum`.
        bail!("Invalid sha256 digest. Expected {sha256}, got {got}. URL: {url}. Received {total} bytes.");
    }
    if let Some(s) = size {
        if s != total {
            let _ = std::fs::remove_file(&tmp);
            bail!("size mismatch for `{url}`: got {total} bytes, expected {s}");
        }
    }
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// A test run the way `buck2 test` runs an `ExternalRunnerTestInfo` command: its inputs built,
/// then the command run from the project root with the test's `env`.
pub struct TestRun {
    /// The project root the command ran in (alive as long as this value).
    pub workspace: tempfile::TempDir,
    /// The command, as run (project-relative paths).
    pub command: Vec<String>,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl TestRun {
    /// The open-source test runner's verdict: exit code 0 passes.
    pub fn passed(&self) -> bool {
        self.status.success()
    }
}

impl Harness {
    /// An executor over every action analyzed so far, in a fresh workspace.
    fn executor<'a>(&'a self, ws: &'a Path) -> Executor<'a> {
        let mut producers = HashMap::new();
        for r in self.all_results() {
            for a in &r.actions {
                for o in &a.outputs {
                    producers.insert(o.path.clone(), a.clone());
                }
            }
        }
        Executor {
            ws,
            producers,
            done: HashSet::new(),
            rewrites: &self.url_rewrites,
            executed: Vec::new(),
        }
    }

    /// Analyze `target` for `platform` (also the execution platform) and run every action its
    /// default and other outputs need.
    pub fn build(&self, target: &str, platform: &str) -> anyhow::Result<Build> {
        let result = self.analyze(target, platform, platform)?;
        let label = self.parse_providers(target)?;
        let wanted = if label.sub.is_empty() {
            result.default_outputs(true)
        } else {
            crate::harness::sub_target_outputs(&label, &result)?
        };
        let ws = make_workspace(&self.loader.cells.root)?;
        let mut ex = self.executor(ws.path());
        let mut outputs = Vec::new();
        for o in wanted {
            ex.ensure(&o)?;
            outputs.push(ws.path().join(&o.path));
        }
        let executed = ex.executed;
        Ok(Build {
            workspace: ws,
            outputs,
            executed,
        })
    }

    /// Run test `target` for `platform` (also the execution platform) as `buck2 test` does:
    /// build what its command and env reference, then run the command from the project root.
    /// A failing test is a `TestRun` that did not pass; an error means it could not run.
    pub fn test(&self, target: &str, platform: &str) -> anyhow::Result<TestRun> {
        let result = self.analyze(target, platform, platform)?;
        let info = result.test_info()?.with_context(|| {
            format!("`{target}` is not a test: it returns no `ExternalRunnerTestInfo`")
        })?;
        let ws = make_workspace(&self.loader.cells.root)?;
        let mut ex = self.executor(ws.path());
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        info.command.artifacts(&mut inputs, &mut outputs);
        for (_, v) in &info.env {
            v.artifacts(&mut inputs, &mut outputs);
        }
        if let Some(o) = outputs.first() {
            bail!(
                "the command of test `{target}` names output artifact `{}`: tests can only read artifacts",
                o.short_path
            );
        }
        for i in &inputs {
            ex.ensure(i)?;
        }
        let command = info.command.render();
        let Some(program) = command.first() else {
            bail!("test `{target}` has an empty command");
        };
        let program = if program.contains('/') && !program.starts_with('/') {
            ws.path().join(program)
        } else {
            PathBuf::from(program)
        };
        let out = Command::new(&program)
            .args(&command[1..])
            .current_dir(ws.path())
            .envs(info.env.iter().map(|(k, v)| (k, v.render().join(" "))))
            .output()
            .with_context(|| format!("failed to spawn `{}` for test `{target}`", command[0]))?;
        Ok(TestRun {
            workspace: ws,
            command,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
