#!/usr/bin/env bash
# Kill test (issue 12): a tiny deterministic run is SIGKILLed at KILLS seeded random moments, half
# of them while a checkpoint is being written, and resumed after each. Every resume must start from
# the newest complete checkpoint (a planted newer directory without COMPLETE, or with a corrupt
# file, is never loaded), and the final weights must equal an uninterrupted run's bit for bit.
#   kill_resume.sh PONDER_BINARY [KILLS] [SEED]
set -euo pipefail
ponder=$1
kills=${2:-30}
RANDOM=${3:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "kill_resume: FAIL: $*" >&2; exit 1; }

steps=6000
cat >"$work/r.yaml" <<YAML
model: {family: transformer, vocab_size: 100, dim: 16, layers: 1, heads: 2, ffn_hidden: 32}
data: {task: sort, seq_len: 32, task_eval_examples: 0}
optim: {name: adamw, lr: 3.0e-3}
train: {steps: $steps}
batch: {global_tokens: 64, micro_tokens: 32}
runtime: {device: cpu, seed: 7}
log: {every: 50}
checkpoint: {every: 4, keep: 2}
YAML
export OMP_NUM_THREADS=1
final=checkpoints/$(printf 'step_%08d' "$steps")/model.safetensors

"$ponder" train "$work/r.yaml" -o "$work/ref" >/dev/null 2>&1 || fail "the uninterrupted run failed"
reference=$(sha256sum <"$work/ref/$final")

run=$work/run
ckpts=$run/checkpoints
# The newest step_* directory holding a COMPLETE marker (what a resume must pick).
newest_complete() {
  local d
  for d in $(ls -d "$ckpts"/step_* 2>/dev/null | sort -r); do
    [[ -f $d/COMPLETE ]] && { echo "$d"; return; }
  done
}
# Newer directories a resume must refuse: one never finished, one whose weights were damaged after COMPLETE.
plant_decoys() {
  local src=$1
  cp -r "$src" "$ckpts/step_99999998" && rm "$ckpts/step_99999998/COMPLETE"
  cp -r "$src" "$ckpts/step_99999999" && truncate -s -1 "$ckpts/step_99999999/model.safetensors"
}

in_write=0 landed=0
for ((i = 1; i <= kills; ++i)); do
  expected=$(newest_complete)
  log=$work/log.$i
  : >"$log"  # exists even if the process is killed before it opens it
  decoys=0
  if [[ -z $expected ]]; then
    "$ponder" train "$work/r.yaml" -o "$run" --force >"$log" 2>&1 &
  else
    if ((i % 3 == 0)); then plant_decoys "$expected"; decoys=1; fi
    "$ponder" resume "$run" >"$log" 2>&1 &
  fi
  pid=$!
  if ((i % 2)) && [[ -n $expected ]]; then
    # Into a checkpoint write: once the resume has loaded, as soon as a temporary checkpoint
    # directory appears (a killed write may have left one: it must be a new one), after 0-4 ms more.
    for ((t = 0; t < 5000; ++t)); do
      grep -q "resumed from" "$log" 2>/dev/null && compgen -G "$ckpts/.incomplete_*" >/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.001
    done
    sleep "0.00$((RANDOM % 5))"
  elif [[ -z $expected ]] && ((i > 1)); then
    # The run from scratch before was killed ahead of its first checkpoint (a slow start on a busy
    # machine): this one writes one, or every later kill would again hit a run from scratch.
    for ((t = 0; t < 20000; ++t)); do
      [[ -n $(newest_complete) ]] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.001
    done
  else
    sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
  fi
  compgen -G "$ckpts/.incomplete_*" >/dev/null && ((++in_write)) || true
  if kill -9 "$pid" 2>/dev/null; then ((++landed)); else echo "kill $i: the process had ended:" >&2; tail -3 "$log" >&2; fi
  wait "$pid" 2>/dev/null || true
  if [[ -n $expected ]]; then
    got=$(sed -n 's/.*resumed from \(.*\) at step.*/\1/p' "$log" | head -1)
    # A resume killed before it loaded anything names nothing; one that loaded must name the newest.
    [[ -z $got || $got == "$expected" ]] || { cat "$log" >&2; fail "kill $i: resumed from $got, expected $expected"; }
    if ((decoys)) && [[ -n $got ]]; then
      grep -q "skipping .*step_99999999" "$log" || fail "kill $i: the corrupt newer checkpoint was not reported"
      grep -q "skipping .*step_99999998.*no COMPLETE" "$log" || fail "kill $i: the unfinished checkpoint was not reported"
    fi
    rm -rf "$ckpts/step_99999998" "$ckpts/step_99999999"
  fi
done
((landed >= kills * 9 / 10)) || fail "only $landed of $kills kills landed before the run ended (make the run longer)"
((in_write >= kills / 4)) || fail "only $in_write kills landed during a checkpoint write"

# Finish the run and compare the final weights with the uninterrupted run's.
expected=$(newest_complete)
"$ponder" resume "$run" >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "the last resume failed"; }
got=$(sed -n 's/.*resumed from \(.*\) at step.*/\1/p' "$work/log" | head -1)
[[ $got == "$expected" ]] || fail "the last resume started from $got, expected $expected"
[[ $(sha256sum <"$run/$final") == "$reference" ]] || fail "the final weights differ from the uninterrupted run's"
echo "kill_resume: $landed kills ($in_write during checkpoint writes), every resume from the newest complete checkpoint, final weights identical"
