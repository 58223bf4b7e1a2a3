#!/usr/bin/env bash
# The GPU figures in one run (under 8 minutes on one H100): policy decisions for N = 1..256 in
# fp32 and bf16, eager and compiled (torch.compile, CUDA graphs via reduce-overhead), a whole
# decision at N = 64 with scoring, the scorer alone, CLIP ViT-B-32 / ViT-L-14 towers in bf16 vs
# the card's FLOP bound, batched perception. One metrics.json under the output folder.
#
#   benchmarks/gpu.sh [OUTPUT_DIR] [key=value ...]     e.g. benchmarks/gpu.sh outputs/gpu repeats=5
#
# Uses .venv when it exists (make venv), else the python3 on PATH with this checkout importable
# (torch with CUDA, open_clip_torch, pybullet, hydra-core installed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-outputs/bench-gpu}
shift || true
export PYTHONUNBUFFERED=1
if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$py" -m robot_rewards.cli bench gpu device=cuda "output_dir=$out" "$@"
