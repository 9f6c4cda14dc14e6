//! One module per subcommand; this one parses the command line, runs the command and maps the
//! result to kubectl's exit codes.
pub mod audit;
pub mod audit_deep;
pub mod completion;
pub mod create_secret;
pub mod inspect;
pub mod patch;
/// Public for the criterion benches in `bench/hot-paths`.
pub mod pod_pages;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{Error, Outcome, Result};

/// Panics print one line naming where it happened, never the payload: a panic message can be
/// formatted from any value in scope (a password, a token, secret data). Exit code 1.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(|| "unknown location".to_string(), |l| l.to_string());
        eprintln!("error: internal error (please report): {location}");
    }));
}

/// Test hook (debug builds only): `KUBECTL_IMAGE_SEC_TEST_PANIC=<text>` panics with `<text>` in
/// the payload, so the tests can check that the panic hook never prints it. It panics inside
/// the command's task, as a bug in a command would.
fn test_panic() {
    #[cfg(debug_assertions)]
    if let Some(text) = std::env::var_os("KUBECTL_IMAGE_SEC_TEST_PANIC") {
        panic!("test panic: {}", text.to_string_lossy());
    }
}

/// The binary's entry: `main.rs` calls this and nothing else.
pub fn run_from_env() -> ExitCode {
    install_panic_hook();
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
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)));
    let Ok(result) = result else {
        // The hook has printed the one-line error.
        return ExitCode::from(1);
    };
    match result {
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
    // Listing and decoding pages is one thread's work: on one thread it goes faster than
    // shared by two (no wake-ups across threads, one malloc arena), and big reports are judged
    // on threads of their own. Image inspection streams layers from several connections at
    // once, so it gets worker threads.
    let inspects = match &cli.command {
        Command::Inspect(_) => true,
        Command::Audit(args) => args.deep,
        _ => false,
    };
    let runtime = if inspects {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(|e| Error::other(format!("cannot start the async runtime: {e}")))?;
    let command = async move {
        test_panic();
        match cli.command {
            Command::CreateSecret(args) => create_secret::run(&cli.global, args).await,
            Command::Patch(args) => patch::run(&cli.global, args).await,
            Command::Audit(args) => audit::run(&cli.global, args).await,
            Command::Inspect(args) => inspect::run(&cli.global, args).await,
            Command::Completion(_) => unreachable!("handled above"),
        }
    };
    // The command runs as a task, not as `block_on`'s own future: while tasks are ready (a page
    // streaming in), the current-thread runtime polls `block_on`'s future only once every 61
    // task polls, so a page's continue token waited until the page was done before the next
    // page was requested. As a task, it is polled in turn with the connections' tasks.
    let result = runtime.block_on(async move {
        match tokio::spawn(command).await {
            Ok(result) => result,
            // The hook has printed the one-line error; unwinding on keeps the exit code 1.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::other(format!("the command was cancelled: {e}"))),
        }
    });
    if !inspects {
        // The process exits next, and nothing is left running on this runtime: shutting it
        // down would only close the API server connections one by one (about 1 ms of a 10 ms
        // audit of 1,000 pods). Inspection's runtime is shut down: its blocking tasks may still
        // be writing to the layer cache.
        std::mem::forget(runtime);
    }
    result
}
