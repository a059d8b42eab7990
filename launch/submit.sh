#!/usr/bin/env bash
# Submit a capo-ray training run to a running Ray cluster as a Ray job.
#
#   launch/submit.sh [hydra overrides...]
#   RAY_ADDRESS=http://HEAD_IP:8265 launch/submit.sh cluster=gpu_2node trainer.steps=500
#
# RAY_ADDRESS: the cluster's job server (default http://127.0.0.1:8265).
# CAPO_RAY_NO_WAIT=1: return after submission instead of following the job's logs.
# The working directory (this repository, minus virtualenvs, runs and caches) is shipped to
# the cluster; every node needs the package's dependencies installed
# (`pip install -e .[gpu]` on GPU clusters, `make install` on CPU machines).
set -euo pipefail
cd "$(dirname "$0")/.."

address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
python_bin="${CAPO_RAY_PYTHON:-python}"
runtime_env=$(cat <<JSON
{"excludes": [".venv", "runs", "outputs", "wandb", ".git", "*.safetensors", "*.gguf"],
 "env_vars": {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}}
JSON
)
wait_flag=()
[ "${CAPO_RAY_NO_WAIT:-0}" = "1" ] && wait_flag=(--no-wait)

exec ray job submit --address "$address" --working-dir . \
    --runtime-env-json "$runtime_env" "${wait_flag[@]}" \
    -- "$python_bin" -m capo_ray.train "$@"
