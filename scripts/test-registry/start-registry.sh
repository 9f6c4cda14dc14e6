#!/usr/bin/env bash
# Start Debian's docker-registry (distribution 2.8) on 127.0.0.1 with htpasswd (bcrypt) auth and
# a temporary storage dir, push the fixture images, and print the address.
#
# Usage: start-registry.sh IMAGES_DIR WORK_DIR
#   IMAGES_DIR   output of build-images.sh
#   WORK_DIR     fresh directory for config, storage, logs, certificates
# Environment:
#   REGISTRY_USER / REGISTRY_PASSWORD   credentials (default fixture / fixture-pass)
#   TLS=1          serve HTTPS with a certificate from a throwaway CA (WORK_DIR/ca.pem)
#   PUSH="..."     images to push (default: all built ones)
#   WATCH_PID=N    stop the registry (and delete WORK_DIR) when process N exits
#   BUILD_LARGE=1  also push the 200 MB "large" image when it was built
# Prints lines KEY=VALUE: REGISTRY, PID, CA (TLS only), LOG; also written to WORK_DIR/env.
# Pushed: test/NAME:latest for each image; test/multi:latest (index); test/shell-zstd:latest
# (zstd layers); test/apt-docker:latest (Docker schema 2 media types); test/cache-probe:latest. The layer of test/corrupt
# is damaged in storage after the push.
set -euo pipefail

images=${1:?usage: start-registry.sh IMAGES_DIR WORK_DIR}
work=${2:?usage: start-registry.sh IMAGES_DIR WORK_DIR}
user=${REGISTRY_USER:-fixture}
pass=${REGISTRY_PASSWORD:-fixture-pass}

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
need docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils openssl:openssl python3:python3

mkdir -p "$work/storage"
htpasswd -Bbn "$user" "$pass" >"$work/htpasswd"

# A free port: bind port 0 and release it (tiny race, acceptable for tests).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"

tls_block=""
if [ "${TLS:-0}" = 1 ]; then
    # A CA plus a leaf for 127.0.0.1: rustls/webpki refuse a CA certificate used as a server cert.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=image-sec test CA" \
        -keyout "$work/ca-key.pem" -out "$work/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$work/key.pem" -out "$work/req.pem" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >"$work/ext.cnf"
    openssl x509 -req -in "$work/req.pem" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$work/ext.cnf" -out "$work/cert.pem" 2>/dev/null
    tls_block="  tls:
    certificate: $work/cert.pem
    key: $work/key.pem"
fi

cat >"$work/config.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr
  secret: image-sec-fixture
$tls_block
auth:
  htpasswd:
    realm: image-sec-fixture
    path: $work/htpasswd
YAML

# setsid: the registry gets its own process group, so stopping it never touches the caller.
setsid docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
echo "$reg_pid" >"$work/registry.pid"
if [ -n "${WATCH_PID:-}" ]; then
    # Watchdog: when the test process is gone, stop the registry and remove its storage.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
        kill "$2" 2>/dev/null; sleep 1; rm -rf -- "$3"' \
        _ "$WATCH_PID" "$reg_pid" "$work" </dev/null >/dev/null 2>&1 &
fi

for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$reg_pid" 2>/dev/null; then
        echo "error: docker-registry exited; log:" >&2
        cat "$work/registry.log" >&2
        exit 1
    fi
    sleep 0.1
done

push() { # SRC DEST [skopeo flags...]
    local src=$1 dest=$2
    shift 2
    skopeo copy --quiet --dest-creds "$user:$pass" --dest-tls-verify=false "$@" \
        "$src" "docker://$addr/$dest" >/dev/null
}

if [ -n "${PUSH:-}" ]; then
    names=$PUSH
else
    names=$(tr -d '\n ' <"$images/oci/index.json" | grep -o '"org.opencontainers.image.ref.name":"[^"]*"' |
        sed -E 's/.*:"([^"]*)"/\1/' | grep -vE '^(empty|whiteout-base|multi-amd64|multi-arm64)$' || true)
    # The 200 MB image only when asked for (it may be left over from an earlier large build).
    if [ "${BUILD_LARGE:-0}" != 1 ]; then
        names=$(printf '%s\n' $names | grep -vx large || true)
    fi
fi
for name in $names; do
    case $name in
    multi) push "oci:$images/multi:multi" test/multi:latest --all ;;
    shell-zstd) push "oci:$images/oci:shell" test/shell-zstd:latest --dest-compress-format zstd --dest-compress ;;
    apt-docker) push "oci:$images/oci:apt" test/apt-docker:latest --format v2s2 ;;
    *) push "oci:$images/oci:$name" "test/$name:latest" ;;
    esac
done
if [ -z "${PUSH:-}" ]; then
    push "oci:$images/multi:multi" test/multi:latest --all
    push "oci:$images/oci:shell" test/shell-zstd:latest --dest-compress-format zstd --dest-compress
    push "oci:$images/oci:apt" test/apt-docker:latest --format v2s2
    # Used only by the cache test, so its access-log lines are not mixed with other tests'.
    push "oci:$images/oci:apt" test/cache-probe:latest
fi

# Damage test/corrupt's layer in storage, keeping its size, so only digest checks can tell.
if [ -d "$work/storage/docker/registry/v2/repositories/test/corrupt" ]; then
    for link in "$work"/storage/docker/registry/v2/repositories/test/corrupt/_layers/sha256/*/link; do
        hex=$(sed 's/^sha256://' "$link")
        data="$work/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
        # Only the layer (the large blob), not the small config.
        if [ "$(stat -c %s "$data")" -gt 2000 ]; then
            printf 'CORRUPTED' | dd of="$data" bs=1 seek=200 conv=notrunc status=none
        fi
    done
fi

{
    echo "REGISTRY=$addr"
    echo "PID=$reg_pid"
    echo "LOG=$work/registry.log"
    if [ "${TLS:-0}" = 1 ]; then echo "CA=$work/ca.pem"; fi
} | tee "$work/env"
