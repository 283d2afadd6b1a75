#!/usr/bin/env python3
"""Check a ponder export against Hugging Face transformers: greedy generation token for token.

Usage: scripts/hf_check.py MODEL_DIR [--prompts FILE] [--max-new-tokens N] [--device cpu|cuda]
                           [--ponder build/ponder]

MODEL_DIR is what `ponder export` wrote. transformers loads it with AutoModelForCausalLM and
AutoTokenizer (HrmTextForCausalLM needs transformers >= 5.9), reads every prompt in ponder's layout
(<inst> + prompt + <resp> after bos; for HRM-Text with token_type_ids = 1 over the prompt, its
bidirectional PrefixLM prefix) and continues it with greedy `generate`. `ponder generate --file`
does the same from the same directory. The script prints a table and exits with 1 when any prompt's
ids or generated tokens differ, 2 when it cannot run the comparison.

FILE holds one {"prompt": TEXT} object per line, as `ponder generate --file` reads; by default a
few short prompts are used."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

DEFAULT_PROMPTS = ["reverse:1234567", "sort:5,3,9,1", "2+2=", "hello world"]


def fail(message):
    print(f"hf_check: {message}", file=sys.stderr)
    sys.exit(2)


def read_prompts(path):
    if path is None:
        return DEFAULT_PROMPTS
    prompts = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    prompts.append(json.loads(line)["prompt"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    fail(f'{path}:{number}: expected {{"prompt": TEXT}}')
    return prompts


def ponder_generate(ponder, model_dir, prompts, max_new_tokens, device):
    """ponder's prompt ids and greedy completion ids for every prompt."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    try:
        r = subprocess.run([ponder, "generate", model_dir, "--file", f.name, "--ids", "--device", device,
                            "--max-new-tokens", str(max_new_tokens)], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        fail(f"ponder generate failed (exit {r.returncode}): {r.stderr.strip()}")
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return [(rec["prompt_ids"], rec["completion_ids"]) for rec in records]


class Transformers:
    """The export as transformers loads it."""

    def __init__(self, model_dir, device):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with open(os.path.join(model_dir, "config.json")) as f:
            self.config = json.load(f)
        self.hrm_text = self.config["model_type"] == "hrm_text"
        if self.config.get("prefix_lm") and not self.hrm_text:
            fail("this baseline was trained with PrefixLM prompts, which LlamaForCausalLM cannot attend; "
                 "only a baseline trained with data.mask: causal generates the same in transformers")
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[self.config["torch_dtype"]]
        self.torch = torch
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        with open(os.path.join(model_dir, "tokenizer_config.json")) as f:
            self.inst, self.resp = json.load(f)["additional_special_tokens"][:2]  # as ponder writes them
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()

    def prompt_ids(self, prompt):
        return self.tokenizer(self.inst + prompt + self.resp)["input_ids"]

    def generate(self, prompt_ids, max_new_tokens):
        """Greedy continuation of prompt_ids, up to (not including) eos."""
        torch = self.torch
        ids = torch.tensor([prompt_ids], device=self.device)
        kwargs = {}
        if self.hrm_text and self.config.get("prefix_lm"):
            kwargs["token_type_ids"] = torch.ones_like(ids)
        # ponder stops at the context it was trained on.
        room = min(max_new_tokens, self.config["max_position_embeddings"] - len(prompt_ids))
        eos = self.config["eos_token_id"]
        with torch.no_grad():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=room, min_new_tokens=0,
                                      do_sample=False, eos_token_id=eos, pad_token_id=self.config["pad_token_id"],
                                      **kwargs)
        tokens = out[0, len(prompt_ids):].tolist()
        return tokens[:tokens.index(eos)] if eos in tokens else tokens


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="a directory written by ponder export")
    parser.add_argument("--prompts", help='JSONL file of {"prompt": TEXT} lines')
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when torch sees one")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--ponder", default=os.path.join(root, "build", "ponder"), help="the ponder binary")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.model_dir, "config.json")):
        fail(f"{args.model_dir} holds no config.json (not an export directory)")
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        fail(f"needs torch and transformers ({e})")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    prompts = read_prompts(args.prompts)

    hf = Transformers(args.model_dir, device)
    ours = ponder_generate(args.ponder, args.model_dir, prompts, args.max_new_tokens, device)
    print(f"{'#':>3}  {'prompt':<24} {'ids':<5} {'ponder':>6} {'hf':>6}  result")
    mismatches = 0
    for i, (prompt, (prompt_ids, completion)) in enumerate(zip(prompts, ours)):
        same_ids = hf.prompt_ids(prompt) == prompt_ids
        theirs = hf.generate(prompt_ids, args.max_new_tokens)
        diff = first_difference(completion, theirs)
        ok = same_ids and diff is None
        mismatches += not ok
        result = "same" if ok else ("prompt ids differ" if not same_ids else f"differ from token {diff}")
        shown = prompt if len(prompt) <= 24 else prompt[:21] + "..."
        print(f"{i:>3}  {shown:<24} {'ok' if same_ids else 'DIFF':<5} {len(completion):>6} {len(theirs):>6}  {result}")
    print(f"{len(prompts) - mismatches} of {len(prompts)} prompts generate the same tokens in ponder and transformers "
          f"({device})")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
