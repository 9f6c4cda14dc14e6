#!/usr/bin/env python3
"""Side-by-side benchmarks for kubectl image-sec; prints each ratio with its target.

usage: python3 bench/bench.py [--quick] [--only CASE[,CASE]] [--runs N]

Cases (docs/PERFORMANCE.md explains the method):
  live      audit -A -o json vs kubectl get ... -A -o json vs a raw page fetch, 1k/10k/50k pods
  startup   create-secret --dry-run=client -o json vs kubectl create secret docker-registry
  manifests audit -f DIR -o json on 5,000 manifests vs checkov's image checks
  inspect   inspect (cold and warm) vs skopeo copy of a ~200 MB, 5-layer image
  criterion the criterion benches of the hot paths (bench/hot-paths), quick mode; no target

Everything runs on 127.0.0.1. Missing tools are installed (apt-get, pip) when possible; a case
whose comparison tool cannot be installed is reported as skipped, never as passed.
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import http.client

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RELEASE = os.path.join(ROOT, "target", "release")
PLUGIN = os.path.join(RELEASE, "kubectl-image_sec")
APISERVER = os.path.join(RELEASE, "fake-apiserver")
RESULTS = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build():
    log("building release binaries ...")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "kubectl-image_sec", "-p", "kubectl-image-sec"],
                   cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fake-apiserver"], cwd=ROOT, check=True)


def run_once(cmd, env=None, stdin=None, ok_codes=(0, 3, 4)):
    """Wall seconds of one run of `cmd` alone (spawn to wait4)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE if stdin is not None else None,
                             stdout=subprocess.DEVNULL, stderr=err)
        if stdin is not None:
            p.stdin.write(stdin)
            p.stdin.close()
        p.wait()
        wall = time.perf_counter() - start
        if p.returncode not in ok_codes:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {err.read().decode()[-500:]}")
        return wall


def measure(cmd, runs, env=None, stdin=None, ok_codes=(0, 3, 4), memory=True):
    """Median wall seconds and max peak RSS (MiB) of `cmd` over `runs` runs each.

    Wall time comes from runs of the command alone (spawn to wait4): under GNU time, time's own
    start-up (~1.3 ms here) was counted too. Peak RSS comes from separate runs under GNU time:
    the rusage of a child forked from this Python process counts Python's memory as well."""
    walls = [run_once(cmd, env, stdin, ok_codes) for _ in range(runs)]
    rss = [peak_rss(cmd, env, stdin, ok_codes) for _ in range(runs if memory else 0)]
    return statistics.median(walls), (max(rss) if rss else None)


def interleaved(rounds, seed, **contenders):
    """Median wall seconds of each contender (a callable timing one run of itself), measured in
    `rounds` rounds that each run every contender once, in a shuffled order (seeded: the same
    order every time). A first round is run and discarded, so neither side pays for a cold
    server. The order matters: by hand, at 1,000 pods, each side ran ~1 ms slower right after
    the other than right after itself (docs/PERFORMANCE.md, fifth round), so no side keeps a
    place in the order."""
    rng = random.Random(seed)
    walls = {name: [] for name in contenders}
    for r in range(rounds + 1):
        order = list(contenders)
        rng.shuffle(order)
        for name in order:
            wall = contenders[name]()
            if r:
                walls[name].append(wall)
    return {name: statistics.median(w) for name, w in walls.items()}


def peak_rss(cmd, env=None, stdin=None, ok_codes=(0, 3, 4)):
    """Peak RSS (MiB) of one run of `cmd`, as GNU time reports it."""
    with tempfile.NamedTemporaryFile("r") as tf:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd, env=env, input=stdin,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if p.returncode not in ok_codes:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[-500:]}")
        return int(tf.read().strip().splitlines()[-1]) / 1024


def report(case, what, ours, theirs, target, kind="ratio", better="lower"):
    ratio = ours / theirs if theirs else float("inf")
    ok = ratio <= target if better == "lower" else ratio >= target
    RESULTS.append({"case": case, "what": what, "ours": ours, "theirs": theirs, "ratio": ratio,
                    "target": target, "better": better, "met": ok})
    cmp = "<=" if better == "lower" else ">="
    print(f"{case:10} {what:58} ours {ours:9.3f}  theirs {theirs:9.3f}  ratio {ratio:7.3f} "
          f"(target {cmp} {target})  {'MET' if ok else 'MISSED'}", flush=True)


def start_apiserver(pods):
    kc = tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False).name
    p = subprocess.Popen([APISERVER, "--listen", "127.0.0.1:0", "--synthesize-pods", str(pods),
                          "--write-kubeconfig", kc], stdout=subprocess.PIPE, text=True)
    url = p.stdout.readline().strip()
    if not url.startswith("http"):
        p.kill()
        raise RuntimeError("fake-apiserver did not start")
    return p, url, kc


def raw_fetch(url, resources):
    """A plain HTTP client fetching every page of every resource (no JSON decoding): one
    keep-alive connection, pages of 500 like ours, the continue token read with a regex."""
    cont_re = re.compile(rb'"continue":"([^"]*)"')
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    try:
        for path in resources:
            token = ""
            while True:
                q = f"{path}?limit=500" + (f"&continue={urllib.parse.quote(token, safe='')}" if token else "")
                conn.request("GET", q, headers={"Authorization": "Bearer bench", "Accept": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"raw fetch {q}: HTTP {resp.status}")
                m = cont_re.search(body[:4096]) or cont_re.search(body[-4096:])
                token = m.group(1).decode() if m else ""
                if not token:
                    break
    finally:
        conn.close()


def audit_paths(env):
    """The collections the audit lists on this server, read from its own request log (`-v 6`),
    so the raw transfer fetches the same pages: the nine of the kubectl command plus
    replicationcontrollers (and events when pods fail to pull)."""
    p = subprocess.run([PLUGIN, "audit", "-A", "-o", "json", "--fail-on", "critical", "-v", "6"],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    paths = []
    for m in re.finditer(r"\] GET (/[^?\s]+)\?", p.stderr):
        if m.group(1) not in paths:
            paths.append(m.group(1))
    if "/api/v1/pods" not in paths:
        raise RuntimeError(f"cannot read the audit's requests from its -v 6 log: {p.stderr[-300:]}")
    return paths


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


# Rounds of the audit against the raw transfer: a run at 1,000 pods takes about 10 ms and varies
# by a millisecond or two between runs, so small clusters get more rounds.
LIVE_ROUNDS = {1000: 31, 10000: 11}


def case_live(runs, sizes):
    kubectl = shutil.which("kubectl")
    for pods in sizes:
        p, url, kc = start_apiserver(pods)
        try:
            env = dict(os.environ, KUBECONFIG=kc, NO_COLOR="1")
            audit = [PLUGIN, "audit", "-A", "-o", "json", "--fail-on", "critical"]
            paths = audit_paths(env)
            log(f"live {pods}: the raw transfer fetches what the audit lists: {' '.join(paths)}")
            walls = interleaved(max(runs, LIVE_ROUNDS.get(pods, 0)), pods,
                                ours=lambda: run_once(audit, env),
                                raw=lambda: timed(raw_fetch, url, paths))
            ours = walls["ours"]
            ours_mem = max(peak_rss(audit, env) for _ in range(runs))
            if kubectl:
                theirs, theirs_mem = measure([kubectl, "get",
                                              "pods,deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs,serviceaccounts,secrets",
                                              "-A", "-o", "json"], runs, env)
                report("live", f"{pods} pods: wall time vs kubectl get", ours, theirs, 0.1)
                report("live", f"{pods} pods: peak memory (MiB) vs kubectl get", ours_mem, theirs_mem, 0.1)
            report("live", f"{pods} pods: wall time vs raw page transfer", ours, walls["raw"], 1.5)
            print(f"live       {pods} pods: audit {ours:.3f} s, {ours_mem:.1f} MiB peak", flush=True)
        finally:
            p.kill()
            os.unlink(kc)


def case_criterion():
    """The criterion benches of the hot paths (bench/hot-paths), in criterion's quick mode: no
    target, just the times, for whoever changes those paths."""
    p = subprocess.run(["cargo", "bench", "-q", "-p", "image-sec-hot-paths", "--", "--quick"],
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"cargo bench failed ({p.returncode})")
    name = ""
    for line in p.stdout.splitlines():
        if line and not line[0].isspace() and "time:" not in line:
            name = line.strip()
        m = re.match(r"^(.*?)\s*(time|thrpt):\s+\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]", line)
        if m:
            label = (m.group(1).strip() or name) if m.group(2) == "time" else ""
            print(f"criterion  {label[:58]:58} {m.group(2):5} {m.group(4)}", flush=True)


def case_startup(runs):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("startup    SKIPPED: kubectl not installed")
        return
    args = ["secret-name", "--docker-username=u", "--docker-password=p", "--dry-run=client", "-o", "json"]
    env = dict(os.environ, KUBECONFIG="/nonexistent")
    ours, _ = measure([PLUGIN, "create-secret"] + args, runs, env, memory=False)
    theirs, _ = measure([kubectl, "create", "secret", "docker-registry"] + args, runs, env, memory=False)
    report("startup", "create-secret --dry-run=client vs kubectl", ours, theirs, 0.2)


MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  namespace: team-{ns}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: app-{i}}}
  template:
    metadata:
      labels: {{app: app-{i}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports: [{{containerPort: 8080}}]
        securityContext:
          readOnlyRootFilesystem: {ro}
      - name: sidecar
        image: registry.example.com/platform/proxy:1.{i}
"""


def case_manifests(runs, count):
    checkov = shutil.which("checkov")
    if not checkov:
        log("installing checkov from PyPI ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "checkov"], check=False)
        checkov = shutil.which("checkov")
    d = tempfile.mkdtemp(prefix="bench-manifests-")
    images = ["nginx", "nginx:latest", "docker.io/someone/tool:1", "registry.example.com/team/app@sha256:" + "a" * 64,
              "ghcr.io/org/app:2.0", "localhost:5000/app"]
    for i in range(count):
        with open(os.path.join(d, f"m{i:05}.yaml"), "w") as f:
            f.write(MANIFEST.format(i=i, ns=i % 50, image=images[i % len(images)], ro=str(i % 2 == 0).lower()))
    try:
        manifests_against_checkov(runs, count, d, checkov)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def manifests_against_checkov(runs, count, d, checkov):
    ours, _ = measure([PLUGIN, "audit", "-f", d, "-o", "json", "--fail-on", "critical"], runs, memory=False)
    if not checkov:
        print("manifests  SKIPPED: checkov could not be installed")
        print(f"manifests  {count} manifests: audit {ours:.3f} s")
        return
    # --skip-download: offline (no Prisma Cloud guidelines); exit code 1 means failed checks.
    theirs, _ = measure([checkov, "-d", d, "--framework", "kubernetes", "--check",
                         "CKV_K8S_14,CKV_K8S_15,CKV_K8S_43", "--quiet", "--compact", "-o", "json",
                         "--skip-download"], 1, ok_codes=(0, 1), memory=False)
    report("manifests", f"{count} manifests: speed-up vs checkov image checks", theirs / ours, 1.0, 50, better="higher")
    print(f"manifests  {count} manifests: audit {ours:.3f} s, checkov {theirs:.3f} s", flush=True)


def case_inspect(runs):
    fixture = os.path.join(ROOT, "scripts", "test-registry", "bench-image.sh")
    if not os.path.exists(fixture):
        print("inspect    SKIPPED: scripts/test-registry/bench-image.sh is not there yet")
        return
    # WATCH_PID: the registry also stops if this script dies before the finally below runs.
    out = subprocess.run(["bash", fixture], capture_output=True, text=True, check=True,
                         env=dict(os.environ, WATCH_PID=str(os.getpid()))).stdout
    info = json.loads(out.strip().splitlines()[-1])
    try:
        inspect_against_skopeo(runs, info)
    finally:
        try:
            os.kill(info["pid"], 15)
        except ProcessLookupError:
            pass
        shutil.rmtree(info["work"], ignore_errors=True)


def inspect_against_skopeo(runs, info):
    image, creds, reg = info["image"], info["creds"], info["registry"]
    import base64
    cache = tempfile.mkdtemp(prefix="bench-cache-")
    env = dict(os.environ, KUBECTL_IMAGE_SEC_CACHE_DIR=cache)
    cfgdir = tempfile.mkdtemp(prefix="bench-dockercfg-")
    dockercfg = os.path.join(cfgdir, "config.json")
    with open(dockercfg, "w") as f:
        json.dump({"auths": {reg: {"auth": base64.b64encode(creds.encode()).decode()}}}, f)
    cmd = [PLUGIN, "inspect", image, "--docker-config", dockercfg, "--insecure-registry", reg, "-o", "json",
           "--fail-on", "critical"]
    colds, mems = [], []
    for _ in range(runs):
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        w, _ = measure(cmd, 1, env, memory=False)
        colds.append(w)
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        mems.append(peak_rss(cmd, env))
    warm, _ = measure(cmd, runs, env, memory=False)
    skopeo_walls = []
    for _ in range(runs):
        dest = tempfile.mkdtemp(prefix="bench-skopeo-")
        w, _ = measure(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds,
                        f"docker://{image}", f"dir:{dest}"], 1, memory=False)
        skopeo_walls.append(w)
        shutil.rmtree(dest)
    skopeo = statistics.median(skopeo_walls)
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(cfgdir, ignore_errors=True)
    report("inspect", "cold inspect vs skopeo copy", statistics.median(colds), skopeo, 1.2)
    report("inspect", "warm (cached) inspect vs skopeo copy", warm, skopeo, 0.05)
    report("inspect", "cold inspect peak memory (MiB) vs 64 MiB", max(mems), 64, 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    ap.add_argument("--only", default="live,startup,manifests,inspect,criterion")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--sizes", default="", help="live case pod counts, e.g. 1000,10000")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    a = ap.parse_args()
    runs = a.runs or (1 if a.quick else 3)
    if not a.no_build:
        build()
    only = a.only.split(",")
    if "startup" in only:
        case_startup(max(runs, 5))
    if "live" in only:
        sizes = [int(x) for x in a.sizes.split(",")] if a.sizes else ([1000] if a.quick else [1000, 10000, 50000])
        case_live(runs, sizes)
    if "manifests" in only:
        case_manifests(runs, 500 if a.quick else 5000)
    if "inspect" in only:
        case_inspect(runs)
    if "criterion" in only:
        case_criterion()
    missed = [r for r in RESULTS if not r["met"]]
    print(f"\n{len(RESULTS) - len(missed)} of {len(RESULTS)} targets met")
    with open(os.path.join(ROOT, "target", "bench-results.json"), "w") as f:
        json.dump(RESULTS, f, indent=2)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
