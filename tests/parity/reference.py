"""PyTorch reference implementations of ponder's layers, written from the formulas, reading
parameters by their HF-style names from a dict `t` (a name prefix selects one block or stack)."""
import torch
import torch.nn.functional as F


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, positions, theta):
    # As transformers' Llama: inv_freq and angles in float32, then cos/sin.
    dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None, :].to(x.dtype), emb.sin()[:, None, :].to(x.dtype)
    return x * cos + rotate_half(x) * sin


def prefix_lm_mask(cu_seqlens, prefix_len, n):
    """Token i may attend token j iff both are in one sample and (j <= i or j < the sample's prefix)."""
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for s in range(len(prefix_len)):
        a, b, p = int(cu_seqlens[s]), int(cu_seqlens[s + 1]), int(prefix_len[s])
        i = torch.arange(b - a)[:, None]
        j = torch.arange(b - a)[None, :]
        allowed[a:b, a:b] = (j <= i) | (j < p)
    return allowed


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


def attention(t, p, x, cfg, positions, mask):
    n = x.shape[0]
    h, hkv, dh = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    q = linear(t, p + "self_attn.q_proj", x).view(n, h, dh)
    k = linear(t, p + "self_attn.k_proj", x).view(n, hkv, dh)
    v = linear(t, p + "self_attn.v_proj", x).view(n, hkv, dh)
    if cfg["qk_norm"]:
        q = norm(t, p + "self_attn.q_norm", q, "rms", cfg["qk_eps"])
        k = norm(t, p + "self_attn.k_norm", k, "rms", cfg["qk_eps"])
    if cfg["theta"] > 0:
        q, k = rope(q, positions, cfg["theta"]), rope(k, positions, cfg["theta"])
    k = k.repeat_interleave(h // hkv, dim=1)
    v = v.repeat_interleave(h // hkv, dim=1)
    scores = torch.einsum("ihd,jhd->hij", q, k) / dh ** 0.5
    probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    out = torch.einsum("hij,jhd->ihd", probs, v).reshape(n, h * dh)
    if cfg["output_gate"]:
        out = torch.sigmoid(linear(t, p + "self_attn.gate_proj", x)) * out
    return linear(t, p + "self_attn.o_proj", out)


def mlp(t, p, x, cfg):
    if cfg["activation"] == "swiglu":
        hidden = F.silu(linear(t, p + "mlp.gate_proj", x)) * linear(t, p + "mlp.up_proj", x)
    else:
        hidden = F.relu(linear(t, p + "mlp.up_proj", x)).square()
    return linear(t, p + "mlp.down_proj", hidden)


def block(t, p, x, cfg, positions, mask):
    kind, eps = cfg["norm"], cfg["eps"]
    norm1 = lambda a: norm(t, p + "input_layernorm", a, kind, eps)
    norm2 = lambda a: norm(t, p + "post_attention_layernorm", a, kind, eps)
    if cfg["post_norm"]:
        h = norm1(x + attention(t, p, x, cfg, positions, mask))
        return norm2(h + mlp(t, p, h, cfg))
    h = x + attention(t, p, norm1(x), cfg, positions, mask)
    return h + mlp(t, p, norm2(h), cfg)


def block_config(meta):
    """The block configuration carried in a safetensors file's metadata."""
    return {"heads": int(meta["heads"]), "kv_heads": int(meta["kv_heads"]), "head_dim": int(meta["head_dim"]),
            "eps": float(meta["eps"]), "qk_eps": float(meta.get("qk_eps", "1e-6")), "theta": float(meta["theta"]),
            "qk_norm": meta.get("qk_norm") == "1", "output_gate": meta.get("output_gate") == "1",
            "post_norm": meta.get("post_norm") == "1", "norm": meta.get("norm", "rms"),
            "activation": meta.get("activation", "swiglu")}
