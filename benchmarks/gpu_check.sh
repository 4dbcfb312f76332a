#!/usr/bin/env bash
# Check the GPU path on a machine with a CUDA GPU (sized for under 8 minutes): training throughput with and
# without mixed precision and channels-last, the speed-up of four trials packed on one GPU, a
# short Fashion-MNIST search end to end, benchmarks/train_speed.py on CUDA (the toolkit's loop against a
# plain loop; layout, bf16, batch size) and benchmarks/oneshot_speed.py (one-shot supernets against their
# paths' networks). No network needed: copy the data beside the repository.
#
#   bash benchmarks/gpu_check.sh [--data-dir DIR] [more options of benchmarks/gpu_check.py, see --help]
#
# Python: $PYTHON if set, else the repository's .venv, else python3 on the PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then
    python="$root/.venv/bin/python"
else
    python="$(command -v python3 || true)"
fi
if [[ -z "$python" ]]; then
    echo "gpu_check: no Python found (set PYTHON=/path/to/python, or create $root/.venv)" >&2
    exit 2
fi
# no NVIDIA device or tool at all: say so at once (the Python side checks torch.cuda properly)
if [[ " $* " != *" --device cpu "* && " $* " != *" --device=cpu "* && " $* " != *" -h "* && " $* " != *" --help "* ]] \
        && [[ ! -e /dev/nvidiactl ]] && ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU on this machine (no /dev/nvidiactl, no nvidia-smi); run it on a machine with a" \
         "CUDA GPU and its driver (or pass --device cpu to smoke-test the script)" >&2
    exit 2
fi
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" benchmarks/gpu_check.py "$@"
