//! `protoreg baseline push`: a proto library's descriptor set (a buf image), pushed to the
//! registry as an ORAS artifact tagged by the API's release version, so `buf_breaking_test`
//! can check against what was released without git or the BSR. A released tag never moves:
//! pushing the same image again is a no-op, another image under it is refused.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::time::{Duration, Instant};

use crate::artifact::{self, Manifest};
use crate::cli::{BaselinePushArgs, Global};
use crate::commands::context::Context;
use crate::error::{Error, Result};
use crate::pipeline::source::valid_repository;
use crate::pipeline::verify::{hash_file, Sha256};

/// The artifactType of a pushed baseline; its one layer is the image file as built.
pub const IMAGE_ARTIFACT_TYPE: &str = "application/vnd.buck2-protobuf.image.v1";
/// The file name a baseline materializes as: buf tells an image by its `.binpb` extension.
pub const IMAGE_FILE: &str = "image.binpb";
/// A descriptor set larger than this is not an API (googleapis' whole tree is ~10 MiB).
const MAX_IMAGE_BYTES: u64 = 256 << 20;

pub fn push(global: &Global, args: &BaselinePushArgs) -> Result<()> {
    let opened = check_image(&args.image)?;
    if !valid_repository(&args.repository) {
        return Err(Error::input(
            format!("`{}` is not a repository path", args.repository),
            "lowercase a-z, 0-9, `.`, `_`, `-`, separated by `/`, as in `images/acme-weather`",
        ));
    }
    check_tag(&args.tag)?;
    let mut ctx = Context::load(global)?;
    let reg = match &args.registry {
        Some(name) => ctx.config.registry(name).cloned().ok_or_else(|| {
            Error::input(
                format!("no registry named `{name}` in the configuration"),
                "use `primary` or the name of a backup_registries entry",
            )
        })?,
        None => ctx.config.primary.clone(),
    };
    let repository = reg.repository(&args.repository);
    let client = ctx.connect(&reg)?;
    // Hashed and pushed from a private copy of the file as opened and checked: the path is
    // never opened again, so what is pushed is what was checked.
    let scratch = crate::pipeline::store::Scratch::new("protoreg-baseline")?;
    let image = &scratch.path().join(IMAGE_FILE);
    copy_checked(opened, &args.image, image)?;
    let (sha256, size) = hash_file(image)?;
    let manifest = manifest(&sha256, size, &args.tag);
    let bytes = artifact::to_bytes(&manifest);
    let manifest_digest = Sha256::of_bytes(&bytes).oci();
    let target = format!("{}/{repository}:{}", reg.host, args.tag);
    let op = ctx.audit.op("baseline.push", target.clone());
    // Pushes of one tag from this machine take turns; across machines, `confirm` below.
    let lock_path = ctx.cache_dir.join("locks").join(format!(
        "baseline-{}.lock",
        Sha256::of_bytes(target.as_bytes()).hex()
    ));
    let _turn = crate::pipeline::store::lock_exclusive(
        crate::pipeline::store::open_lock_file(&lock_path)?,
        &lock_path,
        crate::settings::lock_timeout()?.as_secs(),
    )?;
    let held = |existing: Option<(Vec<u8>, String)>| -> Result<Option<&'static str>> {
        let Some((existing, _)) = existing else {
            return Ok(None);
        };
        let held = layer_digest(&existing);
        if held.as_deref() == Some(sha256.oci().as_str()) {
            return Ok(Some("unchanged"));
        }
        Err(Error::input(
            format!(
                "{target} already holds another image ({})",
                held.unwrap_or_else(|| "not a baseline".into())
            ),
            "a released baseline never changes: push this one under the new release's tag",
        ))
    };
    let refused = |e: Error| {
        ctx.audit
            .op("baseline.push", target.clone())
            .detail("tag holds another image")
            .done("refused");
        e
    };
    let status = match held(client.manifest(&repository, &args.tag)?).map_err(refused)? {
        Some(status) => status,
        None => {
            client.push_blob_file(
                &repository,
                image,
                &sha256,
                size,
                &crate::progress::Bar::hidden(),
            )?;
            client.push_blob_bytes(&repository, artifact::EMPTY_CONFIG)?;
            // The race window starts at the last look at the tag: right before the put.
            let checked = Instant::now();
            match held(client.manifest(&repository, &args.tag)?).map_err(refused)? {
                Some(status) => status,
                None => {
                    client.push_manifest(
                        &repository,
                        Some(&args.tag),
                        &bytes,
                        artifact::MANIFEST_MEDIA_TYPE,
                    )?;
                    let confirmed = confirm(&client, &repository, &args.tag, &sha256, checked);
                    if let Err(e) = &confirmed {
                        ctx.audit
                            .op("baseline.push", target.clone())
                            .detail(e.clone())
                            .done("failed");
                    }
                    confirmed.map_err(|reason| Error::Registry {
                        operation: format!("baseline push of {}", args.tag),
                        registry: reg.host.clone(),
                        reason,
                        hint: "registries cannot refuse a second push to a tag, so protoreg \
                               reports `pushed` only once the tag has held its image for a \
                               moment; see which image the tag holds now, and push this one \
                               again (a no-op if the tag holds it) or under another tag"
                            .into(),
                    })?;
                    "pushed"
                }
            }
        }
    };
    op.digest(manifest_digest.clone()).done("ok");
    if args.json {
        crate::outln!(
            "{}",
            serde_json::json!({
                "status": status,
                "registry": reg.host,
                "repository": repository,
                "tag": args.tag,
                "sha256": sha256.hex(),
                "size": size,
                "manifest": manifest_digest,
            })
        );
    } else {
        eprintln!("{status}: {}/{repository}:{}", reg.host, args.tag);
        // The pin, ready to paste into a BUCK file.
        crate::outln!(
            "registry_image(\n    name = \"{}\",\n    repository = \"{}\",\n    tag = \"{}\",\n    sha256 = \"{}\",\n    size = {size},\n)",
            args.name.as_deref().unwrap_or("baseline"),
            args.repository,
            args.tag,
            sha256.hex(),
        );
    }
    Ok(())
}

/// Registries have no compare-and-swap for tags: two pushes that both saw a tag free both
/// put their manifest, and the later one wins. So a push reports `pushed` only if its put
/// finished within [`PUT_WINDOW`] of its last look at the free tag, and the tag still holds
/// its image [`SETTLE`] later. Of two racing pushes that both keep to the window, the one
/// whose put came first sees the other's image when it looks again (the other's put landed
/// less than a window after the first one's), and the later one sees its own: at most one
/// reports `pushed`, and a tag reported pushed is never moved by a push that raced it.
const PUT_WINDOW: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_secs(2);

fn confirm(
    client: &crate::registry::Registry,
    repository: &str,
    tag: &str,
    sha256: &Sha256,
    checked: Instant,
) -> std::result::Result<(), String> {
    let took = checked.elapsed();
    if took > PUT_WINDOW {
        // The put has landed and cannot be taken back: say what the tag holds now, and
        // that a push which reported `pushed` meanwhile may have been replaced.
        let now = client
            .manifest(repository, tag)
            .ok()
            .flatten()
            .and_then(|(bytes, _)| layer_digest(&bytes))
            .unwrap_or_else(|| "nothing".into());
        return Err(format!(
            "the push took {:.1} s from the last look at the tag, too long to rule out a \
             concurrent push of another image; `{tag}` now holds {now}, and a push of \
             another image that reported `pushed` in the last {:.0} s was replaced by it: \
             push that image again to see (it says `unchanged` if the tag holds it)",
            took.as_secs_f64(),
            took.as_secs_f64().ceil() + SETTLE.as_secs_f64()
        ));
    }
    std::thread::sleep(SETTLE);
    let now = client
        .manifest(repository, tag)
        .map_err(|e| e.summary())?
        .and_then(|(bytes, _)| layer_digest(&bytes));
    if now.as_deref() == Some(sha256.oci().as_str()) {
        Ok(())
    } else {
        Err(format!(
            "a concurrent push put another image under `{tag}` ({}): this one was not released",
            now.unwrap_or_else(|| "none".into())
        ))
    }
}

/// Copy the checked image `from` (opened at `path`, read from its start) to `to`, at most
/// [`MAX_IMAGE_BYTES`].
fn copy_checked(from: std::fs::File, path: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let mut out = std::fs::File::create(to).map_err(|e| Error::io("create", to, e))?;
    let copied = std::io::copy(&mut from.take(MAX_IMAGE_BYTES + 1), &mut out)
        .map_err(|e| Error::io("read", path, e))?;
    if copied > MAX_IMAGE_BYTES {
        return Err(Error::input(
            format!(
                "`{}` grew past {} while it was read",
                path.display(),
                crate::error::Bytes(MAX_IMAGE_BYTES)
            ),
            "give the proto_library's output, and let its build finish first",
        ));
    }
    Ok(())
}

/// A FileDescriptorSet (what `buf build -o x.binpb` and protoc's `--descriptor_set_out`
/// write) is a sequence of `file` fields: each starts with the tag byte 0x0a. The file as
/// opened and checked, at its start.
fn check_image(path: &std::path::Path) -> Result<std::fs::File> {
    let not_image = |what: String| {
        Error::input(
            format!("`{}` is not a descriptor set: {what}", path.display()),
            "give the proto_library's output: `buck2 build //pkg:lib --show-output`",
        )
    };
    // Opened without blocking and checked as opened: a FIFO or device is refused, never read.
    let (mut file, meta) = crate::textfile::open_regular(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => not_image("not a file".to_string()),
        _ => Error::io("read", path, e),
    })?;
    if meta.len() == 0 || meta.len() > MAX_IMAGE_BYTES {
        return Err(not_image(format!("{} bytes", meta.len())));
    }
    let mut first = [0u8; 1];
    file.read_exact(&mut first)
        .map_err(|e| Error::io("read", path, e))?;
    if first[0] != 0x0a {
        return Err(Error::input(
            format!(
                "`{}` is not a descriptor set (it starts with byte 0x{:02x}, not a `file` field)",
                path.display(),
                first[0]
            ),
            "give the proto_library's output (a FileDescriptorSet / buf image, `.binpb`)",
        ));
    }
    file.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| Error::io("read", path, e))?;
    Ok(file)
}

fn check_tag(tag: &str) -> Result<()> {
    if artifact::valid_tag(tag) {
        Ok(())
    } else {
        Err(Error::input(
            format!("`{tag}` is not an OCI tag"),
            "the API's release version, as in `v1.2.0`: letters, digits, `.`, `_`, `-`",
        ))
    }
}

fn manifest(sha256: &Sha256, size: u64, tag: &str) -> Manifest {
    let mut ann = BTreeMap::new();
    ann.insert(artifact::TITLE.to_string(), IMAGE_FILE.to_string());
    ann.insert(artifact::VERSION.to_string(), tag.to_string());
    artifact::one_layer_manifest(
        IMAGE_ARTIFACT_TYPE,
        IMAGE_FILE,
        artifact::layer_media_type(crate::pipeline::extract::Format::Raw),
        sha256,
        size,
        ann,
    )
}

/// The digest of a baseline manifest's one layer.
fn layer_digest(bytes: &[u8]) -> Option<String> {
    let m: Manifest = serde_json::from_slice(bytes).ok()?;
    if m.artifact_type.as_deref() != Some(IMAGE_ARTIFACT_TYPE) || m.layers.len() != 1 {
        return None;
    }
    m.layers.into_iter().next().map(|l| l.digest)
}
