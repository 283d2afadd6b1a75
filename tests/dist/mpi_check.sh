#!/usr/bin/env bash
# Multi-process checks run by ctest under `mpirun -np 2` (exit 77 = skipped when mpirun is missing):
#   mpi_check.sh gtest  DIST_TESTS   the two-rank tests of dist_tests pass on both ranks
#   mpi_check.sh killed DIST_TESTS   a rank killed mid-job makes mpirun exit non-zero, not hang
#   mpi_check.sh hung   DIST_TESTS   a rank that stops answering makes the others give up after
#                                    PONDER_COMM_TIMEOUT_S with one line, and the job exit non-zero
#   mpi_check.sh cli    PONDER       bad jobs (world size not dividing the batch, ranks with
#                                    different recipes) fail with one clear line and exit 2
set -uo pipefail
mode=$1
binary=$2
if ! command -v mpirun >/dev/null 2>&1; then
  echo "SKIPPED: mpirun not found (scripts/lib/deps.sh installs openmpi-bin)"
  exit 77
fi
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
mpi=(mpirun --oversubscribe --allow-run-as-root)
fail() { echo "FAILED: $*"; exit 1; }

case $mode in
  gtest)
    exec timeout 600 "${mpi[@]}" -np 2 "$binary"
    ;;
  killed)
    start=$SECONDS
    timeout 300 "${mpi[@]}" -np 2 "$binary" --gtest_also_run_disabled_tests \
      --gtest_filter=DataParallel.DISABLED_KilledRankEndsTheJob
    rc=$?
    [ "$rc" -eq 124 ] && fail "the job hung for 300 s after a rank was killed"
    [ "$rc" -eq 0 ] && fail "the job exited 0 although a rank was killed"
    echo "OK: exit status $rc after $((SECONDS - start)) s"
    ;;
  hung)
    start=$SECONDS
    out=$(PONDER_COMM_TIMEOUT_S=5 timeout 300 "${mpi[@]}" -x PONDER_COMM_TIMEOUT_S -np 2 "$binary" \
      --gtest_also_run_disabled_tests --gtest_filter=DataParallel.DISABLED_HungRankEndsTheJob 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" -eq 124 ] && fail "the job hung for 300 s although rank 1 stopped answering"
    [ "$rc" -eq 0 ] && fail "the job exited 0 although rank 1 never joined the all-reduce"
    grep -q "rank 0: all_reduce: no answer from the other ranks within 5 s" <<< "$out" ||
      fail "rank 0 did not report the unanswered all-reduce"
    [ $((SECONDS - start)) -le 120 ] || fail "the job took $((SECONDS - start)) s to end (timeout 5 s)"
    echo "OK: exit status $rc after $((SECONDS - start)) s"
    ;;
  cli)
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    cat > "$dir/r.yaml" <<'YAML'
model: {family: transformer, vocab_size: 100, dim: 16, layers: 1, heads: 2, ffn_hidden: 32}
data: {task: sort, seq_len: 64, task_eval_examples: 8}
train: {steps: 2}
batch: {global_tokens: 256, micro_tokens: 128}
runtime: {device: cpu}
YAML
    # expect_error CODE PATTERN -- COMMAND...: exit CODE and exactly one "ponder:" line matching PATTERN.
    expect_error() {
      local code=$1 pattern=$2
      shift 3
      timeout 120 "$@" > "$dir/out" 2>&1
      local rc=$?
      [ "$rc" -eq "$code" ] || { cat "$dir/out"; fail "exit $rc instead of $code: $*"; }
      [ "$(grep -c '^ponder:' "$dir/out")" -eq 1 ] || { cat "$dir/out"; fail "not exactly one message: $*"; }
      grep -q "$pattern" "$dir/out" || { cat "$dir/out"; fail "no message matching '$pattern': $*"; }
      [ -e "$dir/run" ] && fail "a failed job left a run directory: $*"
      return 0
    }
    expect_error 2 "world" -- "${mpi[@]}" -np 4 "$binary" train "$dir/r.yaml" -o "$dir/run"
    expect_error 2 "different recipes" -- "${mpi[@]}" -np 1 "$binary" train "$dir/r.yaml" -o "$dir/run" \
      : -np 1 "$binary" train "$dir/r.yaml" -o "$dir/run" --set optim.lr=0.01
    "${mpi[@]}" -np 2 "$binary" train "$dir/r.yaml" -o "$dir/run" > "$dir/out" 2>&1 || { cat "$dir/out"; fail "a good job failed"; }
    [ "$(grep -c 'step 2/2' "$dir/out")" -eq 1 ] || { cat "$dir/out"; fail "progress not printed exactly once (rank 0 only)"; }
    echo "OK"
    ;;
  *)
    fail "unknown mode $mode"
    ;;
esac
