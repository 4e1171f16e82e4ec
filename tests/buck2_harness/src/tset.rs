//! `transitive_set()` definitions and `ctx.actions.tset()` values.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::coerce::Coerce;
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder, MethodsStatic};
use starlark::eval::Evaluator;
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::list::AllocList;
use starlark::values::starlark_value;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, NoSerialize, StarlarkValue, Trace, Tracer, Value,
    ValueLike,
};

use crate::cmd_args::{CmdArgs, CmdArgsData};
use crate::util::sl_err;

static NEXT: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct TransitiveSetDefinitionGen<V> {
    #[allocative(skip)]
    name: OnceLock<String>,
    args_projections: Vec<(String, V)>,
    json_projections: Vec<(String, V)>,
    reductions: Vec<(String, V)>,
}

unsafe impl<'v> Coerce<TransitiveSetDefinitionGen<Value<'v>>>
    for TransitiveSetDefinitionGen<FrozenValue>
{
}
starlark_complex_value!(pub TransitiveSetDefinition);

fn trace_pairs<'v>(v: &mut [(String, Value<'v>)], tracer: &Tracer<'v>) {
    for (_, x) in v {
        tracer.trace(x);
    }
}

fn freeze_pairs(v: Vec<(String, Value)>, f: &Freezer) -> FreezeResult<Vec<(String, FrozenValue)>> {
    v.into_iter().map(|(k, x)| Ok((k, x.freeze(f)?))).collect()
}

unsafe impl<'v> Trace<'v> for TransitiveSetDefinition<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        trace_pairs(&mut self.args_projections, tracer);
        trace_pairs(&mut self.json_projections, tracer);
        trace_pairs(&mut self.reductions, tracer);
    }
}

impl<'v> Freeze for TransitiveSetDefinition<'v> {
    type Frozen = FrozenTransitiveSetDefinition;
    fn freeze(self, f: &Freezer) -> FreezeResult<Self::Frozen> {
        Ok(TransitiveSetDefinitionGen {
            name: self.name,
            args_projections: freeze_pairs(self.args_projections, f)?,
            json_projections: freeze_pairs(self.json_projections, f)?,
            reductions: freeze_pairs(self.reductions, f)?,
        })
    }
}

impl<V> fmt::Display for TransitiveSetDefinitionGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transitive_set({})",
            self.name.get().map_or("<unassigned>", String::as_str)
        )
    }
}

#[starlark_value(type = "transitive_set_definition")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for TransitiveSetDefinitionGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    type Canonical = FrozenTransitiveSetDefinition;
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }
}

impl<'v> TransitiveSetDefinition<'v> {
    pub fn name(&self) -> Option<&str> {
        self.name.get().map(String::as_str)
    }
}

fn pairs<'v>(d: Option<Value<'v>>, what: &str) -> starlark::Result<Vec<(String, Value<'v>)>> {
    let Some(d) = d else { return Ok(Vec::new()) };
    let dict = DictRef::from_value(d)
        .ok_or_else(|| sl_err(format!("`{what}` must be a dict of name to function")))?;
    dict.iter()
        .map(|(k, v)| {
            Ok((
                k.unpack_str()
                    .ok_or_else(|| sl_err(format!("`{what}` keys must be strings")))?
                    .to_owned(),
                v,
            ))
        })
        .collect()
}

#[starlark_module]
pub fn tset_globals(builder: &mut GlobalsBuilder) {
    fn transitive_set<'v>(
        #[starlark(require = named)] args_projections: Option<Value<'v>>,
        #[starlark(require = named)] json_projections: Option<Value<'v>>,
        #[starlark(require = named)] reductions: Option<Value<'v>>,
    ) -> starlark::Result<TransitiveSetDefinition<'v>> {
        Ok(TransitiveSetDefinitionGen {
            name: OnceLock::new(),
            args_projections: pairs(args_projections, "args_projections")?,
            json_projections: pairs(json_projections, "json_projections")?,
            reductions: pairs(reductions, "reductions")?,
        })
    }
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct TransitiveSetGen<V> {
    pub id: u64,
    pub definition: V,
    pub value: Option<V>,
    pub children: Vec<V>,
    pub reductions: Vec<V>,
}

unsafe impl<'v> Coerce<TransitiveSetGen<Value<'v>>> for TransitiveSetGen<FrozenValue> {}
starlark_complex_value!(pub TransitiveSet);

unsafe impl<'v> Trace<'v> for TransitiveSet<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        tracer.trace(&mut self.definition);
        if let Some(v) = &mut self.value {
            tracer.trace(v);
        }
        for c in self.children.iter_mut().chain(self.reductions.iter_mut()) {
            tracer.trace(c);
        }
    }
}

impl<'v> Freeze for TransitiveSet<'v> {
    type Frozen = FrozenTransitiveSet;
    fn freeze(self, f: &Freezer) -> FreezeResult<Self::Frozen> {
        Ok(TransitiveSetGen {
            id: self.id,
            definition: self.definition.freeze(f)?,
            value: self.value.map(|v| v.freeze(f)).transpose()?,
            children: self
                .children
                .into_iter()
                .map(|c| c.freeze(f))
                .collect::<FreezeResult<_>>()?,
            reductions: self
                .reductions
                .into_iter()
                .map(|c| c.freeze(f))
                .collect::<FreezeResult<_>>()?,
        })
    }
}

impl<V> fmt::Display for TransitiveSetGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<transitive_set #{}>", self.id)
    }
}

#[starlark_value(type = "transitive_set")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for TransitiveSetGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    type Canonical = FrozenTransitiveSet;
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("tset_methods", tset_methods);
        Some(RES.methods())
    }
}

impl<'v> TransitiveSet<'v> {
    fn def(&self) -> &'v TransitiveSetDefinition<'v> {
        TransitiveSetDefinition::from_value(self.definition).expect("tset has a definition")
    }

    /// Nodes in Buck2's orders, each node once.
    pub fn traverse(me: Value<'v>, ordering: &str) -> starlark::Result<Vec<&'v TransitiveSet<'v>>> {
        let root = TransitiveSet::from_value(me).expect("a tset");
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        fn pre<'v>(
            t: &'v TransitiveSet<'v>,
            seen: &mut HashSet<u64>,
            out: &mut Vec<&'v TransitiveSet<'v>>,
        ) {
            if !seen.insert(t.id) {
                return;
            }
            out.push(t);
            for c in &t.children {
                pre(
                    TransitiveSet::from_value(*c).expect("children are tsets"),
                    seen,
                    out,
                );
            }
        }
        fn post<'v>(
            t: &'v TransitiveSet<'v>,
            seen: &mut HashSet<u64>,
            out: &mut Vec<&'v TransitiveSet<'v>>,
        ) {
            if !seen.insert(t.id) {
                return;
            }
            for c in &t.children {
                post(
                    TransitiveSet::from_value(*c).expect("children are tsets"),
                    seen,
                    out,
                );
            }
            out.push(t);
        }
        match ordering {
            "preorder" => pre(root, &mut seen, &mut out),
            "postorder" => post(root, &mut seen, &mut out),
            "topological" => {
                post(root, &mut seen, &mut out);
                out.reverse();
            }
            "bfs" => {
                let mut queue = std::collections::VecDeque::from([root]);
                while let Some(t) = queue.pop_front() {
                    if seen.insert(t.id) {
                        out.push(t);
                        for c in &t.children {
                            queue.push_back(
                                TransitiveSet::from_value(*c).expect("children are tsets"),
                            );
                        }
                    }
                }
            }
            o => {
                return Err(sl_err(format!(
                "Unknown ordering `{o}`, expected one of: preorder, postorder, topological, bfs"
            )))
            }
        }
        Ok(out)
    }
}

/// `ctx.actions.tset(definition, value=, children=)`.
pub fn make_tset<'v>(
    definition: Value<'v>,
    value: Option<Value<'v>>,
    children: Vec<Value<'v>>,
    eval: &mut Evaluator<'v, '_, '_>,
) -> starlark::Result<TransitiveSet<'v>> {
    let def = TransitiveSetDefinition::from_value(definition).ok_or_else(|| {
        sl_err(format!(
            "`tset` expects a transitive_set definition, got `{}`",
            definition.get_type()
        ))
    })?;
    if def.name().is_none() {
        return Err(sl_err(
            "a transitive_set definition must be assigned to a top-level name before use".into(),
        ));
    }
    for c in &children {
        let t = TransitiveSet::from_value(*c).ok_or_else(|| {
            sl_err(format!(
                "tset children must be tsets, got `{}`",
                c.get_type()
            ))
        })?;
        if !t.definition.equals(definition)? && !t.definition.ptr_eq(definition) {
            return Err(sl_err(
                "tset children must have the same transitive_set definition".into(),
            ));
        }
    }
    let value = value.filter(|v| !v.is_none());
    let mut reductions = Vec::new();
    for (i, (_, f)) in def.reductions.iter().enumerate() {
        let child_vals: Vec<Value> = children
            .iter()
            .map(|c| TransitiveSet::from_value(*c).unwrap().reductions[i])
            .collect();
        let list = eval.heap().alloc(AllocList(child_vals));
        let r = eval.eval_function(*f, &[list, value.unwrap_or(Value::new_none())], &[])?;
        reductions.push(r);
    }
    Ok(TransitiveSetGen {
        id: NEXT.fetch_add(1, Ordering::Relaxed),
        definition,
        value,
        children,
        reductions,
    })
}

#[starlark_module]
fn tset_methods(builder: &mut MethodsBuilder) {
    fn project_as_args<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] projection: &str,
        #[starlark(require = named, default = "preorder")] ordering: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<CmdArgs> {
        let t = TransitiveSet::from_value(this).expect("a tset");
        let def = t.def();
        let f = def
            .args_projections
            .iter()
            .find(|(n, _)| n == projection)
            .map(|(_, f)| *f)
            .ok_or_else(|| sl_err(format!("`{}` has no args projection `{projection}`", def)))?;
        let mut d = CmdArgsData::default();
        for node in TransitiveSet::traverse(this, ordering)? {
            if let Some(v) = node.value {
                let r = eval.eval_function(f, &[v], &[])?;
                let c = crate::cmd_args::to_cmd_args(r).map_err(starlark::Error::new_other)?;
                d.items
                    .push(crate::cmd_args::ArgItem::Nested(std::sync::Arc::new(c)));
            }
        }
        Ok(CmdArgs::new(d))
    }

    fn project_as_json<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] projection: &str,
        #[starlark(require = named, default = "preorder")] ordering: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let t = TransitiveSet::from_value(this).expect("a tset");
        let def = t.def();
        let f = def
            .json_projections
            .iter()
            .find(|(n, _)| n == projection)
            .map(|(_, f)| *f)
            .ok_or_else(|| sl_err(format!("`{}` has no json projection `{projection}`", def)))?;
        let mut out = Vec::new();
        for node in TransitiveSet::traverse(this, ordering)? {
            if let Some(v) = node.value {
                out.push(eval.eval_function(f, &[v], &[])?);
            }
        }
        Ok(eval.heap().alloc(AllocList(out)))
    }

    fn reduce<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] name: &str,
    ) -> starlark::Result<Value<'v>> {
        let t = TransitiveSet::from_value(this).expect("a tset");
        let def = t.def();
        let i = def
            .reductions
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| sl_err(format!("`{}` has no reduction `{name}`", def)))?;
        Ok(t.reductions[i])
    }

    fn traverse<'v>(
        this: Value<'v>,
        #[starlark(require = named, default = "preorder")] ordering: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let nodes = TransitiveSet::traverse(this, ordering)?;
        Ok(eval
            .heap()
            .alloc(AllocList(nodes.into_iter().filter_map(|n| n.value))))
    }

    #[starlark(attribute)]
    fn value<'v>(this: Value<'v>) -> starlark::Result<Value<'v>> {
        Ok(TransitiveSet::from_value(this)
            .expect("a tset")
            .value
            .unwrap_or(Value::new_none()))
    }

    #[starlark(attribute)]
    fn children<'v>(
        this: Value<'v>,
        heap: starlark::values::Heap<'v>,
    ) -> starlark::Result<Value<'v>> {
        let t = TransitiveSet::from_value(this).expect("a tset");
        Ok(heap.alloc(AllocList(t.children.iter().copied())))
    }
}
