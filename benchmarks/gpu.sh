#!/usr/bin/env bash
# The GPU checks and speed table in one script, each step capped so the whole fits a short machine lease.
# Usage: bash benchmarks/gpu.sh [OUT_DIR]   (spin-bench importable, one CUDA device; logs go to OUT_DIR)
#   1. tests/test_agents_precision.py, whose CUDA cases run only where a GPU is present;
#   2. benchmarks/gpu_parity.py: every agent's updates on the GPU against the CPU, float32;
#   3. benchmarks/gpu_graphs.py: each agent's gradient step as one CUDA graph against eager, same maths and speed;
#   4. benchmarks/agents.py --device cuda at paper sizes on the three shapes (bf16 transformer forward passes,
#      the agents' default on CUDA), then float32, then torch.compile for SPIN on dog shapes.
set -uo pipefail
out=${1:-gpu-logs}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
step() {  # step SECONDS NAME COMMAND...: run with a time cap, log to OUT/NAME.log
    local seconds=$1 name=$2
    shift 2
    echo "=== $name (cap ${seconds}s): $*"
    local start=$SECONDS
    timeout "$seconds" "$@" 2>&1 | tee "$out/$name.log"
    echo "=== $name: rc=${PIPESTATUS[0]} in $((SECONDS - start))s"
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'cores', torch.get_num_threads())" \
    | tee -a "$out/gpu.txt"
step 60 tests python3 -m pytest -q -p no:cacheprovider tests/test_agents_precision.py
step 45 parity python3 benchmarks/gpu_parity.py --preset quick --shape cheetah-run
step 150 graphs python3 benchmarks/gpu_graphs.py --preset paper --shapes dog
step 180 paper python3 benchmarks/agents.py --device cuda --presets paper --shapes dog quadruped-walk cheetah-run \
    --no-eval --seconds 2
step 40 paper-float32 python3 benchmarks/agents.py --device cuda --presets paper --shapes dog --agents spin saint \
    --no-asm --no-eval --float32 --seconds 2
step 60 paper-compile python3 benchmarks/agents.py --device cuda --presets paper --shapes dog --agents spin \
    --no-asm --no-eval --compile --seconds 2
