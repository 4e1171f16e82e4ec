//! What TLS trusts, for every source and registry alike. The platform's verifier by default:
//! the system store, so a CA installed on the machine just works (on Linux `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` replace the store, as for curl). `--ca-bundle` / `PROTOREG_CA_BUNDLE` adds
//! the certificates of one PEM file to that, for protoreg alone: a corporate CA without
//! touching the machine. Read once per run; a file that is missing or holds no certificate
//! is an input error (exit 2) before any work, in every command that may connect (the build
//! actions' helpers, `protoc`, `copy-self` and `expect-findings`, never do). Every file TLS would read (the bundle,
//! `SSL_CERT_FILE`, the files of `SSL_CERT_DIR`) must be a regular file of bounded size,
//! checked before any client is built: a FIFO blocks the read forever and a device such as
//! `/dev/zero` never ends, even for a run that only speaks plain HTTP.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::error::{Error, Result};

/// The environment variable of the bundle.
pub const ENV_CA_BUNDLE: &str = "PROTOREG_CA_BUNDLE";

/// A bundle larger than this is not one (the whole Mozilla store is about 220 KiB).
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

static FLAG: OnceLock<PathBuf> = OnceLock::new();
/// The bundle's certificates, or why it was refused (what, how to fix).
type Loaded = std::result::Result<Vec<CertificateDer<'static>>, (String, String)>;

static EXTRA: OnceLock<Loaded> = OnceLock::new();

/// The `--ca-bundle` of this invocation (it wins over the environment), set before the
/// first client is built.
pub fn configure(flag: Option<&Path>) {
    if let Some(p) = flag {
        let _ = FLAG.set(p.to_path_buf());
    }
}

fn bundle_path() -> Option<(PathBuf, String)> {
    if let Some(p) = FLAG.get() {
        return Some((p.clone(), "--ca-bundle".into()));
    }
    std::env::var_os(ENV_CA_BUNDLE)
        .filter(|v| !v.is_empty())
        .map(|v| (PathBuf::from(v), ENV_CA_BUNDLE.to_string()))
}

/// Refuse a bundle that is unreadable or holds no certificate, and a system store
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`) that is not regular files of bounded size
/// ([`crate::run`] calls this before any command's work).
pub fn check() -> Result<()> {
    let store = store_files(|name| std::env::var_os(name));
    let bundle = EXTRA.get_or_init(load).as_ref().map(|_| ());
    match store.and(bundle.map_err(Clone::clone)) {
        Ok(()) => Ok(()),
        Err((what, hint)) => Err(Error::input(what, hint)),
    }
}

/// Variables that replace the system store, as rustls-native-certs reads them.
const ENV_CERT_FILE: &str = "SSL_CERT_FILE";
const ENV_CERT_DIR: &str = "SSL_CERT_DIR";

/// Check the files `SSL_CERT_FILE` and `SSL_CERT_DIR` (as `lookup` gives them) name, before
/// rustls-native-certs reads them: the file must be a regular file of bounded size; in the
/// directories (which it does not descend) so must every regular file, the only ones it
/// reads (devices and FIFOs there are skipped by it).
fn store_files(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Refusal {
    let fix = |var: &str| {
        let what = if var == ENV_CERT_DIR {
            "a directory of PEM files"
        } else {
            "a PEM file"
        };
        format!("point {var} at {what} of CA certificates, or unset it to use the system store")
    };
    if let Some(file) = lookup(ENV_CERT_FILE).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(file);
        bounded_file(&path).map_err(|why| {
            (
                format!("{ENV_CERT_FILE}=`{}` {why}", path.display()),
                fix(ENV_CERT_FILE),
            )
        })?;
    }
    let Some(dirs) = lookup(ENV_CERT_DIR) else {
        return Ok(());
    };
    for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
        // A directory that cannot be listed is the loader's to report: it never blocks.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // One stat per entry (symlinks followed, as the loader does): this runs before
            // every command, cache hits included.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            bounded_len(meta.len()).map_err(|why| {
                (
                    format!(
                        "`{}` in {ENV_CERT_DIR}=`{}` {why}",
                        path.display(),
                        dir.display()
                    ),
                    fix(ENV_CERT_DIR),
                )
            })?;
        }
    }
    Ok(())
}

/// Why `path` is not a regular file of at most [`MAX_BUNDLE_BYTES`] (symbolic links
/// followed, as the readers do), if it is not.
fn bounded_file(path: &Path) -> std::result::Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err(
            "is not a regular file (a FIFO, device or directory is never read as certificates)"
                .into(),
        );
    }
    bounded_len(meta.len())
}

/// Why a file of `len` bytes is too large to be certificates, if it is.
fn bounded_len(len: u64) -> std::result::Result<(), String> {
    if len > MAX_BUNDLE_BYTES {
        return Err(format!(
            "is larger than {}, more than any certificate store",
            crate::error::Bytes(MAX_BUNDLE_BYTES)
        ));
    }
    Ok(())
}

/// What was refused and how to fix it, if anything was.
type Refusal = std::result::Result<(), (String, String)>;

/// The certificates trusted beyond the platform's (empty without a bundle).
pub fn extra_roots() -> &'static [CertificateDer<'static>] {
    match EXTRA.get_or_init(load) {
        Ok(certs) => certs,
        // Refused by `check` before any client is built; trusting nothing more is the safe
        // answer for a caller that did not check.
        Err(_) => &[],
    }
}

fn load() -> Loaded {
    let Some((path, from)) = bundle_path() else {
        return Ok(Vec::new());
    };
    let bad = |why: String| {
        (
            format!("the CA bundle `{}` ({from}) {why}", path.display()),
            format!("point {from} at a PEM file of CA certificates (`-----BEGIN CERTIFICATE-----`), or unset it"),
        )
    };
    bounded_file(&path).map_err(bad)?;
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| bad(format!("cannot be read: {e}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(certs)
}

/// The root certificates of a ureq agent: the platform's verifier alone, or, with a bundle,
/// the system store read by rustls-native-certs plus the bundle (ureq cannot add roots to
/// the platform verifier; oci-client's reqwest can, see [`oci_certificates`]).
pub fn ureq_roots() -> ureq::tls::RootCerts {
    let extra = extra_roots();
    if extra.is_empty() {
        return ureq::tls::RootCerts::PlatformVerifier;
    }
    // Certificates the system store cannot parse are skipped, as the platform verifier does.
    let system = rustls_native_certs::load_native_certs().certs;
    system
        .iter()
        .chain(extra)
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect::<Vec<_>>()
        .into()
}

/// The bundle for oci-client, which adds it to the platform verifier's roots.
pub fn oci_certificates() -> Vec<oci_client::client::Certificate> {
    extra_roots()
        .iter()
        .map(|der| oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Der,
            data: der.as_ref().to_vec(),
        })
        .collect()
}
