#!/usr/bin/env bash
# Wheels that bench/gpu_check.py needs on a GPU machine with no network, built here into
# .gpu-wheels/ (git-ignored; about 5 MB). DeepSpeed builds as a pure-Python wheel (its C++/CUDA
# ops are JIT-compiled on first use, and the check uses none of them: torch's AdamW is the
# client optimizer); its only dependencies that the target image may lack are hjson and
# pydantic. PY / PLATFORM name the target's interpreter (default: the lent H200 image's
# Python 3.12 on x86_64; its torch, transformers, numpy, msgpack, ninja, psutil, py-cpuinfo,
# einops and tqdm are already there). docs/gpu.md gives the command to run there.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
PY=${PY:-3.12}
PLATFORM=${PLATFORM:-manylinux2014_x86_64}
out=.gpu-wheels
rm -rf "$out" && mkdir -p "$out"
# The versions installed and tested in this repo's CPU environment (setup.cfg admits deepspeed>=0.16).
"$PIP" wheel --no-deps --no-build-isolation -w "$out" deepspeed==0.19.8
"$PIP" download --no-deps --only-binary=:all: --python-version "$PY" --platform "$PLATFORM" --implementation cp \
  -d "$out" hjson==3.1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
ls -l "$out"
