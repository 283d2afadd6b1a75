#!/usr/bin/env bash
# Signals and resources (issue 12), on a tiny CPU run:
#  - SIGTERM, and SIGINT, stop a run within a bounded time with a complete checkpoint and exit 0;
#  - a second SIGINT exits at once (130), leaving the last complete checkpoint byte for byte;
#  - a checkpoint write that fails (the file size limit stands in for a full disk) ends the run
#    with one "ponder: ..." line and exit 1, the previous checkpoint untouched, nothing half-written
#    left, and the run resumes from it afterwards.
#   signals_and_disk.sh PONDER_BINARY
set -euo pipefail
ponder=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "signals_and_disk: FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1

cat >"$work/r.yaml" <<YAML
model: {family: transformer, vocab_size: 100, dim: 32, layers: 1, heads: 2, ffn_hidden: 64}
data: {task: sort, seq_len: 32, task_eval_examples: 0}
optim: {name: adamw, lr: 3.0e-3}
train: {steps: 1000000}
batch: {global_tokens: 64}
runtime: {device: cpu}
log: {every: 1}
checkpoint: {every: 0}
YAML

# Waits (up to 30 s) until the run has logged a step.
wait_running() {
  for ((t = 0; t < 300; ++t)); do
    grep -q '"step"' "$1/metrics.jsonl" 2>/dev/null && return
    sleep 0.1
  done
  fail "$1 never started training"
}
# Sets `status` to pid's exit status, or fails if it runs more than `limit` seconds.
wait_within() {
  local pid=$1 limit=$2 t
  for ((t = 0; t < limit * 20; ++t)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0
      wait "$pid" || status=$?
      return
    fi
    sleep 0.05
  done
  kill -9 "$pid"
  fail "pid $pid still running $limit s after the signal"
}
newest() { ls -d "$1"/checkpoints/step_* 2>/dev/null | sort | tail -1; }
digest() { (cd "$1" && sha256sum ./*); }

for sig in TERM INT; do
  run=$work/run_$sig
  "$ponder" train "$work/r.yaml" -o "$run" >"$work/log_$sig" 2>&1 &
  pid=$!
  wait_running "$run"
  kill -"$sig" "$pid"
  wait_within "$pid" 10
  [[ $status == 0 ]] || { cat "$work/log_$sig" >&2; fail "SIG$sig: exit status not 0"; }
  ckpt=$(newest "$run")
  [[ -n $ckpt && -f $ckpt/COMPLETE ]] || fail "SIG$sig: no complete checkpoint"
  grep -q "stop requested: saving a checkpoint" "$work/log_$sig" || fail "SIG$sig: the stop was not reported"
done
echo "signals_and_disk: SIGTERM and SIGINT each stopped the run with exit 0 and a complete checkpoint"

# A second SIGINT while the first one's stop is pending exits 130 at once. A larger model (steps
# and checkpoint writes of a tenth of a second or more) so that the first has not finished yet.
run=$work/run_int2
sed -e 's/dim: 32, layers: 1, heads: 2, ffn_hidden: 64/dim: 256, layers: 4, heads: 4, ffn_hidden: 1024/' \
    -e 's/checkpoint: {every: 0}/checkpoint: {every: 1, keep: 1000}/' "$work/r.yaml" >"$work/big.yaml"
"$ponder" train "$work/big.yaml" -o "$run" >"$work/log_int2" 2>&1 &
pid=$!
for ((t = 0; t < 600; ++t)); do [[ -f $run/checkpoints/step_00000001/COMPLETE ]] && break; sleep 0.05; done
[[ -f $run/checkpoints/step_00000001/COMPLETE ]] || fail "second SIGINT: no first checkpoint"
kill -STOP "$pid"  # a stable set of complete checkpoints to compare with
want=$(for d in "$run"/checkpoints/step_*; do [[ -f $d/COMPLETE ]] && digest "$d"; done)
kill -INT "$pid"
kill -CONT "$pid"
sleep 0.02
kill -INT "$pid"
wait_within "$pid" 2
[[ $status == 130 ]] || { cat "$work/log_int2" >&2; fail "second SIGINT: exit status $status, not 130"; }
grep -q "second interrupt, exiting now" "$work/log_int2" || fail "second SIGINT: no message"
got=$(for d in "$run"/checkpoints/step_*; do [[ -f $d/COMPLETE ]] && digest "$d"; done)
[[ $got == "$want"* ]] || fail "second SIGINT: a complete checkpoint changed"
for d in "$run"/checkpoints/step_*; do [[ -f $d/COMPLETE ]] || fail "second SIGINT: $d has no COMPLETE"; done
echo "signals_and_disk: a second SIGINT exited 130 at once, every complete checkpoint intact"

# A failing write during a checkpoint: files may not grow past a limit that leaves room for the
# few metrics lines the resumed run appends (metrics.jsonl's size depends on how many steps ran
# before SIGTERM) but not for model.safetensors.
run=$work/run_TERM
before=$(newest "$run")
want=$(digest "$before")
steps=$(sed -n 's/^step: //p' "$before/trainer.yaml")
limit_kib=$(($(stat -c %s "$run/metrics.jsonl") / 1024 + 16))
(($(stat -c %s "$before/model.safetensors") > limit_kib * 1024)) ||
  fail "failed write: model.safetensors is not larger than the $limit_kib KiB file size limit"
set +e
(trap '' XFSZ; ulimit -f $limit_kib; exec "$ponder" resume "$run" --set checkpoint.every=$((steps + 2))) >"$work/log_full" 2>&1
status=$?
set -e
[[ $status == 1 ]] || { cat "$work/log_full" >&2; fail "failed write: exit status $status, not 1"; }
line=$(grep '^ponder: ' "$work/log_full")
[[ $(wc -l <<<"$line") == 1 && $line == *"File too large"* ]] || fail "failed write: expected one 'ponder: ... File too large' line, got: $line"
[[ $(digest "$before") == "$want" && $(newest "$run") == "$before" ]] || fail "failed write: the previous checkpoint changed"
! compgen -G "$run/checkpoints/.incomplete_*" >/dev/null || fail "failed write: a partial checkpoint was left behind"
echo "signals_and_disk: a failed checkpoint write said \"$line\" and left the previous checkpoint untouched"
"$ponder" resume "$run" --set train.steps=$((steps + 3)) >"$work/log_after" 2>&1 || fail "the run did not resume after the failed write"
grep -q "resumed from $before at step $steps" "$work/log_after" || fail "the resume after the failed write did not start from $before"
