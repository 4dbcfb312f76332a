#!/usr/bin/env bash
# The one-shot follow-ups (README.md, section "One-shot search"), one variant per argument:
#   spos      (default; folder oneshot/): SPOS over `compact`, the space of the multi-trial winners, its
#             supernet trained 3 epochs on all of Fashion-MNIST's training images, its answer kept under 100k
#             parameters; its genome then retrained with recipes/final.yaml (18 epochs, 2 seeds) beside TPE's
#             network and `twoconv`, through `nas compare`.
#   mbconv    (folder oneshot-mbconv/): SPOS over `compact` cut to the MBConv family
#             (oneshot-mbconv/compact_mbconv.yaml), its supernet trained 8 epochs, the rest as above; the
#             comparison retrains its genome beside TPE's network only.
# Starts both steps in the background, or resumes them where they stopped (a finished search is not run
# again; a finished comparison only writes its report). It survives the shell and the session that started
# it (setsid nohup), at the lowest priority (nice 19).
#   results/final-fashion-mnist/oneshot.sh [VARIANT]   # start or resume; prints the process id and the log
#   results/final-fashion-mnist/oneshot.sh VARIANT --commands    # print the variant's two commands, run nothing
#   NAS_PYTHON=/path/to/python results/final-fashion-mnist/oneshot.sh    # another interpreter (default .venv's)
# Stop it with `kill -TERM <pid>` (the pid is in the variant's folder, run.pid): the step running records its
# trials and prints its resume command; running this script again continues.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${NAS_PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's nas, whatever the interpreter has installed
VARIANT=${1:-spos}
[ "$VARIANT" = "--steps" ] && VARIANT=${2:-spos}
TPE=results/strategies-fashion-mnist/runs/optuna-seed2
case "$VARIANT" in
    spos)
        HERE=results/final-fashion-mnist/oneshot
        SEARCH=$HERE/spos-seed2
        SPACE=compact
        EPOCHS=3
        BASELINES=(--baselines twoconv)
        ;;
    mbconv)
        HERE=results/final-fashion-mnist/oneshot-mbconv
        SEARCH=$HERE/spos-mbconv-seed2
        SPACE=$HERE/compact_mbconv.yaml
        EPOCHS=8
        BASELINES=()
        ;;
    *) echo "oneshot.sh: unknown variant '$VARIANT' (spos or mbconv)" >&2; exit 2 ;;
esac
COMPARE=$HERE/compare
SEARCH_ARGS=(search --strategy spos --space "$SPACE" --dataset fashion_mnist --val-fraction 0.025 --seed 2 --epochs "$EPOCHS" --batch-size 64 --trials 50 --max-params 100000 --cpus-per-trial 2 --out "$SEARCH")
COMPARE_ARGS=(compare "$SEARCH" "$TPE" --no-default-baselines "${BASELINES[@]}" --dataset fashion_mnist --recipe final --seeds 2 --out "$COMPARE")
LOG=$HERE/run.log

if [ "${2:-}" = "--commands" ]; then  # the variant's two steps, one `nas` command per line (shell-quoted)
    printf '%q ' nas "${SEARCH_ARGS[@]}"; echo
    printf '%q ' nas "${COMPARE_ARGS[@]}"; echo
    exit 0
fi

if [ "${1:-}" = "--steps" ]; then  # the background job itself: each step in turn, a signal passed on to it
    # setsid made a session, hence (Linux autogroup) a scheduling group of its own, in which nice 19 only ranks
    # the job's processes among themselves: lower the group's priority too, so that other work comes first
    echo 19 2>/dev/null > /proc/self/autogroup || true
    child=""
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 143' TERM
    trap '[ -n "$child" ] && kill -INT "$child" 2>/dev/null; exit 130' INT
    step() {
        echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') $PYTHON -m nas $*"
        "$PYTHON" -m nas "$@" < /dev/null &
        child=$!
        wait "$child"
    }
    if [ -f "$SEARCH/search.json" ]; then step search --resume --out "$SEARCH"; else step "${SEARCH_ARGS[@]}"; fi
    if [ -f "$COMPARE/compare.json" ]; then step compare --resume "$COMPARE"; else step "${COMPARE_ARGS[@]}"; fi
    exit 0
fi

mkdir -p "$HERE"
if [ -f "$HERE/run.pid" ] && kill -0 "$(cat "$HERE/run.pid")" 2>/dev/null; then
    echo "already running: process $(cat "$HERE/run.pid") (log: $LOG)"
    exit 0
fi
setsid nohup nice -n 19 bash "$0" --steps "$VARIANT" >> "$LOG" 2>&1 < /dev/null &
echo $! > "$HERE/run.pid"
echo "started process $! (the search, then the comparison); log: $LOG"
