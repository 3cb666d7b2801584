//! `vsmmu regen`: the reviewable expansion and the book's reference chapters,
//! written from spec/ (or, with `--check`, compared with what is committed).

use std::path::{Path, PathBuf};

/// The repository root: `--root`, else the first ancestor of the current
/// directory with `spec/` and `generated/`, else where this tool was built from.
pub fn find_root(explicit: Option<&str>) -> Result<PathBuf, String> {
    if let Some(r) = explicit {
        return Ok(PathBuf::from(r));
    }
    let looks_right = |p: &Path| p.join("spec").is_dir() && p.join("generated").is_dir();
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(p) = cwd.ancestors().find(|p| looks_right(p)) {
            return Ok(p.to_path_buf());
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if looks_right(&built) {
        return Ok(built);
    }
    Err("cannot find the repository root (a folder with spec/ and generated/); pass --root".into())
}

/// Every generated file: (path relative to the root, contents).
pub fn outputs(root: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let spec = smmuv3_codegen::load(&root.join("spec")).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let mut out = vec![(
        PathBuf::from("generated/expanded.rs"),
        smmuv3_codegen::expand_pretty(&spec)?,
    )];
    for (path, text) in smmuv3_codegen::book::chapters(&spec) {
        out.push((Path::new("book/src").join(path), text));
    }
    Ok(out)
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut check = false;
    let mut root = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => check = true,
            "--root" => root = Some(it.next().ok_or("--root needs a folder")?.as_str()),
            other => return Err(format!("regen: unknown argument `{other}`")),
        }
    }
    let root = find_root(root)?;
    let mut stale = Vec::new();
    for (rel, text) in outputs(&root)? {
        let path = root.join(&rel);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(text.as_str()) {
            continue;
        }
        if check {
            stale.push(rel.display().to_string());
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote {}", rel.display());
        }
    }
    if stale.is_empty() {
        if check {
            println!("regen --check: everything generated from spec/ is up to date");
        }
        Ok(())
    } else {
        Err(format!("stale, run `vsmmu regen`: {}", stale.join(", ")))
    }
}
