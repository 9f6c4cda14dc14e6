//! Standalone fake apiserver: prints its URL as the first line of stdout and serves until killed.

use std::io::Write;

use fake_apiserver::{FakeApiServer, Match, Options};

const USAGE: &str =
    "usage: fake-apiserver [--listen 127.0.0.1:0] [--load FILE]... [--synthesize-pods N]
       [--tls] [--client-ca-file PATH] [--token TOKEN] [--write-kubeconfig PATH] [--seed N]
       [--fail-fraction FRACTION:STATUS] [--latency-ms N]

Serves until killed. Without --token any bearer token (or none) is accepted.
--client-ca-file (implies --tls): client certificates signed by a CA in PATH authenticate as
user = CN, groups = O, like kube-apiserver's flag of that name.
The first line of stdout is the server URL.";

fn main() {
    let mut opts = Options::default().any_token();
    let mut loads = Vec::new();
    let mut kubeconfig = None;
    let mut fail_fraction = None;
    let mut latency = None;
    let mut args = std::env::args().skip(1);
    let value = |args: &mut dyn Iterator<Item = String>, flag: &str| -> String {
        args.next().unwrap_or_else(|| {
            eprintln!("error: {flag} needs a value\n{USAGE}");
            std::process::exit(2)
        })
    };
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let val = |args: &mut dyn Iterator<Item = String>| {
            inline.clone().unwrap_or_else(|| value(args, &flag))
        };
        match flag.as_str() {
            "--listen" => {
                opts.listen = val(&mut args).parse().unwrap_or_else(|e| {
                    eprintln!("error: --listen: {e}");
                    std::process::exit(2)
                })
            }
            "--load" => loads.push(val(&mut args)),
            "--synthesize-pods" => {
                opts.synthesize_pods = val(&mut args).parse().unwrap_or_else(|e| {
                    eprintln!("error: --synthesize-pods: {e}");
                    std::process::exit(2)
                })
            }
            "--tls" => opts.tls = true,
            "--client-ca-file" => {
                let path = val(&mut args);
                let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    eprintln!("error: reading {path}: {e}");
                    std::process::exit(1)
                });
                opts.client_ca_pem = Some(pem);
            }
            "--token" => opts.token = Some(val(&mut args)),
            "--seed" => opts.seed = val(&mut args).parse().unwrap_or(42),
            "--write-kubeconfig" => kubeconfig = Some(val(&mut args)),
            "--fail-fraction" => fail_fraction = Some(val(&mut args)),
            "--latency-ms" => latency = Some(val(&mut args).parse::<u64>().unwrap_or(0)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("error: unknown flag {other}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    let srv = FakeApiServer::start(opts);
    for f in &loads {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| {
            eprintln!("error: reading {f}: {e}");
            std::process::exit(1)
        });
        srv.load_yaml(&text);
    }
    if let Some(ff) = fail_fraction {
        let (frac, status) = ff.split_once(':').unwrap_or((&ff, "503"));
        srv.fail_fraction(
            frac.parse().unwrap_or(0.0),
            status.parse().unwrap_or(503),
            Match::any(),
        );
    }
    if let Some(ms) = latency {
        srv.add_latency(std::time::Duration::from_millis(ms), Match::any());
    }
    if let Some(path) = kubeconfig {
        srv.write_kubeconfig(path);
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", srv.url());
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
