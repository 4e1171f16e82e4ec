use crate::cli::{BumpArgs, Global};
use crate::error::{Error, Result};
use crate::maintain::bump;
use crate::maintain::pins::{self, Pins};
use crate::maintain::tools;
use crate::maintain::upstream::Upstream;

pub fn run(global: &Global, args: &BumpArgs) -> Result<()> {
    let tool = tools::by_name(&args.tool)?;
    // A tool's version starts with a digit (`31.1`); an archive of sources may be a commit.
    let version_ok = match tool.kind {
        tools::Kind::Tool => crate::maintain::version::valid(&args.version),
        tools::Kind::Protos => {
            !args.version.is_empty()
                && args.version.len() <= 128
                && args
                    .version
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }
    };
    if !version_ok {
        return Err(Error::input(
            format!("`{}` is not a version", args.version),
            "give the upstream version without a tag prefix, like 31.1 or 1.75.0 (a commit, for an archive of .proto sources)",
        ));
    }
    crate::settings::check()?;
    if tool.kind == tools::Kind::Tool {
        // The sandbox its binary will run in is there, before anything is fetched.
        crate::maintain::sandbox::ready()?;
    }
    let path = pins::locate(args.pins.pins.as_deref())?;
    // The READMEs are checked before anything is fetched or written.
    let mut readmes = Vec::new();
    for readme in &args.readmes {
        let text = crate::textfile::read_text(
            readme,
            "the README",
            "give the README that holds the table of pins, or drop --readme",
        )?;
        if pins::replace_table(&text, "").is_none() {
            return Err(Error::input(
                format!("`{}` has no table of pins", readme.display()),
                format!(
                    "put `{}` and `{}` around the table, or drop --readme",
                    pins::TABLE_START.trim_end(),
                    pins::TABLE_END
                ),
            ));
        }
        readmes.push((readme, text));
    }
    let old_text = Pins::read_text(&path)?;
    let current = Pins::parse(&old_text, &path)?;
    let work = crate::pipeline::store::Scratch::new("protoreg-bump")?;
    let prepared = bump::prepare(
        &Upstream::configured(global)?,
        tool,
        &args.version,
        work.path(),
    )?;
    let next = bump::apply(&current, &prepared, args.keep_old);
    let new_text = next.render();
    if args.dry_run {
        crate::out!("{}", bump::diff(&old_text, &new_text));
        return Ok(());
    }
    if new_text != old_text {
        bump::write(&path, &next)?;
    }
    // Also when the pins were already right: a rerun finishes what an interrupted one began.
    let table = next.markdown_table();
    for (readme, text) in &readmes {
        match pins::replace_table(text, &table) {
            Some(updated) if updated != *text => {
                crate::pipeline::store::write_atomic(readme, updated.as_bytes())?
            }
            _ => {}
        }
    }
    if new_text == old_text {
        eprintln!(
            "{} {} is already pinned; nothing to change",
            tool.name, args.version
        );
        return Ok(());
    }
    eprintln!(
        "pinned {} {} for {} platforms in {} ({})",
        tool.name,
        args.version,
        prepared.pins.len(),
        path.display(),
        prepared.reported
    );
    Ok(())
}
