"""PyTorch reference for ponder's Llama-style baseline (models::Transformer) on a packed batch:
embedding, pre-norm blocks, final RMSNorm, LM head (or tied embeddings), summed cross-entropy over
the labels that are not -100.

Usage: transformer.py INPUTS.safetensors OUTPUT.safetensors
Reads tokens, positions, labels, cu_seqlens, prefix_len and every parameter (LlamaForCausalLM
names); writes the logits, the loss and "grad.<name>" for every parameter."""
import sys

import torch
import torch.nn.functional as F

from reference import block, block_config, linear, norm, prefix_lm_mask
from st_io import load, save


def main():
    arrays, meta = load(sys.argv[1])
    cfg = block_config(meta)
    layers, tied = int(meta["layers"]), meta["tie_embeddings"] == "1"
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    params = [k for k in t if k.endswith(".weight")]
    for k in params:
        t[k].requires_grad_(True)
    tokens, positions = t["tokens"].long(), t["positions"].long()
    mask = prefix_lm_mask(t["cu_seqlens"], t["prefix_len"], tokens.shape[0])
    x = t["model.embed_tokens.weight"][tokens]
    for i in range(layers):
        x = block(t, f"model.layers.{i}.", x, cfg, positions, mask)
    x = norm(t, "model.norm", x, "rms", cfg["eps"])
    logits = x @ t["model.embed_tokens.weight"].T if tied else linear(t, "lm_head", x)
    loss = F.cross_entropy(logits, t["labels"].long(), ignore_index=-100, reduction="sum")
    loss.backward()
    result = {"logits": logits.detach().numpy(), "loss": loss.detach().reshape(1).numpy()}
    result.update({"grad." + k: t[k].grad.numpy() for k in params})
    save(sys.argv[2], result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
