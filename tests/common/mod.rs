//! Shared support for integration tests: run the real `kubectl-image_sec` binary, optionally
//! against an in-process fake API server with a kubeconfig written for it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[allow(unused_imports)]
pub use fake_apiserver::{CertificateAuthority, ClientCertificate, FakeApiServer, Match, Options};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-image_sec"))
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts exit 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
    /// Asserts the given exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    /// Both streams, for leak checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs the binary with `args`, feeding `stdin`, in an environment isolated from the user's
/// (HOME points at `home`, no KUBECONFIG unless given in `envs`).
pub fn run_with(args: &[&str], stdin: Option<&[u8]>, home: &Path, envs: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn kubectl-image_sec");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that fails before reading stdin (a usage error) closes it first.
        if let Err(e) = pipe.write_all(input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    let out = child
        .wait_with_output()
        .expect("wait for kubectl-image_sec");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the binary with stdin, stdout and stderr on a terminal (a pty from util-linux
/// `script`), for what only a terminal gets (progress lines). `stdout` is what the terminal
/// showed (both streams, `\r\n` line ends); `stderr` is `script`'s own.
pub fn run_on_terminal(args: &[&str], home: &Path, envs: &[(&str, &str)]) -> Out {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| quote(&a))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run util-linux script");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fake cluster plus a temp HOME with a kubeconfig for it.
pub struct TestCluster {
    pub server: FakeApiServer,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl TestCluster {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        let server = FakeApiServer::start(options);
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig);
        TestCluster {
            server,
            dir,
            kubeconfig,
        }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the binary with KUBECONFIG pointing at this cluster.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Out {
        let kc = self.kubeconfig.display().to_string();
        run_with(args, stdin, self.home(), &[("KUBECONFIG", &kc)])
    }

    /// Runs the binary with a kubeconfig for this cluster whose user entry has `user`'s fields
    /// ((key, YAML value) pairs: `token`, `client-certificate`, `as`, ...).
    pub fn run_as_user(
        &self,
        user: &[(&str, impl AsRef<str>)],
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Out {
        let yaml = self.server.kubeconfig_yaml_with_user(user);
        let kc = self.file("kubeconfig-user", yaml.as_bytes());
        run_with(
            args,
            stdin,
            self.home(),
            &[("KUBECONFIG", &kc.display().to_string())],
        )
    }

    /// Writes a file in the temp dir and returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Number of write requests (POST/PUT/PATCH/DELETE) the server has seen.
    pub fn write_count(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.is_write())
            .count()
    }
}

/// Decodes a Secret's data key.
pub fn secret_data(secret: &serde_json::Value, key: &str) -> Vec<u8> {
    use base64::Engine;
    let b64 = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("secret has no data key {key}: {secret}"));
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// `kubectl`, which CI machines have; tests that use it as an oracle fail loudly without it in CI.
pub fn kubectl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is required in CI"
        );
        eprintln!("note: kubectl not found; skipping the kubectl oracle checks");
    }
    found
}
