"""PyTorch reference for one Llama-style block over packed samples: RMSNorm, attention with RoPE
(rotate-half), a PrefixLM mask and a sigmoid output gate, then a SwiGLU MLP.

Usage: llama_block.py INPUTS.safetensors OUTPUT.safetensors
Reads x, the parameters, positions, cu_seqlens, prefix_len and the upstream gradient r; writes the
block output and the gradients of sum(out * r) with respect to x and every parameter."""
import sys

import numpy as np
import torch

from st_io import load, save


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, positions, theta):
    # As transformers' Llama: inv_freq and angles in float32, then cos/sin.
    dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    return x * cos + rotate_half(x) * sin


def prefix_lm_mask(cu_seqlens, prefix_len, n):
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for s in range(len(prefix_len)):
        a, b, p = int(cu_seqlens[s]), int(cu_seqlens[s + 1]), int(prefix_len[s])
        i = torch.arange(b - a)[:, None]
        j = torch.arange(b - a)[None, :]
        allowed[a:b, a:b] = (j <= i) | (j < p)
    return allowed


def block(t, cfg):
    n, d = t["x"].shape
    h, hkv = cfg["heads"], cfg["kv_heads"]
    dh = d // h
    x = t["x"]
    lin = lambda a, w: a @ w.T
    hn = rms_norm(x, t["norm1.weight"], cfg["eps"])
    q = lin(hn, t["q_proj.weight"]).view(n, h, dh)
    k = lin(hn, t["k_proj.weight"]).view(n, hkv, dh)
    v = lin(hn, t["v_proj.weight"]).view(n, hkv, dh)
    q, k = rope(q, t["positions"], cfg["theta"]), rope(k, t["positions"], cfg["theta"])
    k = k.repeat_interleave(h // hkv, dim=1)
    v = v.repeat_interleave(h // hkv, dim=1)
    scores = torch.einsum("ihd,jhd->hij", q, k) / dh ** 0.5
    mask = prefix_lm_mask(t["cu_seqlens"], t["prefix_len"], n)
    probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    attn = torch.einsum("hij,jhd->ihd", probs, v).reshape(n, d)
    attn = torch.sigmoid(lin(hn, t["gate_proj.weight"])) * attn
    x = x + lin(attn, t["o_proj.weight"])
    hn2 = rms_norm(x, t["norm2.weight"], cfg["eps"])
    mlp = lin(torch.nn.functional.silu(lin(hn2, t["mlp.gate_proj.weight"])) * lin(hn2, t["mlp.up_proj.weight"]),
              t["mlp.down_proj.weight"])
    return x + mlp


def main():
    arrays, meta = load(sys.argv[1])
    cfg = {"heads": int(meta["heads"]), "kv_heads": int(meta["kv_heads"]),
           "eps": float(meta["eps"]), "theta": float(meta["theta"])}
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    params = [k for k in t if k.endswith(".weight")] + ["x"]
    for k in params:
        t[k].requires_grad_(True)
    out = block(t, cfg)
    (out * t["r"]).sum().backward()
    result = {"out": out.detach().numpy()}
    result.update({"grad." + k: t[k].grad.numpy() for k in params})
    save(sys.argv[2], result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
