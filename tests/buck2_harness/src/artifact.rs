//! Artifacts: source files and declared outputs, and the `as_output()` handle that binds them.

use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::collections::StarlarkHasher;
use starlark::environment::{Methods, MethodsBuilder, MethodsStatic};
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::none::NoneOr;
use starlark::values::starlark_value;
use starlark::values::{Heap, NoSerialize, StarlarkValue, Value};

use crate::repo::join;
use crate::util::sl_err;

/// Where an artifact lives, relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactPath {
    /// Project-relative path (`buck-out/...` for build artifacts).
    pub path: String,
    /// The part after the owner's output directory (or the package, for sources).
    pub short_path: String,
    /// `None` for source files; the configured owner for build artifacts.
    pub owner: Option<String>,
}

impl ArtifactPath {
    pub fn is_source(&self) -> bool {
        self.owner.is_none()
    }
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Artifact {
    #[allocative(skip)]
    pub path: Arc<ArtifactPath>,
}
starlark_simple_value!(Artifact);

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path.owner {
            None => write!(f, "<source {}>", self.path.path),
            Some(o) => write!(f, "<build artifact {} bound to {o}>", self.path.short_path),
        }
    }
}

#[starlark_value(type = "Artifact")]
impl<'v> StarlarkValue<'v> for Artifact {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("artifact_methods", artifact_methods);
        Some(RES.methods())
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(Artifact::from_value(other).is_some_and(|o| o.path == self.path))
    }

    fn write_hash(&self, hasher: &mut StarlarkHasher) -> starlark::Result<()> {
        std::hash::Hash::hash(&self.path.path, hasher);
        Ok(())
    }
}

#[starlark_module]
fn artifact_methods(builder: &mut MethodsBuilder) {
    #[starlark(attribute)]
    fn short_path(this: &Artifact) -> starlark::Result<String> {
        Ok(this.path.short_path.clone())
    }

    #[starlark(attribute)]
    fn basename(this: &Artifact) -> starlark::Result<String> {
        Ok(this
            .path
            .short_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned())
    }

    #[starlark(attribute)]
    fn extension(this: &Artifact) -> starlark::Result<String> {
        let base = this.path.short_path.rsplit('/').next().unwrap_or_default();
        Ok(base
            .rfind('.')
            .filter(|i| *i > 0)
            .map_or(String::new(), |i| base[i..].to_owned()))
    }

    #[starlark(attribute)]
    fn is_source(this: &Artifact) -> starlark::Result<bool> {
        Ok(this.path.is_source())
    }

    #[starlark(attribute)]
    fn owner(this: &Artifact) -> starlark::Result<NoneOr<String>> {
        Ok(match &this.path.owner {
            None => NoneOr::None,
            Some(o) => NoneOr::Other(o.clone()),
        })
    }

    fn as_output(this: &Artifact) -> starlark::Result<OutputArtifact> {
        if this.path.is_source() {
            return Err(sl_err(format!(
                "Source artifact `{}` cannot be used as an output",
                this.path.path
            )));
        }
        Ok(OutputArtifact {
            path: this.path.clone(),
        })
    }

    fn project(
        this: &Artifact,
        #[starlark(require = pos)] path: &str,
        #[starlark(require = named, default = false)] hide_prefix: bool,
    ) -> starlark::Result<Artifact> {
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
        {
            return Err(sl_err(format!(
                "`project()` expects a normalized relative path, got `{path}`"
            )));
        }
        let short_path = if hide_prefix {
            path.to_owned()
        } else {
            join(&this.path.short_path, path)
        };
        Ok(Artifact {
            path: Arc::new(ArtifactPath {
                path: join(&this.path.path, path),
                short_path,
                owner: this.path.owner.clone(),
            }),
        })
    }

    fn without_associated_artifacts(this: &Artifact) -> starlark::Result<Artifact> {
        Ok(Artifact {
            path: this.path.clone(),
        })
    }
}

/// `artifact.as_output()`: the artifact an action writes.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct OutputArtifact {
    #[allocative(skip)]
    pub path: Arc<ArtifactPath>,
}
starlark_simple_value!(OutputArtifact);

impl fmt::Display for OutputArtifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<output artifact for {}>", self.path.short_path)
    }
}

#[starlark_value(type = "OutputArtifact")]
impl<'v> StarlarkValue<'v> for OutputArtifact {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "short_path" => Some(heap.alloc(self.path.short_path.as_str())),
            _ => None,
        }
    }
}
