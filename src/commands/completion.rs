//! Shell completion: `completion bash|zsh|fish` scripts, and kubectl's plugin completion
//! protocol (kubectl runs `kubectl_complete-image_sec ARGS... PARTIAL` and reads one candidate per
//! line followed by a `:DIRECTIVE` line, Cobra's `__complete` format).
use std::ffi::OsString;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionShell};
use crate::cluster::resources::PATCHABLE;
use crate::error::{Outcome, Result};

/// Cobra's ShellCompDirectiveNoFileComp.
const NO_FILE_COMP: u8 = 4;
/// Cobra's ShellCompDirectiveDefault (let the shell complete file names).
const DEFAULT: u8 = 0;

pub fn print_completion(shell: CompletionShell) -> Result<Outcome> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "kubectl-image_sec", &mut buf);
    crate::output::write_stdout(&String::from_utf8_lossy(&buf))?;
    Ok(Outcome::Success)
}

/// Answers kubectl's plugin completion request and exits 0.
pub fn complete_plugin_args(args: &[OsString]) -> ExitCode {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (candidates, directive) = candidates(&words);
    let mut out = String::new();
    for c in candidates {
        out.push_str(&c);
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    let _ = crate::output::write_stdout(&out);
    ExitCode::SUCCESS
}

/// Completion candidates for the words typed after `kubectl image-sec`; the last word is the
/// one being completed (possibly empty).
pub fn candidates(words: &[String]) -> (Vec<String>, u8) {
    let root = Cli::command();
    let (partial, before) = match words.split_last() {
        Some((p, b)) => (p.as_str(), b),
        None => ("", &[][..]),
    };
    let sub = before
        .iter()
        .find(|w| !w.starts_with('-'))
        .and_then(|w| root.find_subcommand(w));
    let Some(sub) = sub else {
        let names = root
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|n| n.starts_with(partial))
            .collect();
        return (names, NO_FILE_COMP);
    };
    // Value of the previous flag?
    if let Some(prev) = before.last() {
        if let Some(values) = flag_values(sub.get_name(), prev) {
            return (
                values
                    .into_iter()
                    .filter(|v| v.starts_with(partial))
                    .collect(),
                NO_FILE_COMP,
            );
        }
        if [
            "-f",
            "--filename",
            "--policy",
            "--password-file",
            "--from-docker-config",
            "--kubeconfig",
            "--docker-config",
            "--registry-ca",
        ]
        .contains(&prev.as_str())
        {
            return (Vec::new(), DEFAULT);
        }
    }
    if let Some(flag_prefix) = partial.strip_prefix("--") {
        let flags = sub
            .get_arguments()
            .chain(root.get_arguments())
            .filter_map(|a| a.get_long())
            .filter(|l| l.starts_with(flag_prefix))
            .map(|l| format!("--{l}"))
            .collect();
        return (flags, NO_FILE_COMP);
    }
    let positional: Vec<String> = match sub.get_name() {
        "patch" => PATCHABLE
            .iter()
            .flat_map(|k| std::iter::once(k.plural).chain(k.aliases.iter().copied()))
            .map(str::to_string)
            .filter(|n| n.starts_with(partial))
            .collect(),
        "completion" => ["bash", "zsh", "fish"]
            .iter()
            .map(|s| s.to_string())
            .filter(|n| n.starts_with(partial))
            .collect(),
        _ => Vec::new(),
    };
    (positional, NO_FILE_COMP)
}

fn flag_values(sub: &str, flag: &str) -> Option<Vec<String>> {
    let v = |xs: &[&str]| Some(xs.iter().map(|s| s.to_string()).collect());
    match (sub, flag) {
        ("audit", "-o" | "--output") => v(&["table", "wide", "json", "yaml", "sarif"]),
        ("inspect", "-o" | "--output") => v(&["table", "json", "yaml"]),
        (_, "-o" | "--output") => v(&["json", "yaml", "name"]),
        (_, "--fail-on") => v(&["critical", "high", "medium", "low", "info"]),
        (_, "--platform") => v(&["linux/amd64", "linux/arm64", "linux/arm/v7"]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn completes_subcommands_flags_and_values() {
        let (c, d) = candidates(&words(&["cr"]));
        assert_eq!(c, vec!["create-secret"]);
        assert_eq!(d, NO_FILE_COMP);
        let (c, _) = candidates(&words(&["create-secret", "x", "--password-s"]));
        assert_eq!(c, vec!["--password-stdin"]);
        let (c, _) = candidates(&words(&["audit", "-o", "s"]));
        assert_eq!(c, vec!["sarif"]);
        let (c, _) = candidates(&words(&["patch", "st"]));
        assert!(
            c.contains(&"statefulsets".to_string()) && c.contains(&"sts".to_string()),
            "{c:?}"
        );
        let (_, d) = candidates(&words(&["audit", "-f", ""]));
        assert_eq!(d, DEFAULT);
        let (c, _) = candidates(&words(&["audit", "--nam"]));
        assert_eq!(c, vec!["--namespace"]);
    }
}
