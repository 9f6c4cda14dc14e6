//! `kubectl-image_sec`: parse, run, map errors to exit codes. Everything else lives in the library.
fn main() -> std::process::ExitCode {
    kubectl_image_sec::main_entry()
}
