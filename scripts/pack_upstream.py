"""Repack real binaries into the exact archive layouts and names of their GitHub releases.

GitHub is unreachable on these machines, so the tests serve these archives from a loopback
GitHub-shaped server. The bytes inside are the real upstream binaries (npm/Debian); only the
archive wrapping is rebuilt, deterministically (fixed mtimes, sorted members), so a re-run
produces identical digests.
"""
import argparse
import hashlib
import io
import os
import stat
import tarfile
import zipfile

EPOCH = (2025, 1, 1, 0, 0, 0)
EPOCH_TS = 1735689600

PROTOC_VERSION = "36.2"
PROTOC_PLATFORMS = {  # upstream asset suffix -> binary name inside the npm package
    "linux-x86_64": "protoc-linux-x86_64",
    "linux-aarch_64": "protoc-linux-aarch_64",
    "osx-x86_64": "protoc-osx-x86_64",
    "osx-aarch_64": "protoc-osx-aarch_64",
    "win64": "protoc-win64.exe",
}
BUF_VERSION = "1.75.0"
# The node of this machine (Debian's), whatever its version, named as this one.
NODE_VERSION = "20.20.2"
# googleapis as GitHub serves a commit's archive (googleapis-<ref>/google/...), filled with
# the .proto files PyPI's googleapis-common-protos ships; <ref> names the fixture, not a commit.
GOOGLEAPIS_REF = "common-protos-1.76.0"


def write_if_changed(path, data):
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def zip_bytes(members):
    """members: list of (name, bytes, executable)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, exe in sorted(members):
            info = zipfile.ZipInfo(name, EPOCH)
            info.create_system = 3
            info.external_attr = (0o100755 if exe else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def tgz_bytes(members):
    out = io.BytesIO()
    import gzip
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(tar_bytes(members))
    return out.getvalue()


def txz_bytes(members):
    import lzma
    # Upstream uses a higher preset; 1 keeps install-deps quick and reads the same.
    return lzma.compress(tar_bytes(members), format=lzma.FORMAT_XZ, preset=1)


def tar_bytes(members):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs = set()
        for name, _, _ in members:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        for d in sorted(dirs):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, EPOCH_TS
            t.addfile(ti)
        for name, data, exe in sorted(members):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), (0o755 if exe else 0o644), EPOCH_TS
            t.addfile(ti, io.BytesIO(data))
    return raw.getvalue()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def include_members(pkg):
    root = os.path.join(pkg, "include")
    out = []
    for dirpath, _, files in os.walk(root):
        for fn in files:
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, pkg).replace(os.sep, "/")
            out.append((rel, read(full), False))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--protoc-pkg", required=True)
    ap.add_argument("--buf-pkg", required=True)
    ap.add_argument("--buf-extra", action="append", default=[],
                    help="SUFFIX=DIR: another buf platform (Darwin-arm64=.../package)")
    ap.add_argument("--protoc-gen-go", required=True)
    ap.add_argument("--protoc-gen-go-grpc", required=True)
    ap.add_argument("--protoc-gen-go-windows", required=True,
                    help="protoc-gen-go.exe of the same version, packed as upstream ships Windows")
    ap.add_argument("--googleapis-wheel", required=True)
    ap.add_argument("--node", required=True, help="a node executable, packed as Node.js ships Linux x64")
    ap.add_argument("--debian-protoc", required=True,
                    help="Debian's protoc 3.21.12 (protobuf-compiler), packed as protoc 21.12 for Linux x86_64")
    ap.add_argument("--debian-include", required=True,
                    help="where Debian's libprotobuf-dev puts google/protobuf/*.proto (/usr/include)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    includes = include_members(a.protoc_pkg)
    readme = (b"Protocol Buffers - Google's data interchange format\n"
              b"(repacked for tests from the npm protoc package)\n", False)
    for suffix, binary in PROTOC_PLATFORMS.items():
        exe = "bin/protoc.exe" if suffix == "win64" else "bin/protoc"
        members = [(exe, read(os.path.join(a.protoc_pkg, "bin", binary)), True),
                   ("readme.txt",) + readme] + includes
        write_if_changed(os.path.join(a.out, f"protoc-{PROTOC_VERSION}-{suffix}.zip"), zip_bytes(members))

    # protoc 21.12 as upstream ships it, from Debian's build of that release (dynamically
    # linked to Debian's libprotoc: it runs where libprotobuf-dev is, which the C++ runtime
    # it matches needs anyway): bin/protoc and the well-known types under include/.
    wkt = []
    root = a.debian_include
    for dirpath, _, files in os.walk(os.path.join(root, "google", "protobuf")):
        for fn in sorted(files):
            if fn.endswith(".proto"):
                full = os.path.join(dirpath, fn)
                wkt.append(("include/" + os.path.relpath(full, root).replace(os.sep, "/"), read(full), False))
    members = [("bin/protoc", read(a.debian_protoc), True),
               ("readme.txt", b"Protocol Buffers 21.12 (repacked for tests from Debian's protobuf-compiler)\n", False)]
    write_if_changed(os.path.join(a.out, "protoc-21.12-linux-x86_64.zip"),
                     zip_bytes(members + sorted(wkt)))

    # buf, as upstream publishes it: buf-<OS>-<arch>.tar.gz with buf/bin/{buf,
    # protoc-gen-buf-breaking,protoc-gen-buf-lint} and the bare buf-<OS>-<arch> binary beside
    # it; on Windows only the bare buf-Windows-<arch>.exe (there is no Windows archive); one
    # sha256.txt over every asset.
    bins = ["buf", "protoc-gen-buf-breaking", "protoc-gen-buf-lint"]
    sums = {}
    for suffix, pkg in [("Linux-x86_64", a.buf_pkg)] + [tuple(x.split("=", 1)) for x in a.buf_extra]:
        windows = suffix.startswith("Windows")
        exe = ".exe" if windows else ""
        buf = read(os.path.join(pkg, "bin", "buf" + exe))
        raw = f"buf-{suffix}{exe}"
        write_if_changed(os.path.join(a.out, raw), buf)
        sums[raw] = hashlib.sha256(buf).hexdigest()
        if windows:
            # The Windows zip an older version of this script made: upstream has none.
            stale = os.path.join(a.out, f"buf-{suffix}.zip")
            if os.path.exists(stale):
                os.remove(stale)
            continue
        members = [(f"buf/bin/{b}", read(os.path.join(pkg, "bin", b)), True) for b in bins]
        lic = os.path.join(pkg, "LICENSE")
        members.append(("buf/LICENSE", read(lic) if os.path.exists(lic) else b"Apache-2.0\n", False))
        name = f"buf-{suffix}.tar.gz"
        data = tgz_bytes(members)
        write_if_changed(os.path.join(a.out, name), data)
        sums[name] = hashlib.sha256(data).hexdigest()
    text = "".join(f"{h}  {n}\n" for n, h in sorted(sums.items()))
    write_if_changed(os.path.join(a.out, "sha256.txt"), text.encode())

    # protoc-gen-go: protoc-gen-go.v<ver>.linux.amd64.tar.gz with the binary at the root.
    write_if_changed(os.path.join(a.out, "protoc-gen-go.v1.28.1.linux.amd64.tar.gz"),
                     tgz_bytes([("protoc-gen-go", read(a.protoc_gen_go), True),
                                ("LICENSE", b"BSD-3-Clause\n", False),
                                ("README.md", b"protoc-gen-go\n", False)]))
    # ... and protoc-gen-go.v<ver>.windows.amd64.zip with protoc-gen-go.exe at the root.
    write_if_changed(os.path.join(a.out, "protoc-gen-go.v1.28.1.windows.amd64.zip"),
                     zip_bytes([("protoc-gen-go.exe", read(a.protoc_gen_go_windows), True),
                                ("LICENSE", b"BSD-3-Clause\n", False),
                                ("README.md", b"protoc-gen-go\n", False)]))
    write_if_changed(os.path.join(a.out, "protoc-gen-go-grpc.v1.0.0.linux.amd64.tar.gz"),
                     tgz_bytes([("./protoc-gen-go-grpc", read(a.protoc_gen_go_grpc), True),
                                ("./LICENSE", b"Apache-2.0\n", False)]))

    # Node.js: node-v<ver>-linux-x64.tar.xz holding node-v<ver>-linux-x64/bin/node.
    top = f"node-v{NODE_VERSION}-linux-x64"
    write_if_changed(os.path.join(a.out, top + ".tar.xz"),
                     txz_bytes([(top + "/bin/node", read(a.node), True),
                                (top + "/LICENSE", b"MIT\n", False)]))

    prefix = f"googleapis-{GOOGLEAPIS_REF}/"
    with zipfile.ZipFile(a.googleapis_wheel) as wheel:
        protos = [(prefix + n, wheel.read(n), False) for n in wheel.namelist()
                  if n.startswith("google/") and n.endswith(".proto")]
    protos.append((prefix + "LICENSE", b"Apache-2.0\n", False))
    write_if_changed(os.path.join(a.out, f"googleapis-{GOOGLEAPIS_REF}.zip"), zip_bytes(protos))


if __name__ == "__main__":
    main()
