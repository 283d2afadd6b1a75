"""Checks scripts/plot_metrics.py: two runs' metrics in, one PNG with every panel out; two ponder eval
JSON files in, one compute-curve PNG out; a bad file gives one clear line and a non-zero exit."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "plot_metrics.py")


def write_run(directory, scale):
    os.makedirs(directory)
    with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
        for step in range(1, 21):
            f.write(json.dumps({"step": step, "tokens": step * 100, "loss": scale / step, "lr": 1e-3,
                                "grad_norm": 1.0, "tokens_per_s": 1000.0}) + "\n")
            if step % 10 == 0:
                f.write(json.dumps({"step": step, "eval.loss": scale / step, "eval.exact_match": step / 20}) + "\n")


with tempfile.TemporaryDirectory() as tmp:
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    write_run(a, 2.0)
    write_run(b, 3.0)
    out = os.path.join(tmp, "curves.png")
    subprocess.run([sys.executable, SCRIPT, a, b, "-o", out], check=True)
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG"
    with open(os.path.join(a, "metrics.jsonl"), "a") as f:
        f.write("{broken\n")
    bad = subprocess.run([sys.executable, SCRIPT, a, "-o", out], capture_output=True, text=True)
    assert bad.returncode != 0 and "not JSON" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    # Test-time compute curves from ponder eval --json.
    evals = []
    for name, base in (("hrm.json", 0.5), ("other.json", 0.3)):
        path = os.path.join(tmp, name)
        depths = [{"depth": f"H{k}L{k}", "compute": k / 2, "loss": 1 / k, "perplexity": 2.0, "exact_match": base * k / 4,
                   "correct": k, "answered": 4} for k in (1, 2, 4)]
        with open(path, "w") as f:
            json.dump({"model": "m", "family": "hrm_text", "depths": depths}, f)
        evals.append(path)
    curve = os.path.join(tmp, "compute.png")
    subprocess.run([sys.executable, SCRIPT, *evals, "-o", curve], check=True)
    with open(curve, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG"
    with open(evals[0], "w") as f:
        json.dump({"depths": [{"depth": "trained"}]}, f)
    bad = subprocess.run([sys.executable, SCRIPT, evals[0], "-o", curve], capture_output=True, text=True)
    assert bad.returncode != 0 and "not the output of ponder eval" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    bad = subprocess.run([sys.executable, SCRIPT, evals[1], b, "-o", curve], capture_output=True, text=True)
    assert bad.returncode != 0 and "not both" in bad.stderr, bad.stderr
print("plot_metrics ok")
