"""Checks scripts/plot_metrics.py: two runs' metrics in, one PNG with every panel out; a bad file
gives one clear line and a non-zero exit."""
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
print("plot_metrics ok")
