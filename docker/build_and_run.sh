#!/usr/bin/env bash
# Build the CPU image and run the demo through docker compose, on a machine that may have no
# image registry: installs Docker if needed, starts a daemon if none runs (and stops it again),
# builds a Debian base image from packages (debootstrap + docker import) when the python base
# image is not present, builds docker/Dockerfile, runs docker/docker-compose.yml, and prints
# how long each part took.
#
#   sudo docker/build_and_run.sh [hydra overrides for the demo...]
#
# Environment: CAPO_CA_BUNDLE extra CA certificates for the build (default: pip's configured
# cert bundle, e.g. where a TLS-inspecting proxy sits in front of the package index);
# CAPO_HEAVY_LOCK=/path/to/lockfile runs the demo part under `flock` (shared
# machines); CAPO_WHEELS_FROM="dir ..." folders whose wheels go into the image's pip find-links
# (default: this machine's pip find-links, e.g. where a CPU torch wheel lies); DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."
image=capo-ray:cpu
base_image=capo-ray-base:bookworm
t_start=$(date +%s)
stamp() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - t_start ))s] $*"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then need+=(docker-compose); fi
if [ ${#need[@]} -gt 0 ]; then
  stamp "installing ${need[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi

dockerd_pid=""
cleanup() {
  "${compose[@]}" -f docker/docker-compose.yml down --remove-orphans >/dev/null 2>&1 || true
  if [ -n "$dockerd_pid" ]; then
    stamp "stopping the dockerd this script started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  stamp "starting dockerd (no iptables, no bridge: containers use the host network)"
  dockerd --iptables=false --ip6tables=false --bridge=none >/tmp/capo-dockerd.log 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 20 /tmp/capo-dockerd.log; echo "dockerd did not start"; exit 1; }
fi

t0=$(date +%s)
if docker image inspect python:3.11-slim >/dev/null 2>&1; then
  base=python:3.11-slim
elif docker image inspect "$base_image" >/dev/null 2>&1; then
  base=$base_image
else
  stamp "no python base image: building $base_image from Debian packages (debootstrap)"
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/tmp/capo-debootstrap.log 2>&1 \
    || { tail -n 20 /tmp/capo-debootstrap.log; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$base_image" >/dev/null
  rm -rf "$rootfs"
  base=$base_image
fi
t_base=$(( $(date +%s) - t0 ))

# Wheels the image's package index lacks (here: torch's CPU build, from PyTorch's own index).
find -H docker/wheels -name '*.whl' -delete 2>/dev/null || true
wheel_dirs=${CAPO_WHEELS_FROM:-${PIP_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || true)}}
for d in $wheel_dirs; do
  [ -d "$d" ] && find "$d" -maxdepth 1 -name '*.whl' -exec cp {} docker/wheels/ \;
done
# Certificate authorities this machine's pip trusts beyond the usual ones (PIP_CERT / pip's cert).
find -H docker/certs -name '*.crt' -delete 2>/dev/null || true
ca_bundle=${CAPO_CA_BUNDLE:-${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}}
[ -n "$ca_bundle" ] && [ -f "$ca_bundle" ] && cp "$ca_bundle" docker/certs/host-ca-bundle.crt
stamp "base image: $base (${t_base}s); extra wheels: $(ls docker/wheels | grep -c '\.whl$' || true); extra CA bundle: ${ca_bundle:-none}"

t0=$(date +%s)
stamp "building $image"
docker build --network host --build-arg BASE="$base" -f docker/Dockerfile -t "$image" . >/tmp/capo-docker-build.log 2>&1 \
  || { tail -n 30 /tmp/capo-docker-build.log; exit 1; }
t_build=$(( $(date +%s) - t0 ))
find -H docker/wheels -name '*.whl' -delete
find -H docker/certs -name '*.crt' -delete
stamp "image built in ${t_build}s ($(docker image inspect "$image" --format '{{.Size}}' | awk '{printf "%.1f GB", $1/1e9}'))"

mkdir -p runs
# The demo needs no dataset; mount the shared one where it is beside the clone, else an empty dir.
if [ -z "${CAPO_DATA_DIR:-}" ]; then
  if [ -d ../shared/data ]; then CAPO_DATA_DIR=$(cd ../shared/data && pwd); else CAPO_DATA_DIR=$(mktemp -d); fi
fi
export CAPO_DATA_DIR
export CAPO_NETWORK_MODE=host CAPO_HEAD=127.0.0.1 CAPO_DASHBOARD_HOST=127.0.0.1 CAPO_IMAGE=$image
export CAPO_ARGS="${CAPO_ARGS:-} $*"
lock=()
[ -n "${CAPO_HEAVY_LOCK:-}" ] && lock=(flock "$CAPO_HEAVY_LOCK")
stamp "running the demo through compose: ${compose[*]} up (overrides:${CAPO_ARGS:- none})"
t0=$(date +%s)
"${lock[@]}" "${compose[@]}" -f docker/docker-compose.yml up --no-build --abort-on-container-exit --exit-code-from train \
  >/tmp/capo-compose.log 2>&1 || { tail -n 30 /tmp/capo-compose.log; echo "the demo failed"; exit 1; }
t_demo=$(( $(date +%s) - t0 ))
grep -E "step [0-9]+ \|" /tmp/capo-compose.log | tail -n 3 || true
stamp "done: base image ${t_base}s, image build ${t_build}s, demo through compose ${t_demo}s (total $(( $(date +%s) - t_start ))s)"
