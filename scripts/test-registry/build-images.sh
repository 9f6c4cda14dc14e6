#!/usr/bin/env bash
# Build the small OCI test images used by the registry tests, with umoci, from files created
# here (tiny fake executables; nothing is downloaded).
#
# Usage: build-images.sh OUT_DIR
#   OUT_DIR/oci      OCI layout with one tag per image
#   OUT_DIR/multi    OCI layout holding the multi-arch index (tag "multi")
#   OUT_DIR/stamp    written last; a rebuild is skipped while it matches this script
# BUILD_LARGE=1 also builds "large" (a ~200 MB incompressible layer).
set -euo pipefail

out=${1:?usage: build-images.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)

need() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if ((${#missing[@]})); then
        if [ "$(id -u)" = 0 ]; then
            apt-get update
            DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
        else
            echo "error: missing tools; install: ${missing[*]}" >&2
            exit 1
        fi
    fi
}
# Everything start-registry.sh needs too, so a fresh CI machine runs apt-get update once.
need umoci:umoci sha256sum:coreutils flock:util-linux docker-registry:docker-registry \
    skopeo:skopeo htpasswd:apache2-utils openssl:openssl python3:python3

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
want_stamp="$(sha256sum "$here/build-images.sh" | cut -d' ' -f1) large=${BUILD_LARGE:-0}"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$want_stamp" ]; then
    exit 0
fi
# A large build also satisfies a normal request.
if [ "${BUILD_LARGE:-0}" != 1 ] && [ -f "$out/stamp" ] &&
    [ "$(cat "$out/stamp")" = "${want_stamp% large=0} large=1" ]; then
    exit 0
fi
rm -rf "$out/oci" "$out/multi" "$out/work" "$out/stamp"
oci="$out/oci"
work="$out/work"
mkdir -p "$work"
umoci init --layout "$oci"
umoci new --image "$oci:empty"

fake_exe() { # PATH [CONTENT]
    mkdir -p "$(dirname "$1")"
    printf '#!/bin/false\n# fake %s\n' "${2:-$(basename "$1")}" >"$1"
    chmod 0755 "$1"
}

created="2024-01-15T10:00:00Z"

# new_image TAG FROM_TAG: unpack FROM_TAG into a bundle; callers edit $rootfs, then commit.
new_image() {
    bundle="$work/$1"
    rm -rf "$bundle"
    umoci unpack --rootless --image "$oci:$2" "$bundle" >/dev/null
    rootfs="$bundle/rootfs"
    tag=$1
}
commit() { # extra umoci config flags...
    umoci repack --image "$oci:$tag" "$bundle"
    umoci config --image "$oci:$tag" --created "$created" --history.created "$created" \
        --config.env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$@"
}
app() {
    fake_exe "$rootfs/app/server" server
    mkdir -p "$rootfs/etc"
    echo "nonroot:x:65532:65532::/home/nonroot:/sbin/nologin" >"$rootfs/etc/passwd"
}

# clean: only the application (and a non-executable file named like a shell outside bin dirs).
new_image clean empty
app
mkdir -p "$rootfs/usr/share/doc"
echo "not a program" >"$rootfs/usr/share/doc/bash"
commit --config.user 65532 --config.entrypoint /app/server \
    --config.label org.opencontainers.image.base.name=example.com/base/static:1 \
    --config.label org.opencontainers.image.base.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000

# shell: busybox with applet symlinks.
new_image shell empty
app
fake_exe "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"
ln -s /bin/busybox "$rootfs/bin/ash"
ln -s busybox "$rootfs/bin/ls"
commit --config.entrypoint /app/server --config.user 1000

# apt: Debian package tools.
new_image apt empty
app
fake_exe "$rootfs/usr/bin/apt"
fake_exe "$rootfs/usr/bin/apt-get"
fake_exe "$rootfs/usr/bin/dpkg"
commit --config.entrypoint /app/server

# curl
new_image curl empty
app
fake_exe "$rootfs/usr/bin/curl"
commit --config.entrypoint /app/server

# vi through Debian alternatives.
new_image vi empty
app
fake_exe "$rootfs/usr/bin/vim.basic"
mkdir -p "$rootfs/etc/alternatives"
ln -s /usr/bin/vim.basic "$rootfs/etc/alternatives/vi"
ln -s /etc/alternatives/vi "$rootfs/usr/bin/vi"
commit --config.entrypoint /app/server

# whiteout: the first layer has shells, the second deletes them (umoci writes .wh. entries).
new_image whiteout-base empty
app
fake_exe "$rootfs/bin/sh"
fake_exe "$rootfs/bin/bash"
commit --config.entrypoint /app/server
new_image whiteout whiteout-base
rm "$rootfs/bin/sh" "$rootfs/bin/bash"
commit --config.entrypoint /app/server

# corrupt: a unique layer whose blob start-registry.sh damages after the push.
new_image corrupt empty
app
head -c 4096 /dev/urandom >"$rootfs/app/data"
commit --config.entrypoint /app/server

# big: a ~20 MB incompressible layer, for the flat-memory check in the normal suite.
new_image big empty
app
head -c $((20 * 1024 * 1024)) /dev/urandom >"$rootfs/app/blob"
commit --config.entrypoint /app/server

if [ "${BUILD_LARGE:-0}" = 1 ]; then
    new_image large empty
    app
    head -c $((200 * 1024 * 1024)) /dev/urandom >"$rootfs/app/blob"
    commit --config.entrypoint /app/server
fi

# multi-arch: amd64 has curl, arm64 has wget; then an OCI index over both.
new_image multi-amd64 empty
app
fake_exe "$rootfs/usr/bin/curl"
commit --config.entrypoint /app/server --os linux --architecture amd64
new_image multi-arm64 empty
app
fake_exe "$rootfs/usr/bin/wget"
commit --config.entrypoint /app/server --os linux --architecture arm64

# Descriptor of a tag's manifest, read from the layout's index.json (one line per tag).
manifest_desc() { # TAG -> "digest size"
    tr -d '\n ' <"$oci/index.json" | grep -o '{[^{}]*"digest":"[^"]*","size":[0-9]*,"annotations":{"org.opencontainers.image.ref.name":"'"$1"'"}' |
        sed -E 's/.*"digest":"([^"]*)","size":([0-9]*).*/\1 \2/'
}
read -r amd_d amd_s < <(manifest_desc multi-amd64)
read -r arm_d arm_s < <(manifest_desc multi-arm64)
[ -n "${amd_d:-}" ] && [ -n "${arm_d:-}" ] || { echo "error: cannot find multi-arch manifests in index.json" >&2; exit 1; }
multi="$out/multi"
mkdir -p "$multi/blobs/sha256"
cp "$oci/oci-layout" "$multi/oci-layout"
for b in "$oci"/blobs/sha256/*; do ln -f "$b" "$multi/blobs/sha256/" 2>/dev/null || cp "$b" "$multi/blobs/sha256/"; done
mt=application/vnd.oci.image.manifest.v1+json
index=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}' \
    "$mt" "$amd_d" "$amd_s" "$mt" "$arm_d" "$arm_s")
index_hex=$(printf '%s' "$index" | sha256sum | cut -d' ' -f1)
printf '%s' "$index" >"$multi/blobs/sha256/$index_hex"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"multi"}}]}' \
    "$index_hex" "${#index}" >"$multi/index.json"

rm -rf "$work"
echo "$want_stamp" >"$out/stamp"
