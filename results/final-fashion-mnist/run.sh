#!/usr/bin/env bash
# Starts the final Fashion-MNIST comparison (PLAN.md) in the background, or resumes it where it stopped:
# the first run starts it; once results/final-fashion-mnist/compare/compare.json exists, every later run
# continues it with `nas compare --resume` (finished trials are never retrained; an unfinished one continues
# from its last epoch checkpoint). It survives the shell and the session that started it (setsid nohup),
# at the lowest priority (nice 19). Run it from anywhere; it works in the repository's root.
#   results/final-fashion-mnist/run.sh            # start or resume; prints the process id and the log
#   results/final-fashion-mnist/run.sh long       # the same for the 60-epoch follow-up (README.md, section 60 epochs)
#   NAS_PYTHON=/path/to/python results/final-fashion-mnist/run.sh    # another interpreter (default .venv's)
# Stop it with `kill -TERM <pid>` (the pid is in run.pid): the trials are recorded, a partial report written.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${NAS_PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's nas, whatever the interpreter has installed
case "${1:-}" in
    "")
        HERE=results/final-fashion-mnist
        OUT=$HERE/compare
        ARGS=(results/strategies-fashion-mnist/runs/pnas-seed2 results/strategies-fashion-mnist/runs/optuna-seed2 --no-default-baselines --baselines twoconv results/final-fashion-mnist/genomes/resnet20_w0.6.yaml results/final-fashion-mnist/genomes/mobilenet_v2_cifar_w0.15.yaml results/final-fashion-mnist/genomes/darts_v2_w0.2_d0.3.yaml --dataset fashion_mnist --recipe final --seeds 2 --out results/final-fashion-mnist/compare);;
    long)
        HERE=results/final-fashion-mnist/long
        OUT=$HERE/compare
        ARGS=(results/strategies-fashion-mnist/runs/optuna-seed2 --no-default-baselines --baselines results/final-fashion-mnist/genomes/resnet20_w0.6.yaml --dataset fashion_mnist --recipe final --epochs 60 --seeds 2 --out results/final-fashion-mnist/long/compare);;
    *)
        echo "usage: $0 [long]" >&2
        exit 2;;
esac
mkdir -p "$HERE"
LOG=$HERE/run.log

if [ -f "$HERE/run.pid" ] && kill -0 "$(cat "$HERE/run.pid")" 2>/dev/null; then
    echo "already running: process $(cat "$HERE/run.pid") (log: $LOG)"
    exit 0
fi
if [ -f "$OUT/compare.json" ]; then
    COMMAND=("$PYTHON" -m nas compare --resume "$OUT")
else
    COMMAND=("$PYTHON" -m nas compare "${ARGS[@]}")
fi
echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') ${COMMAND[*]}" >> "$LOG"
# setsid makes a session, hence (Linux autogroup) a scheduling group of its own, in which nice 19 only ranks the
# job's processes among themselves: the group's priority is lowered too, so that other work comes first
setsid nohup nice -n 19 bash -c 'echo 19 2>/dev/null > /proc/self/autogroup || true; exec "$@"' nas-job "${COMMAND[@]}" \
    >> "$LOG" 2>&1 < /dev/null &
echo $! > "$HERE/run.pid"
echo "started process $! (${COMMAND[*]}); log: $LOG"
