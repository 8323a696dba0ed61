#!/usr/bin/env bash
# Builds tenant-gateway the way docker/Dockerfile's build stage does (release, static Swift stdlib)
# and proves what the runtime stage relies on, without a Docker daemon:
#   - the binary links no Swift runtime or Foundation shared library, only libraries every Debian
#     base image has (libc, libm, libstdc++, libgcc_s), so debian:bookworm-slim can run it;
#   - `check` accepts the shipped gateway.conf, and `serve` starts and answers /healthz and /readyz, then a
#     SIGTERM drains and exits 0.
# Takes ~7 minutes from scratch on 2 cores (a release build of the NIO + SSL + HTTP/2 stack).
set -euo pipefail
cd "$(dirname "$0")/.."

# The Dockerfile's command, read from it so the two cannot drift apart.
build_cmd=$(grep -oE 'swift build -c release --product tenant-gateway --static-swift-stdlib' docker/Dockerfile) || {
  echo "docker/Dockerfile no longer has the expected build command; update scripts/check-image-build.sh" >&2
  exit 1
}
BUILD_PATH=.build-static
$build_cmd --build-path "$BUILD_PATH"
bin="$BUILD_PATH/release/tenant-gateway"

echo "== shared libraries"
ldd "$bin"
allowed='^(linux-vdso\.so|libc\.so|libm\.so|libstdc\+\+\.so|libgcc_s\.so|ld-linux-x86-64\.so|ld-linux-aarch64\.so|libpthread\.so|libdl\.so|librt\.so|libutil\.so)'
unexpected=$(ldd "$bin" | awk '{print $1}' | sed 's|.*/||' | grep -Ev "$allowed" || true)
if [ -n "$unexpected" ]; then
  echo "image check: FAILED — links libraries a slim Debian image lacks: $unexpected" >&2
  exit 1
fi

echo "== check + serve"
"$bin" check --config gateway.conf
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" serve --config gateway.conf --set listen.address=127.0.0.1:18443 --set admin.address=127.0.0.1:19901 \
  --set snapshot.state_dir="$work/var" >"$work/serve.log" 2>&1 &
pid=$!
# /healthz answers from the first instant; /readyz once the table is loaded and the listener bound.
for _ in $(seq 1 100); do
  curl -fs http://127.0.0.1:19901/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs http://127.0.0.1:19901/healthz >/dev/null || { cat "$work/serve.log" >&2; echo "image check: FAILED — /healthz did not answer" >&2; exit 1; }
curl -fs http://127.0.0.1:19901/readyz >/dev/null || { cat "$work/serve.log" >&2; echo "image check: FAILED — /readyz never turned ready" >&2; exit 1; }
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
if [ "$status" -ne 0 ]; then cat "$work/serve.log" >&2; echo "image check: FAILED — exit $status after SIGTERM" >&2; exit 1; fi
echo "image check: ok (static binary $(du -h "$bin" | cut -f1), Swift runtime linked statically, serves and drains)"
