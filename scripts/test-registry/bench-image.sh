#!/usr/bin/env bash
# Build the ~200 MB, 5-layer benchmark image (5 incompressible layers of 40 MiB each), start a
# registry on 127.0.0.1 with start-registry.sh, push it, and print one JSON line:
#   {"image": "127.0.0.1:PORT/test/bench-five:latest", "creds": "user:pass",
#    "registry": "127.0.0.1:PORT", "pid": REGISTRY_PID, "work": WORK_DIR}
# The caller stops the registry (kill PID) and removes WORK_DIR. With WATCH_PID=N the registry
# is also stopped when process N exits (default: the caller of this script).
#
# Usage: bench-image.sh [IMAGES_DIR]   (default target/bench-images; rebuilt only when missing)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
images=${1:-$root/target/bench-images}
layers=${BENCH_LAYERS:-5}
layer_mib=${BENCH_LAYER_MIB:-40}

# The small fixture images (and the tools: umoci, skopeo, docker-registry, htpasswd).
"$here/build-images.sh" "$images" >&2

oci="$images/oci"
tag="bench-five"
stamp="$images/bench-five.stamp"
want="layers=$layers mib=$layer_mib $(sha256sum "$0" | cut -d' ' -f1)"
exec 8>"$images/.bench-lock"
flock 8
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    grep -q "\"org.opencontainers.image.ref.name\":\"$tag\"" "$oci/index.json"; }; then
    work="$images/bench-work"
    rm -rf "$work"
    mkdir -p "$work"
    from=empty
    for i in $(seq 1 "$layers"); do
        bundle="$work/b$i"
        umoci unpack --rootless --image "$oci:$from" "$bundle" >/dev/null
        mkdir -p "$bundle/rootfs/data" "$bundle/rootfs/app"
        if [ "$i" = 1 ]; then
            printf '#!/bin/false\n# fake server\n' >"$bundle/rootfs/app/server"
            chmod 0755 "$bundle/rootfs/app/server"
        fi
        head -c $((layer_mib * 1024 * 1024)) /dev/urandom >"$bundle/rootfs/data/layer-$i.bin"
        umoci repack --image "$oci:$tag" "$bundle" >/dev/null
        rm -rf "$bundle"
        from=$tag
    done
    umoci config --image "$oci:$tag" --created "2024-01-15T10:00:00Z" \
        --history.created "2024-01-15T10:00:00Z" --config.entrypoint /app/server >/dev/null
    umoci gc --layout "$oci" >/dev/null 2>&1 || true
    rm -rf "$work"
    echo "$want" >"$stamp"
fi
flock -u 8

user=bench
pass=bench-pass
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-registry.XXXXXX")
out=$(REGISTRY_USER=$user REGISTRY_PASSWORD=$pass PUSH=$tag WATCH_PID=${WATCH_PID:-$PPID} \
    "$here/start-registry.sh" "$images" "$work")
reg=$(sed -n 's/^REGISTRY=//p' <<<"$out")
pid=$(sed -n 's/^PID=//p' <<<"$out")
printf '{"image": "%s/test/bench-five:latest", "creds": "%s:%s", "registry": "%s", "pid": %s, "work": "%s"}\n' \
    "$reg" "$user" "$pass" "$reg" "$pid" "$work"
