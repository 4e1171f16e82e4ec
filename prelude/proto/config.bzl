"""`.buckconfig` `[protobuf]`, read in one place (the keys are listed in toolchains.bzl)."""

def _config_bool(key: str) -> bool:
    value = read_root_config("protobuf", key, "false").lower()
    if value not in ("true", "false"):
        fail("`.buckconfig` [protobuf] {} = {}: expected true or false".format(key, value))
    return value == "true"

def _protoc_gen_es() -> str:
    value = read_root_config("protobuf", "protoc_gen_es", "")
    if value and "//" not in value:
        fail("`.buckconfig` [protobuf] protoc_gen_es = {}: expected the label of a `node_protoc_plugin` target, e.g. `root//examples/es:protoc-gen-es`".format(value))
    return value

def protobuf_config() -> struct:
    fetch_mode = read_root_config("protobuf", "fetch_mode", "helper")
    if fetch_mode not in ("helper", "native"):
        fail("`.buckconfig` [protobuf] fetch_mode = {}: expected helper or native".format(fetch_mode))
    registries = [read_root_config("protobuf", "registry", "")]
    registries.extend(read_root_config("protobuf", "mirrors", "").split(","))
    registries = [r.strip().rstrip("/") for r in registries if r.strip()]
    for registry in registries:
        if "://" in registry:
            fail("`.buckconfig` [protobuf]: registry `{}` must be HOST[:PORT]/NAMESPACE, without a scheme".format(registry))
    link = read_root_config("protobuf", "link", "")
    if link not in ("", "copy", "hardlink"):
        fail("`.buckconfig` [protobuf] link = {}: expected copy or hardlink".format(link))
    protoreg = read_root_config("protobuf", "protoreg", "target/release/protoreg")
    return struct(
        cache_dir = read_root_config("protobuf", "cache_dir", ""),
        fetch_mode = fetch_mode,
        link = link,
        offline = _config_bool("offline"),
        plain_http = _config_bool("plain_http"),
        protoc_gen_es = _protoc_gen_es(),
        protoreg = protoreg,
        # The protoreg target outside the toolchains package: a label as given, else the
        # `:protoreg` that `protobuf_toolchains` defines.
        protoreg_target = protoreg if "//" in protoreg else "toolchains//:protoreg",
        registries = registries,
    )

def language_runtime(language: str) -> str:
    """`[protobuf] LANGUAGE_runtime`: the language's `proto_runtime` target ("" if unset)."""
    return read_root_config("protobuf", language + "_runtime", "")

def language_runtime_deps(language: str) -> list[str]:
    """`[protobuf] LANGUAGE_runtime_deps`: more runtime libraries (Go packages, Rust crates)
    generated code names, comma-separated."""
    configured = read_root_config("protobuf", language + "_runtime_deps", "")
    return [label.strip() for label in configured.split(",") if label.strip()]
