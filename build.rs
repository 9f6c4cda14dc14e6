//! Link settings for the binary on Linux with glibc, for start-up time (a 1,000-pod audit takes
//! about 7 ms, over a millisecond of it before `main`; docs/PERFORMANCE.md):
//!
//! 1. Position-dependent, as Go links kubectl and most kubectl plugins. A PIE carries ~17,000
//!    relative relocations that the dynamic loader applies at every start, each page of them
//!    copied on write: ~0.8 ms (sixth round). Shared libraries, heap and stack stay randomized.
//!    The code is still compiled position-independent; only the link changes, and only for the
//!    binary (proc macros and build scripts are untouched).
//! 2. libgcc's unwinder (`libgcc_eh.a`) linked in, as `gcc -static-libgcc` does, instead of
//!    loading `libgcc_s.so.1` at every start for panics that should never happen: one library
//!    less to map and bind, and no libgcc_s constructor running CPUID (slow under a hypervisor),
//!    ~0.17 ms (eighth round). Rust's std asks for `-lgcc_s`; this crate's own `-lgcc_eh` comes
//!    first on the link line, so the linker (`--as-needed`) no longer needs libgcc_s. Skipped
//!    when the C compiler has no `libgcc_eh.a` (a clang toolchain with LLVM's libunwind).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
        if has_static_unwinder() {
            // `-bundle`: linked into the final binaries, not copied into this crate's rlib.
            println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
        }
    }
}

/// Whether the C compiler rustc links with has `libgcc_eh.a`: `-print-file-name` prints its
/// path, or the bare name when it has none.
fn has_static_unwinder() -> bool {
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_string());
    Command::new(linker)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .is_some_and(|path| Path::new(path.trim()).is_absolute() && Path::new(path.trim()).exists())
}
