"""Checks that transformers' AutoTokenizer loads the tokenizer of a ponder export and gives ponder's
ids: for a run on a task (character tokenizer) and for one on shards prepared with a trained
SentencePiece model, whose ids come from the sentencepiece library itself. Skipped (exit 77)
where transformers or sentencepiece is not installed.

    python3 tests/scripts/hf_tokenizer_check.py build/ponder
"""
import json
import os
import random
import subprocess
import sys
import tempfile

try:
    import sentencepiece
    from transformers import AutoTokenizer
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

PONDER = sys.argv[1]
RECIPE = """model: {{family: transformer, vocab_size: {vocab}, dim: 32, layers: 1, heads: 2, ffn_hidden: 64}}
data: {{{data}, seq_len: 64}}
optim: {{name: adamw, lr: 3.0e-3}}
train: {{steps: 2}}
batch: {{global_tokens: 128}}
runtime: {{device: cpu}}
checkpoint: {{every: 2}}
"""


def ponder(*args):
    r = subprocess.run([PONDER, *args], capture_output=True, text=True)
    assert r.returncode == 0, f"ponder {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}"


def train_and_export(tmp, name, vocab, data):
    recipe = os.path.join(tmp, name + ".yaml")
    with open(recipe, "w") as f:
        f.write(RECIPE.format(vocab=vocab, data=data))
    run, out = os.path.join(tmp, name), os.path.join(tmp, name + "_export")
    ponder("train", recipe, "-o", run)
    ponder("export", run, "-o", out)
    return out


def check_characters(tmp):
    tok = AutoTokenizer.from_pretrained(train_and_export(tmp, "chars", 100, "task: reverse"))
    ids = lambda text: [ord(c) - 27 for c in text]  # printable ASCII 32..126 are ids 5..99
    for text in ["reverse:4193", "  two  spaces ", "a~ {x}", ""]:
        assert tok("<inst>" + text + "<resp>")["input_ids"] == [1, 3] + ids(text) + [4], text
        assert tok.decode(ids(text)) == text, text
    assert tok.decode([1, 3] + ids("ab") + [4, 2], skip_special_tokens=True) == "ab"


def check_sentencepiece(tmp):
    rng = random.Random(1)
    words = "the cat sat on a mat dog ran to red box what is sum of and big sun".split()
    phrase = lambda lo, hi: " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))
    records = [{"instruction": phrase(2, 8), "response": phrase(1, 6) + " " + str(rng.randint(0, 999)),
                "condition": rng.choice(["easy", "hard"])} for _ in range(300)]
    records += [{"text": phrase(3, 9) + "  " + phrase(1, 3)} for _ in range(60)]
    jsonl, shards = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "shards")
    with open(jsonl, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    ponder("data", "prepare", jsonl, "--train-tokenizer", "80", "-o", shards)
    out = train_and_export(tmp, "sp", 128, f"train: [{shards}]")
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))
    tok = AutoTokenizer.from_pretrained(out)
    bos, inst, resp, easy = (sp.piece_to_id(p) for p in ("<s>", "<inst>", "<resp>", "<|easy|>"))
    texts = [" leading", "trailing ", "two  spaces", "digits 12345", "line\nbreak", "", "unknown Z", "sun sun"]
    texts += [r.get("instruction", r.get("text")) for r in records[:100]]
    for text in texts:
        # ponder encodes the instruction on its own and puts the pieces around it (data/prepare.h).
        assert tok("<|easy|><inst>" + text + "<resp>")["input_ids"] == [bos, easy, inst] + sp.encode(text) + [resp], text
        assert tok(text)["input_ids"] == [bos] + sp.encode(text), text
        if sp.unk_id() not in sp.encode(text):  # the two spell an unknown piece differently
            assert tok.decode(sp.encode(text)) == sp.decode(sp.encode(text)), text


with tempfile.TemporaryDirectory() as tmp:
    check_characters(tmp)
    check_sentencepiece(tmp)
print("ok")
