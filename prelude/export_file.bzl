"""`export_file`: make one source file a target, so other packages can depend on it.

```python
export_file(name = "buf.yaml")                    # src defaults to the name
export_file(name = "config", src = "buf.yaml")
```
"""

def _export_file_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(default_output = ctx.attrs.src)]

export_file_rule = rule(
    impl = _export_file_impl,
    attrs = {"src": attrs.source(doc = "The file, in this package.")},
    doc = "A source file as a target.",
)

def export_file(name: str, src: str | None = None, **kwargs) -> None:
    export_file_rule(name = name, src = src if src != None else name, **kwargs)
