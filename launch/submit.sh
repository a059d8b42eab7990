#!/usr/bin/env bash
# Submit a capo-ray training run to a running Ray cluster as a Ray job.
#
#   launch/submit.sh [hydra overrides...]
#   RAY_ADDRESS=http://HEAD_IP:8265 launch/submit.sh cluster=gpu_2node trainer.steps=500
#
# RAY_ADDRESS: the cluster's job server (default http://127.0.0.1:8265).
# CAPO_RAY_NO_WAIT=1: return after submission instead of following the job's logs.
# CAPO_SUBMISSION_ID: the job's id (default capo-<date>-<pid>); CAPO_SUBMIT_ATTEMPTS (30).
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

# The job server answers before its agent has registered, and then refuses a submission with
# "No available agent" (seen with a freshly started head in docker compose). Such a refusal
# creates no job, so it is retried; one submission id for every attempt means a job can never
# be started twice (a second submit with that id fails instead).
submission_id="${CAPO_SUBMISSION_ID:-capo-$(date +%Y%m%d-%H%M%S)-$$}"
attempts="${CAPO_SUBMIT_ATTEMPTS:-30}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for attempt in $(seq 1 "$attempts"); do
  set +e
  ray job submit --address "$address" --working-dir . --submission-id "$submission_id" \
      --runtime-env-json "$runtime_env" "${wait_flag[@]}" \
      -- "$python_bin" -m capo_ray.train "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -eq 0 ] || ! grep -q "No available agent" "$out"; then exit "$rc"; fi
  echo "submit.sh: the job server has no agent yet (attempt $attempt of $attempts); retrying in 2 s" >&2
  sleep 2
done
echo "submit.sh: gave up after $attempts attempts: the job server never had an agent" >&2
exit 1
