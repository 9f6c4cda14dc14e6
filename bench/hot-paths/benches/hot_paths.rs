//! Criterion benchmarks of the hot paths of a live audit, on the pods the fake API server
//! synthesizes for `bench/bench.py`'s live case (1,000 pods: 100 Deployments of 10 pods, with
//! ServiceAccounts and Secrets). Pages are rendered here from the server's objects with
//! serde_json, as the server renders them; nothing goes over the network.
//!
//! Each benchmark's throughput is in bytes (decoding) or elements (report), so `cargo bench`
//! prints MB/s and workloads/s next to the times.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

use fake_apiserver::{FakeApiServer, Options};
use image_sec_domain::policy::Policy;
use image_sec_domain::reference::ImageReference;
use image_sec_domain::rules::{evaluate_with, ParsedImages, WorkloadInput};
use image_sec_domain::workload::{self, typed::PodBearing, Workload};
use kubectl_image_sec::cluster::{skim, PageSplitter, Plain};
use kubectl_image_sec::commands::pod_pages::PodPageDecoder;
use serde_json::{json, Value};

/// The objects of a synthesized cluster of `pods` pods, by resource.
struct Cluster {
    pods: Vec<Value>,
    deployments: Vec<Value>,
    replicasets: Vec<Value>,
}

fn synthesize(pods: usize) -> Cluster {
    let server = FakeApiServer::start(Options::default().synthesize_pods(pods));
    let cluster = Cluster {
        pods: server.list("pods"),
        deployments: server.list("deployments"),
        replicasets: server.list("replicasets"),
    };
    server.stop();
    cluster
}

/// A LIST response body as the API server writes it: metadata (with a continue token) first.
fn page(kind: &str, items: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": kind,
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"},
        "items": items,
    }))
    .expect("a page renders")
}

/// Feeds a page to the splitter in chunks of `chunk` bytes, as the response body arrives.
fn split<D: kubectl_image_sec::cluster::ItemDecoder>(
    decoder: D,
    body: &[u8],
    chunk: usize,
) -> Vec<D::Item> {
    let mut splitter = PageSplitter::new(decoder);
    for c in body.chunks(chunk) {
        splitter.feed(c).expect("the page decodes");
    }
    splitter.finish().expect("the page is complete").0
}

/// The workloads of the cluster as the audit reads them: each object decoded into the typed
/// structs and extracted, then folded (pods into their Deployments).
fn workloads(cluster: &Cluster) -> Vec<Workload> {
    let mut out = Vec::new();
    for (kind, objects) in [
        ("Deployment", &cluster.deployments),
        ("ReplicaSet", &cluster.replicasets),
        ("Pod", &cluster.pods),
    ] {
        for o in objects {
            let bytes = serde_json::to_vec(o).unwrap();
            let typed: PodBearing = skim::from_slice_prefix(&bytes).unwrap().0;
            out.extend(workload::extract_typed(kind, typed, "bench", "default"));
        }
    }
    out
}

fn decoding(c: &mut Criterion) {
    let cluster = synthesize(1000);
    let pods = page("PodList", &cluster.pods[..500]);
    let mut g = c.benchmark_group("page of 500 pods");
    g.throughput(Throughput::Bytes(pods.len() as u64));
    g.bench_function("skim: skip it all", |b| {
        b.iter(|| skim::skip_prefix(black_box(&pods)).unwrap())
    });
    g.bench_function("audit's pod decoder, 64 KiB chunks", |b| {
        b.iter(|| split(PodPageDecoder::new(true), black_box(&pods), 64 * 1024).len())
    });
    g.bench_function("every pod whole, 64 KiB chunks", |b| {
        b.iter(|| split(Plain::<PodBearing>::default(), black_box(&pods), 64 * 1024).len())
    });
    g.bench_function("serde_json::Value", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&pods)).unwrap())
    });
    g.finish();
}

fn report(c: &mut Criterion) {
    let cluster = synthesize(1000);
    let listed = workloads(&cluster);
    let folded = workload::fold(listed.clone());
    let policy = Policy::default();
    let mut g = c.benchmark_group("report");
    g.throughput(Throughput::Elements(listed.len() as u64));
    g.bench_function("fold 1,200 listed workloads", |b| {
        b.iter_batched(|| listed.clone(), workload::fold, BatchSize::SmallInput)
    });
    g.throughput(Throughput::Elements(folded.len() as u64));
    g.bench_function("rules on the folded workloads", |b| {
        b.iter(|| {
            let mut parsed = ParsedImages::default();
            folded
                .iter()
                .map(|w| {
                    let input = WorkloadInput {
                        workload: w,
                        secrets: &[],
                        policy: &policy,
                    };
                    evaluate_with(&input, &mut parsed).len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
    let images: Vec<String> = folded
        .iter()
        .flat_map(|w| w.containers.iter().map(|c| c.image.clone()))
        .chain(
            [
                "nginx",
                "docker.io/library/nginx:1.27",
                "registry.example.com:5000/team/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "ghcr.io/org/tool:v1.2.3-rc.1",
                "Invalid/Upper:tag",
            ]
            .map(String::from),
        )
        .collect();
    let mut g = c.benchmark_group("references");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.bench_function("parse and normalize", |b| {
        b.iter(|| {
            images
                .iter()
                .filter(|i| ImageReference::parse(black_box(i)).is_ok())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, decoding, report);
criterion_main!(benches);
