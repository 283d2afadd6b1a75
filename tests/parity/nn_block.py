"""PyTorch reference for one transformer block over packed samples (ponder::nn::TransformerBlock,
or the same block composed from ops): attention (GQA, optional QK-norm before RoPE, optional sigmoid
output gate) and an MLP (SwiGLU or ReLU^2), RMSNorm or LayerNorm, pre- or post-norm, PrefixLM mask.

Usage: nn_block.py INPUTS.safetensors OUTPUT.safetensors
Reads x, the upstream gradient r, positions, cu_seqlens, prefix_len and every parameter (HF-style
names); the metadata holds the config. Writes the block output and the gradients of sum(out * r)
with respect to x and every parameter ("grad.<name>")."""
import sys

import torch

from reference import block, block_config, prefix_lm_mask
from st_io import load, save


def main():
    arrays, meta = load(sys.argv[1])
    cfg = block_config(meta)
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    params = [k for k in t if k.endswith(".weight") or k.endswith(".bias")] + ["x"]
    for k in params:
        t[k].requires_grad_(True)
    mask = prefix_lm_mask(t["cu_seqlens"], t["prefix_len"], t["x"].shape[0])
    out = block(t, "", t["x"], cfg, t["positions"], mask)
    (out * t["r"]).sum().backward()
    result = {"out": out.detach().numpy()}
    result.update({"grad." + k: t[k].grad.numpy() for k in params})
    save(sys.argv[2], result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
