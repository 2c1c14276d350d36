#!/usr/bin/env bash
# The project's GPU check, in one call of the lent device machine (an H200; about 6 minutes).
#
# Usage (repository root):
#   bash benchmarks/device_check.sh                              # on the device: carry .whl and .devstore
#   DEVICE_CHECK_DRY=1 OUT=/tmp/devout bash benchmarks/device_check.sh   # here: CPU, tiny sizes
#   PARTS=seg,scale DEVICE_CHECK_CPU=0 DEVICE_CHECK_BUDGET=150 bash benchmarks/device_check.sh
#       # the patch-loader check (about 2 minutes): fold and paper-scale sampler, GPU only
#   PARTS=seg,scale DEVICE_CHECK_CPU=0 PREFETCH=2 AMP=0,1 SEG_PARTS=fold_device LOADER_ROUNDS=1 \
#       DEVICE_CHECK_BUDGET=110 bash benchmarks/device_check.sh
#       # the bf16 check (under 2 minutes): folds and paper-scale steps amp off vs on, loss/Dice both ways
#
# Switches: PARTS (comma-separated, default all: seg,train,scale,batch8,compile);
# DEVICE_CHECK_CPU=0 (no CPU comparison runs in seg and scale); PREFETCH (FoldTrainConfig.prefetch
# values each fold runs at, default 0,2: serial and prefetched sampling); SCALE_FOLD_ITERATIONS
# (scale: train_fold on the paper-sized volume, 2 epochs x N steps per prefetch; default 10, 0: none);
# AMP (FoldTrainConfig.amp values each GPU fold and paper-scale step runs at, alternating; default 0,1:
# fp32 and bf16 autocast) and AMP_ROUNDS (default 1); SEG_PARTS (bench parts of seg, default
# loader,fold_device); LOADER_ROUNDS (sampler rounds, default the bench's 3).
#
# Needs, beside the working tree:
#   .whl/      cp312 manylinux wheels of what the device image lacks (pydantic, pydantic-core,
#              annotated-types, typing-inspection, typing-extensions, zarr, numcodecs, donfig,
#              google-crc32c, monai), installed with --target /tmp/site. No SimpleITK (its
#              wheel alone is 53 MB of the 64 MiB a call may carry): a stub stands in for it, so
#              any preprocessing there fails loudly; the volumes are preprocessed here instead.
#   .devstore/seg_volumes.npz  fold 0's preprocessed volumes (N4 and resampling done here) and
#              both plans, written by
#              `python benchmarks/bench_segmentation_folds.py --parts loader --store STORE --volumes .devstore/seg_volumes.npz`.
#
# Parts, in order of priority, each with its own timeout (cut to what is left of
# DEVICE_CHECK_BUDGET seconds) and its own JSON; a failed part prints "part X failed" and the
# next one runs:
#   seg    bench_segmentation_folds.py --parts loader,fold_device: sampler rescan vs cached indices,
#          one fold on cuda (at every AMP) vs CPU (16, 1 threads, fp32), each at every PREFETCH
#   train  bench_train.py at 256 and 512 px, no compile, loader on the local store
#   scale  bench_segmentation_folds.py --parts scale: paper-sized full plan, sampler (rescan vs cached)
#          vs network (at every AMP), and train_fold on it at every PREFETCH and AMP
#   batch8 bench_train.py 512 px with breastflow's batch 8
#   compile bench_train.py --compile at 512 and 256 px
# Everything printed goes to $OUT/device_check.log too; JSON to $OUT/<part>.json.
set -u
cd "$(dirname "$0")/.."
START=$SECONDS
BUDGET=${DEVICE_CHECK_BUDGET:-400}
DRY=${DEVICE_CHECK_DRY:-0}
PARTS=${PARTS:-seg,train,scale,batch8,compile}
CPU=${DEVICE_CHECK_CPU:-1}
PREFETCH=${PREFETCH:-0,2}
AMP=${AMP:-0,1}
AMP_ROUNDS=${AMP_ROUNDS:-1}
SEG_PARTS=${SEG_PARTS:-loader,fold_device}
OUT=${OUT:-/tmp/devout}
mkdir -p "$OUT"
LOG=$OUT/device_check.log
: >"$LOG"
export PYTHONUNBUFFERED=1
say() { echo "$*" | tee -a "$LOG"; }

WHEELS="pydantic pydantic_core annotated_types typing_inspection typing_extensions zarr numcodecs donfig google_crc32c monai"
for dist in $WHEELS; do
    ls .whl/"$dist"-*.whl >/dev/null 2>&1 || say "missing wheel: .whl/$dist-*.whl"
done
[ -f .devstore/seg_volumes.npz ] || say "missing .devstore/seg_volumes.npz (seg part will fail)"

if [ "$DRY" = 1 ]; then
    PY=${PY:-.venv/bin/python}
    DEV=cpu
    SITE=${DEVICE_CHECK_SITE:-}  # e.g. a folder whose sitecustomize refuses what the device image lacks
else
    PY=${PY:-python3}
    DEV=cuda
    SITE=/tmp/site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl 2>&1 | tee -a "$LOG" || say "wheel install failed"
fi
export PYTHONPATH=${SITE:+$SITE:}$PWD:$PWD/benchmarks
if ! "$PY" -c "import SimpleITK" >/dev/null 2>&1; then
    mkdir -p /tmp/stub/SimpleITK
    cat >/tmp/stub/SimpleITK/__init__.py <<'EOF'
"""Stand-in: SimpleITK is not installed here (volumes were preprocessed elsewhere); any use fails."""


def __getattr__(name):
    raise AttributeError(f"SimpleITK stub: SimpleITK.{name} is not available on this machine")
EOF
    export PYTHONPATH=$PYTHONPATH:/tmp/stub
    say "SimpleITK: stub (not installed)"
fi

{
    echo "== env (dry=$DRY, device=$DEV)"
    date -u
    nproc
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | head -3
    "$PY" - <<'EOF'
import importlib, os, sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
      "threads", torch.get_num_threads(), "cpus", os.cpu_count())
for name in ("numpy", "scipy", "pydantic", "zarr", "numcodecs", "monai", "SimpleITK"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"), getattr(module, "__file__", ""))
    except Exception as error:  # report and go on: the parts say what they miss
        print(name, "NOT IMPORTABLE:", error)
EOF
} 2>&1 | tee -a "$LOG"

# part NAME SECONDS COMMAND...: run with a timeout cut to the budget left; never stops the script.
part() {
    local name=$1 limit=$2
    shift 2
    case ",$PARTS," in *",$name,"*) ;; *) return ;; esac
    local left=$((BUDGET - (SECONDS - START)))
    if [ "$left" -lt 20 ]; then
        say "part $name skipped: ${left}s of the budget left"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    say "== part $name (timeout ${limit}s, at $((SECONDS - START))s): $*"
    local t0=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] && say "part $name ok in $((SECONDS - t0))s" || say "part $name failed (rc $rc) after $((SECONDS - t0))s"
}

if [ "$DRY" = 1 ]; then
    SEG=(--cpu-threads 1 --quick-epochs 2 --full-epochs 2 --full-iterations 2 --loader-batches 3 --loader-rounds 1)
    SCALE=(--scale-shape 24,64,48 --scale-steps 1 --scale-cpu-steps 1 --scale-loader-batches 1 --cpu-threads 1
           --loader-rounds 1 --scale-fold-iterations "${SCALE_FOLD_ITERATIONS:-2}")
    TRAIN=(--steps 1 --rounds 1 --warmup 1)
    TCASES=64x8,96x8
    LOADER=(--loader-n 4 --loader-slices 2 --loader-rounds 1)
else
    SEG=(--cpu-threads 16,1 --full-cpu-threads 16 --full-epochs 3 --full-iterations 10)
    SCALE=(--cpu-threads 16 --scale-fold-iterations "${SCALE_FOLD_ITERATIONS:-10}")
    if [ "$CPU" = 0 ]; then
        SEG=(--cpu-threads '' --full-epochs 3 --full-iterations 10)
        SCALE=(--cpu-threads '' --scale-cpu-steps 0 --scale-fold-iterations "${SCALE_FOLD_ITERATIONS:-10}")
    fi
    TRAIN=(--steps 10 --rounds 5 --warmup 3)
    TCASES=256x64,512x64
    LOADER=(--loader-n 96 --loader-slices 16 --loader-rounds 3)
    if [ -n "${LOADER_ROUNDS:-}" ]; then
        SEG+=(--loader-rounds "$LOADER_ROUNDS")
        SCALE+=(--loader-rounds "$LOADER_ROUNDS")
    fi
fi

AMPS=(--amp "$AMP" --amp-rounds "$AMP_ROUNDS")
part seg 200 "$PY" benchmarks/bench_segmentation_folds.py --parts "$SEG_PARTS" --device "$DEV" \
    --volumes .devstore/seg_volumes.npz --prefetch "$PREFETCH" "${AMPS[@]}" "${SEG[@]}" --json "$OUT/seg.json"
part train 120 "$PY" benchmarks/bench_train.py --device "$DEV" --no-s3 --cases "$TCASES" "${TRAIN[@]}" \
    "${LOADER[@]}" --loader-sizes '' --json "$OUT/train.json"
part scale 100 "$PY" benchmarks/bench_segmentation_folds.py --parts scale --device "$DEV" --prefetch "$PREFETCH" \
    "${AMPS[@]}" "${SCALE[@]}" \
    --json "$OUT/scale.json"
part batch8 60 "$PY" benchmarks/bench_train.py --device "$DEV" --no-s3 --cases "${TCASES##*,}" --batch 8 \
    "${TRAIN[@]}" --loader-n 0 --json "$OUT/train_batch8.json"
[ "$DEV" = cuda ] && part compile 150 "$PY" benchmarks/bench_train.py --device "$DEV" --no-s3 --compile \
    --cases 512x64,256x64 --steps 10 --rounds 3 --warmup 3 --loader-n 0 --json "$OUT/train_compile.json"
say "== done in $((SECONDS - START))s; files: $(ls "$OUT" | tr '\n' ' ')"
exit 0
