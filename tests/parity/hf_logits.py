"""Logits of a ponder export as Hugging Face transformers computes them: the export directory is
loaded with AutoModelForCausalLM (config.json picks LlamaForCausalLM or HrmTextForCausalLM) on
the GPU, in the export's dtype, with SDPA attention. For HRM-Text, token_type_ids mark each row's
prefix, which transformers then attends bidirectionally.

Usage: hf_logits.py EXPORT_DIR INPUTS.safetensors OUTPUT.safetensors
INPUTS holds tokens (i64 [rows, T]) and prefix_len (i64 [rows]); OUTPUT gets logits (f32 [rows, T, vocab]).
Exits with status 77 when transformers or a CUDA device is missing, so the caller can skip."""
import json
import os
import sys

import numpy as np
import torch

from st_io import load, save

SKIP = 77


def main():
    export_dir, inputs_path, output_path = sys.argv[1:4]
    try:
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        print(f"transformers is not installed here ({e})")
        return SKIP
    if not torch.cuda.is_available():
        print("torch sees no CUDA device")
        return SKIP
    with open(os.path.join(export_dir, "config.json")) as f:
        config = json.load(f)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[config["torch_dtype"]]
    model = AutoModelForCausalLM.from_pretrained(export_dir, dtype=dtype, attn_implementation="sdpa")
    model = model.to("cuda").eval()
    arrays, _ = load(inputs_path)
    tokens = torch.from_numpy(arrays["tokens"]).long().cuda()
    kwargs = {}
    if config["model_type"] == "hrm_text":
        prefix = torch.from_numpy(arrays["prefix_len"]).long().cuda()
        kwargs["token_type_ids"] = (torch.arange(tokens.shape[1], device="cuda")[None, :] < prefix[:, None]).long()
    with torch.no_grad():
        logits = model(input_ids=tokens, use_cache=False, **kwargs).logits
    save(output_path, {"logits": logits.float().cpu().numpy().astype(np.float32)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
