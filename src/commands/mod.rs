//! One module per subcommand; this one parses the command line, runs the command and maps the
//! result to kubectl's exit codes.
pub mod audit;
pub mod audit_deep;
pub mod completion;
pub mod create_secret;
pub mod inspect;
pub mod patch;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{Error, Outcome, Result};

/// The binary's entry: `main.rs` calls this and nothing else.
pub fn run_from_env() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // kubectl (1.26+) completes plugin arguments by running `kubectl_complete-<plugin>`.
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked_as.starts_with("kubectl_complete-image_sec") {
        return completion::complete_plugin_args(&args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "__complete") {
        return completion::complete_plugin_args(&args[2..]);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    if let Command::Completion(args) = &cli.command {
        return completion::print_completion(args.shell);
    }
    // One TLS provider for kube and the registry client (both rustls on aws-lc-rs); installing
    // it explicitly avoids rustls' start-up panic when it cannot pick a default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::CreateSecret(args) => create_secret::run(&cli.global, args).await,
            Command::Patch(args) => patch::run(&cli.global, args).await,
            Command::Audit(args) => audit::run(&cli.global, args).await,
            Command::Inspect(args) => inspect::run(&cli.global, args).await,
            Command::Completion(_) => unreachable!("handled above"),
        }
    })
}
