//! kubectl integration: plugin discovery, `--help` through kubectl, shell completion scripts and
//! kubectl's plugin completion protocol (`kubectl_complete-image_sec`).
mod common;

use std::process::Command;

use common::*;

/// A PATH with the binary installed under its plugin names, ahead of the rest.
fn plugin_path(dir: &std::path::Path) -> String {
    std::os::unix::fs::symlink(bin(), dir.join("kubectl-image_sec")).unwrap();
    std::os::unix::fs::symlink(bin(), dir.join("kubectl_complete-image_sec")).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn kubectl_out(kubectl: &std::path::Path, path: &str, args: &[&str]) -> std::process::Output {
    Command::new(kubectl)
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap()
}

#[test]
fn kubectl_discovers_the_plugin_and_shows_its_help() {
    let Some(kubectl) = kubectl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = plugin_path(dir.path());
    let out = kubectl_out(&kubectl, &path, &["image-sec", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Usage: kubectl image-sec"), "{stdout}");
    for sub in ["create-secret", "patch", "audit", "inspect", "completion"] {
        assert!(stdout.contains(sub), "{sub} missing from help:\n{stdout}");
    }
    let out = kubectl_out(&kubectl, &path, &["image-sec", "create-secret", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("--password-stdin") && stdout.contains("Examples:"),
        "{stdout}"
    );
    let out = kubectl_out(&kubectl, &path, &["plugin", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kubectl-image_sec"));
}

#[test]
fn kubectl_completes_plugin_arguments() {
    let Some(kubectl) = kubectl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = plugin_path(dir.path());
    let out = kubectl_out(&kubectl, &path, &["__complete", "image-sec", "cr"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "create-secret"), "{stdout}");
    let out = kubectl_out(
        &kubectl,
        &path,
        &["__complete", "image-sec", "audit", "-o", ""],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for v in ["table", "wide", "json", "yaml", "sarif"] {
        assert!(stdout.lines().any(|l| l == v), "{v} missing:\n{stdout}");
    }
}

#[test]
fn the_completion_protocol_answers_directly() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl_complete-image_sec");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    let out = Command::new(&link).args(["patch", "dep"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, "deployments\ndeployment\ndeploy\n:4\n");
    let out = Command::new(bin())
        .args(["__complete", "inspect", "--fail-on", "h"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "high\n:4\n");
}

#[test]
fn completion_scripts_for_each_shell() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = run_with(&["completion", shell], None, home.path(), &[]);
        let script = out.ok();
        assert!(
            script.contains("create-secret") && script.contains("audit"),
            "{shell}"
        );
    }
    let out = run_with(&["completion", "bash"], None, home.path(), &[]);
    let script = home.path().join("c.bash");
    std::fs::write(&script, out.ok()).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(check.success(), "bash completion script has a syntax error");
    let out = run_with(&["completion", "powershell"], None, home.path(), &[]);
    out.code(2);
}

#[test]
fn version_and_help_exit_0() {
    let home = tempfile::tempdir().unwrap();
    let out = run_with(&["--version"], None, home.path(), &[]);
    assert!(out.ok().contains(env!("CARGO_PKG_VERSION")));
    let out = run_with(&["audit", "--help"], None, home.path(), &[]);
    assert!(out.ok().contains("--fail-on"));
}

/// build.rs links the binary position-dependent on Linux with glibc: a PIE's ~17,000 relative
/// relocations cost ~0.8 ms at every start (docs/PERFORMANCE.md, sixth round). The ELF header's
/// e_type says which it is: 2 is a fixed-address executable, 3 a PIE (or shared object).
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_binary_is_linked_position_dependent() {
    let elf = std::fs::read(bin()).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    let e_type = u16::from_le_bytes([elf[16], elf[17]]);
    assert_eq!(
        e_type, 2,
        "expected ET_EXEC (2), found {e_type}: was -no-pie dropped?"
    );
}

/// build.rs links libgcc's unwinder in statically when the C compiler has it, so `libgcc_s.so.1`
/// is not loaded at every start (~0.17 ms; docs/PERFORMANCE.md, eighth round). Panics still
/// unwind to the one-line error: see `a_panic_prints_one_line_without_its_payload`.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_binary_does_not_load_libgcc_s() {
    let has_unwinder = std::process::Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().starts_with('/'))
        .unwrap_or(false);
    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(bin())
        .output()
        .expect("readelf (binutils) runs");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(dynamic.contains("(NEEDED)"), "{dynamic}");
    assert_eq!(
        dynamic.contains("libgcc_s"),
        !has_unwinder,
        "libgcc_eh.a available: {has_unwinder}; dynamic section:\n{dynamic}"
    );
}
