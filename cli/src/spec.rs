//! `vsmmu spec fmt [--check]` and `vsmmu spec lint`: tools for the people who
//! edit spec/ (what they check is described in the book's spec chapter).

use std::path::{Path, PathBuf};

use crate::regen::find_root;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut check = false;
    let mut root = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" if args[0] == "fmt" => check = true,
            "--root" => root = Some(it.next().ok_or("--root needs a folder")?.as_str()),
            other => return Err(format!("spec: unknown argument `{other}`")),
        }
    }
    let root = find_root(root)?;
    match args.first().map(String::as_str) {
        Some("fmt") => fmt(&root.join("spec"), check),
        Some("lint") => lint(&root.join("spec")),
        _ => Err("spec: expected `fmt [--check]` or `lint`".into()),
    }
}

/// Every `*.yaml` of the spec folder, sorted.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    Ok(paths)
}

fn fmt(dir: &Path, check: bool) -> Result<(), String> {
    let mut differ = Vec::new();
    for path in yaml_files(dir)? {
        let name = format!(
            "spec/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
        let canonical =
            smmuv3_codegen::format::format(&text).map_err(|e| format!("{name}: {e}"))?;
        if canonical == text {
            continue;
        }
        if check {
            differ.push(name);
        } else {
            std::fs::write(&path, canonical).map_err(|e| format!("{name}: {e}"))?;
            println!("formatted {name}");
        }
    }
    if differ.is_empty() {
        if check {
            println!("spec fmt --check: every file is in the canonical layout");
        }
        Ok(())
    } else {
        Err(format!(
            "not in the canonical layout, run `vsmmu spec fmt`: {}",
            differ.join(", ")
        ))
    }
}

fn lint(dir: &Path) -> Result<(), String> {
    let spec = smmuv3_codegen::load(dir).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let findings = smmuv3_codegen::lint::lint(&spec);
    for f in &findings {
        println!("{f}");
    }
    match findings.len() {
        0 => Ok(()),
        n => Err(format!("spec lint: {n} finding(s)")),
    }
}
