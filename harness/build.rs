//! Embeds the certification suite (`scenarios/certification/**.yaml`) in the binary,
//! so `ecosim certify` runs the same files wherever it is installed, and records the
//! git commit it was built from (for the certification manifest).

use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(path.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let scenarios = manifest.join("../scenarios");
    let suite = scenarios.join("certification");
    println!("cargo:rerun-if-changed={}", suite.display());
    let mut files = Vec::new();
    yaml_files(&suite, &mut files);
    files.sort();
    let mut code = String::from(
        "/// The certification suite: (path under `scenarios/`, text).\npub static SUITE: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&scenarios).unwrap_or(f).to_string_lossy().replace('\\', "/");
        code.push_str(&format!("    ({rel:?}, include_str!({:?})),\n", f.display().to_string()));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("suite.rs");
    std::fs::write(out, code).unwrap_or_else(|e| panic!("cannot write the embedded suite: {e}"));

    let git = manifest.join("../.git");
    for f in ["HEAD", "refs/heads"] {
        println!("cargo:rerun-if-changed={}", git.join(f).display());
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&manifest)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    // Uncommitted changes are not the commit: say so.
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(&manifest)
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    let commit = if dirty && commit != "unknown" { format!("{commit}-dirty") } else { commit };
    println!("cargo:rustc-env=ECOSIM_GIT_COMMIT={commit}");
}
