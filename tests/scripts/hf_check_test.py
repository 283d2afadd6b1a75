"""scripts/hf_check.py on freshly trained tiny models: an HRM-Text and a causal baseline are
trained for a few steps on CPU, exported in f32, and greedy generation through transformers (on
the GPU) must give ponder's tokens. Skipped (exit 77) without a CUDA device or a transformers
that has HrmTextForCausalLM.

    python3 tests/scripts/hf_check_test.py build/ponder scripts/hf_check.py
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from transformers import HrmTextForCausalLM  # noqa: F401
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)
if not torch.cuda.is_available():
    print("skipped: torch sees no CUDA device")
    sys.exit(77)

PONDER, HF_CHECK = sys.argv[1:3]
COMMON = """data: {{task: reverse, seq_len: 64{mask}}}
optim: {{name: adamw, lr: 3.0e-3}}
train: {{steps: 30}}
batch: {{global_tokens: 256}}
runtime: {{device: cpu}}
checkpoint: {{every: 30}}
"""
MODELS = {
    "hrm_text": "model: {family: hrm_text, vocab_size: 100, dim: 64, layers_per_stack: 1, heads: 1, ffn_hidden: 128}\n",
    "baseline": "model: {family: transformer, vocab_size: 100, dim: 64, layers: 2, heads: 1, ffn_hidden: 128}\n",
}


def run(*args):
    r = subprocess.run(list(args), capture_output=True, text=True)
    print(r.stdout + r.stderr)
    return r.returncode


def trained_export(tmp, name):
    recipe = os.path.join(tmp, name + ".yaml")
    with open(recipe, "w") as f:
        f.write(MODELS[name] + COMMON.format(mask=", mask: causal" if name == "baseline" else ""))
    run_dir, out = os.path.join(tmp, name), os.path.join(tmp, name + "_export")
    assert run(PONDER, "train", recipe, "-o", run_dir) == 0, f"training {name} failed"
    assert run(PONDER, "export", run_dir, "-o", out, "--dtype", "f32") == 0, f"exporting {name} failed"
    return out


with tempfile.TemporaryDirectory() as tmp:
    prompts = os.path.join(tmp, "prompts.jsonl")
    with open(prompts, "w") as f:
        f.write("".join(json.dumps({"prompt": f"reverse:{n}"}) + "\n" for n in ["1", "42", "31415", "2718281828"]))
    failures = 0
    for name in MODELS:
        export = trained_export(tmp, name)
        for extra in ([], ["--prompts", prompts]):
            status = run(sys.executable, HF_CHECK, export, "--ponder", PONDER, "--device", "cuda", "--max-new-tokens", "24",
                         *extra)
            failures += status != 0
sys.exit(1 if failures else 0)
