# The tool catalogue: every tool and protoc plugin a build can fetch, and how. Edit by hand
# to declare another plugin (README.md, "Declaring a tool"); then `protoreg bump TOOL VERSION`
# pins it in pins.bzl. Loaded by toolchains/BUCK; read by protoreg, which refuses a wrong
# entry naming this file, its line and the key.
#
# Fields (all strings unless said; `{…}` placeholders are listed under "Templates" below):
#   kind            optional: "tool" (the default: binaries per platform) or "protos" (an
#                   archive of .proto sources, the same on every platform, pinned as `any`)
#   srcs            protos: the .proto files of the library `toolchains//:NAME`, by import path
#   upstream        "github" (releases of `repository`) or "url" (a static host: `url`)
#   repository      github: OWNER/REPO
#   tag             github: the release tag of a version, e.g. "v{version}"
#   url             url: where one platform's asset is, e.g. "https://repo1.maven.org/…/{asset}"
#   checksum_url    url, optional: a file holding the asset's sha256 (a bare digest, or
#                   `sha256sum` lines naming the asset)
#   asset           the asset's file name; `.zip`, `.tar.gz`/`.tgz`, `.tar.xz`/`.txz`, or
#                   else one raw binary
#   assets          optional {platform: asset} overrides, for upstreams that spell one
#                   platform differently
#   platforms       the canonical platforms upstream ships
#   strip_prefix    leading directory of the archive to drop ("" for none; may use {version},
#                   and {asset_stem}: the asset's name without its archive extension)
#   binaries        the executables in the tree, without ".exe" (a raw asset is the first)
#   platform_binaries  optional {platform: binaries} overrides, for an archive laid out apart
#                   on one platform (Node.js's Windows zip: node.exe at its top)
#   directories     optional: directories of the tree exposed as sub-targets (protoc's include)
#   oci_repository  where it lives under the registry namespace: "tools/…" or "plugins/…"
#   checksum_file   github, optional: a release asset listing every asset's sha256
#   version_output  optional: the first line `BINARY --version` prints, for the bump check
#   plugin_name     optional: the protoc plugin name (`--NAME_out`) when the tool's name
#                   is not `protoc-gen-NAME`
#
# Templates: {version}, {platform} (linux-x86_64), {protoc} (linux-aarch_64, osx-x86_64,
# win64), {buf} (Linux-aarch64), {goos} (linux, darwin, windows), {goarch} (amd64, arm64),
# {archive} (zip on Windows, tar.gz elsewhere), {tgz_or_exe} (exe on Windows, tar.gz
# elsewhere), {exe} (.exe on Windows), and in `url` and `checksum_url`, {asset}.

TOOLS = {
    # googleapis at a commit, as GitHub serves its archive: `toolchains//:googleapis` is a
    # proto_library of these files with upstream's import paths (google/api/annotations.proto).
    "googleapis": {
        "kind": "protos",
        "upstream": "url",
        "url": "https://github.com/googleapis/googleapis/archive/{version}.zip",
        "asset": "googleapis-{version}.zip",
        "strip_prefix": "googleapis-{version}",
        "srcs": [
            "google/api/annotations.proto",
            "google/api/client.proto",
            "google/api/field_behavior.proto",
            "google/api/http.proto",
            "google/api/launch_stage.proto",
            "google/api/resource.proto",
            "google/rpc/status.proto",
        ],
        "oci_repository": "protos/googleapis",
    },
    "buf": {
        "upstream": "github",
        "repository": "bufbuild/buf",
        "tag": "v{version}",
        # buf-Linux-x86_64.tar.gz holds buf/bin/{buf,protoc-gen-buf-*}; Windows gets the bare
        # buf.exe: upstream ships no Windows archive.
        "asset": "buf-{buf}.{tgz_or_exe}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-arm64", "windows-x86_64"],
        "strip_prefix": "buf",
        "binaries": ["bin/buf", "bin/protoc-gen-buf-breaking", "bin/protoc-gen-buf-lint"],
        "oci_repository": "tools/buf",
        "checksum_file": "sha256.txt",
        "version_output": "{version}",
    },
    # Node.js, which protoc-gen-es (a script) runs on: `toolchains//:node`.
    "node": {
        "upstream": "url",
        "url": "https://nodejs.org/dist/v{version}/{asset}",
        "checksum_url": "https://nodejs.org/dist/v{version}/SHASUMS256.txt",
        "asset": "node-v{version}-linux-x64.tar.xz",
        "assets": {
            "darwin-arm64": "node-v{version}-darwin-arm64.tar.xz",
            "darwin-x86_64": "node-v{version}-darwin-x64.tar.xz",
            "linux-aarch64": "node-v{version}-linux-arm64.tar.xz",
            "windows-x86_64": "node-v{version}-win-x64.zip",
        },
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "strip_prefix": "{asset_stem}",
        "binaries": ["bin/node"],
        # The Windows zip holds node.exe at its top, not in bin/.
        "platform_binaries": {"windows-x86_64": ["node"]},
        "oci_repository": "tools/node",
        "version_output": "v{version}",
    },
    "protoc": {
        "upstream": "github",
        "repository": "protocolbuffers/protobuf",
        "tag": "v{version}",
        "asset": "protoc-{version}-{protoc}.zip",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "binaries": ["bin/protoc"],
        "directories": ["include"],
        "oci_repository": "tools/protoc",
        "version_output": "libprotoc {version}",
    },
    # Upstream publishes no binaries up to v1.20.0; connect-go's release workflow adds
    # archives after it (connectrpc/connect-go#966). The bump refuses if these names differ.
    "protoc-gen-connect-go": {
        "upstream": "github",
        "repository": "connectrpc/connect-go",
        "tag": "v{version}",
        "asset": "protoc-gen-connect-go-v{version}-{buf}.{archive}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "binaries": ["protoc-gen-connect-go"],
        "oci_repository": "plugins/protoc-gen-connect-go",
    },
    "protoc-gen-go": {
        "upstream": "github",
        "repository": "protocolbuffers/protobuf-go",
        "tag": "v{version}",
        "asset": "protoc-gen-go.v{version}.{goos}.{goarch}.{archive}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "binaries": ["protoc-gen-go"],
        "oci_repository": "plugins/protoc-gen-go",
        "version_output": "protoc-gen-go v{version}",
    },
    "protoc-gen-go-grpc": {
        "upstream": "github",
        "repository": "grpc/grpc-go",
        "tag": "cmd/protoc-gen-go-grpc/v{version}",
        "asset": "protoc-gen-go-grpc.v{version}.{goos}.{goarch}.{archive}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "binaries": ["protoc-gen-go-grpc"],
        "oci_repository": "plugins/protoc-gen-go-grpc",
        "version_output": "protoc-gen-go-grpc {version}",
    },
    # Bare binaries, one per platform (grpc-gateway's .goreleaser.yml: `formats: [binary]`).
    "protoc-gen-grpc-gateway": {
        "upstream": "github",
        "repository": "grpc-ecosystem/grpc-gateway",
        "tag": "v{version}",
        "asset": "protoc-gen-grpc-gateway-v{version}-{goos}-{cpu}{exe}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-arm64", "windows-x86_64"],
        "binaries": ["protoc-gen-grpc-gateway"],
        "oci_repository": "plugins/protoc-gen-grpc-gateway",
        "checksum_file": "grpc-gateway_{version}_checksums.txt",
    },
    # Maven Central: one bare executable per platform, protoc's platform spelling but for
    # Windows; each with a `.sha256` beside it.
    "protoc-gen-grpc-java": {
        "upstream": "url",
        "url": "https://repo1.maven.org/maven2/io/grpc/protoc-gen-grpc-java/{version}/{asset}",
        "checksum_url": "https://repo1.maven.org/maven2/io/grpc/protoc-gen-grpc-java/{version}/{asset}.sha256",
        "asset": "protoc-gen-grpc-java-{version}-{protoc}.exe",
        "assets": {"windows-x86_64": "protoc-gen-grpc-java-{version}-windows-x86_64.exe"},
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "binaries": ["protoc-gen-grpc-java"],
        "oci_repository": "plugins/protoc-gen-grpc-java",
        "plugin_name": "grpc-java",
    },
    "protoc-gen-openapiv2": {
        "upstream": "github",
        "repository": "grpc-ecosystem/grpc-gateway",
        "tag": "v{version}",
        "asset": "protoc-gen-openapiv2-v{version}-{goos}-{cpu}{exe}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-arm64", "windows-x86_64"],
        "binaries": ["protoc-gen-openapiv2"],
        "oci_repository": "plugins/protoc-gen-openapiv2",
        "checksum_file": "grpc-gateway_{version}_checksums.txt",
    },
    "protoc-gen-validate": {
        "upstream": "github",
        "repository": "bufbuild/protoc-gen-validate",
        "tag": "v{version}",
        "asset": "protoc-gen-validate_{version}_{goos}_{goarch}.{archive}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "binaries": ["protoc-gen-validate"],
        "oci_repository": "plugins/protoc-gen-validate",
        "checksum_file": "checksums.txt",
    },
    # This project's own helper, for `[protobuf] protoreg = pinned` in .buckconfig: one raw
    # binary per platform, since a pinned protoreg is fetched without a protoreg to unpack it
    # (.github/workflows/release.yml builds them; static musl builds on Linux).
    "protoreg": {
        "upstream": "github",
        "repository": "birbparty/buck2-protobuf",
        "tag": "v{version}",
        "asset": "protoreg-{version}-{platform}{exe}",
        "platforms": ["darwin-arm64", "darwin-x86_64", "linux-aarch64", "linux-x86_64", "windows-x86_64"],
        "binaries": ["protoreg"],
        "oci_repository": "tools/protoreg",
        # .github/workflows/release.yml attaches it (scripts/release-build writes it).
        "checksum_file": "sha256.txt",
        "version_output": "protoreg {version}",
    },
}
