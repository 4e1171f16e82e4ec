"""Breaking-change baselines from the registry: the descriptor set (buf image) of a released
API version, published with `protoreg baseline push`, and fetched by its digest like any
pinned artifact. `protoreg baseline push` prints the target to paste:

```python
registry_image(
    name = "weather_v1",
    repository = "images/acme-weather",
    tag = "v1.0.0",
    sha256 = "…",
    size = 1234,
)

buf_breaking_test(name = "weather_breaking_released", proto = ":weather", against = ":weather_v1")
```

The image comes from the `[protobuf]` registries in order (helper mode: `protoreg
materialize`, which authenticates), or in native mode from the primary registry's blob URL
with Buck2's `download_file` (registries that allow anonymous pulls). Either way its bytes are
checked against `sha256` (and `size`) before buf reads them.
"""

load(":config.bzl", "protobuf_config")
load(":fetch.bzl", "tool_distribution")
load(":providers.bzl", "ToolDistributionInfo")

# buf tells an image by its extension.
_IMAGE = "image.binpb"

def _registry_image_impl(ctx: AnalysisContext) -> list[Provider]:
    image = ctx.attrs.distribution[ToolDistributionInfo].binaries[_IMAGE]
    return [DefaultInfo(default_output = image)]

_registry_image = rule(
    impl = _registry_image_impl,
    attrs = {
        "distribution": attrs.dep(providers = [ToolDistributionInfo]),
    },
    doc = "The fetched image file itself, as the default output `buf_breaking_test` reads.",
)

def registry_image(
        name: str,
        repository: str,
        tag: str,
        sha256: str,
        size: int | None = None,
        visibility: list[str] = ["PUBLIC"]) -> None:
    """A baseline image in the registry: `repository` under the `[protobuf]` registries'
    namespace, `tag` (the API's release, for people), `sha256`/`size` (what is trusted)."""
    config = protobuf_config()
    if not config.registries:
        fail("registry_image `{}`: `.buckconfig` [protobuf] names no registry to fetch it from".format(name))
    if len(sha256) != 64:
        fail("registry_image `{}`: sha256 must be 64 hex digits, as `protoreg baseline push` prints it".format(name))
    host, _, namespace = config.registries[0].partition("/")
    path = "{}/{}".format(namespace, repository) if namespace else repository
    tool_distribution(
        name = name + "-fetch",
        tool = repository,
        version = tag,
        platform = "any",
        os = "any",
        format = "raw",
        sha256 = sha256,
        size = size,
        # The primary registry's blob URL: the last source in helper mode, the download in
        # native mode.
        url = "{}://{}/v2/{}/blobs/sha256:{}".format(
            "http" if config.plain_http else "https",
            host,
            path,
            sha256,
        ),
        binaries = [_IMAGE],
        fetch_mode = config.fetch_mode,
        sources = ["oci://{}/{}".format(r, repository) for r in config.registries],
        plain_http = config.plain_http,
        cache_dir = config.cache_dir,
        link = config.link,
        offline = config.offline,
        protoreg = config.protoreg_target,
        visibility = visibility,
    )
    _registry_image(
        name = name,
        distribution = ":" + name + "-fetch",
        visibility = visibility,
    )
