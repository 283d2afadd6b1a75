"""PyTorch reference for ponder::nn::TransformerBlock over packed samples, from its HF-style
parameter names: attention (GQA, optional QK-norm before RoPE, optional sigmoid output gate) and an MLP
(SwiGLU or ReLU^2), with RMSNorm or LayerNorm, pre- or post-norm, and a PrefixLM mask.

Usage: nn_block.py INPUTS.safetensors OUTPUT.safetensors
Reads x, the upstream gradient r, positions, cu_seqlens, prefix_len and every parameter (named as in
the block's state_dict); the metadata holds the config. Writes the block output and the gradients of
sum(out * r) with respect to x and every parameter ("grad.<name>")."""
import sys

import torch
import torch.nn.functional as F

from llama_block import prefix_lm_mask, rope
from st_io import load, save


def linear(t, name, a):
    y = a @ t[name + ".weight"].T
    bias = t.get(name + ".bias")
    return y if bias is None else y + bias


def norm(t, name, x, kind, eps):
    w, b = t.get(name + ".weight"), t.get(name + ".bias")
    if kind == "rms":
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y if w is None else y * w
    return F.layer_norm(x, x.shape[-1:], w, b, eps)


def attention(t, x, cfg):
    n = x.shape[0]
    h, hkv, dh = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    q = linear(t, "self_attn.q_proj", x).view(n, h, dh)
    k = linear(t, "self_attn.k_proj", x).view(n, hkv, dh)
    v = linear(t, "self_attn.v_proj", x).view(n, hkv, dh)
    if cfg["qk_norm"]:
        q = norm(t, "self_attn.q_norm", q, "rms", cfg["qk_eps"])
        k = norm(t, "self_attn.k_norm", k, "rms", cfg["qk_eps"])
    if cfg["theta"] > 0:
        q, k = rope(q, t["positions"], cfg["theta"]), rope(k, t["positions"], cfg["theta"])
    k = k.repeat_interleave(h // hkv, dim=1)
    v = v.repeat_interleave(h // hkv, dim=1)
    scores = torch.einsum("ihd,jhd->hij", q, k) / dh ** 0.5
    mask = prefix_lm_mask(t["cu_seqlens"], t["prefix_len"], n)
    probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    out = torch.einsum("hij,jhd->ihd", probs, v).reshape(n, h * dh)
    if cfg["output_gate"]:
        out = torch.sigmoid(linear(t, "self_attn.gate_proj", x)) * out
    return linear(t, "self_attn.o_proj", out)


def mlp(t, x, cfg):
    if cfg["activation"] == "swiglu":
        hidden = F.silu(linear(t, "mlp.gate_proj", x)) * linear(t, "mlp.up_proj", x)
    else:
        hidden = F.relu(linear(t, "mlp.up_proj", x)).square()
    return linear(t, "mlp.down_proj", hidden)


def block(t, cfg):
    x, kind, eps = t["x"], cfg["norm"], cfg["eps"]
    norm1 = lambda a: norm(t, "input_layernorm", a, kind, eps)
    norm2 = lambda a: norm(t, "post_attention_layernorm", a, kind, eps)
    if cfg["post_norm"]:
        h = norm1(x + attention(t, x, cfg))
        return norm2(h + mlp(t, h, cfg))
    h = x + attention(t, norm1(x), cfg)
    return h + mlp(t, norm2(h), cfg)


def main():
    arrays, meta = load(sys.argv[1])
    cfg = {"heads": int(meta["heads"]), "kv_heads": int(meta["kv_heads"]), "head_dim": int(meta["head_dim"]),
           "eps": float(meta["eps"]), "qk_eps": float(meta["qk_eps"]), "theta": float(meta["theta"]),
           "qk_norm": meta["qk_norm"] == "1", "output_gate": meta["output_gate"] == "1",
           "post_norm": meta["post_norm"] == "1", "norm": meta["norm"], "activation": meta["activation"]}
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    params = [k for k in t if k.endswith(".weight") or k.endswith(".bias")] + ["x"]
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
