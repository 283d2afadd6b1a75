"""PyTorch reference for ponder's State Stream Transformer v2 (models::Sst) training forward on a
packed batch, written from the recurrence of arXiv 2605.00206 as src/models/sst/sst.h states it.
Each layer l keeps a latent state that streams from one position to the next within a sample:

  a_t  = h_t + Attn(norm1(h_t))                   (attention reads only the layer's inputs)
  α_l  = α_min + (α_max − α_min)·sigmoid(blend_theta[l])
  b_t  = (1 − α_l)·a_t + α_l·s_{t−1},  s_{−1} = 0 at every sample start
  m_t  = FFN(norm2(b_t)),  h'_t = b_t + m_t,  s_t = m_t (or h'_t with state_is_output)

mode "sequential" runs that recurrence position by position. mode "two_pass" is the parallel
training procedure: pass 1 evaluates the layer with α = 0 and no gradient, s⁰_t = FFN(norm2(a_t))
(+ a_t with state_is_output); the states are streamed by the scan ŝ_t = (1 − α)·s⁰_t + α·ŝ_{t−1}
(restarting at zero in each sample; α keeps its gradient through it); pass 2 is the blend above
with ŝ_{t−1} in place of s_{t−1}, then the FFN with gradient.

Choices that follow the C++ (not fixed by the equations alone): the norm before the FFN is the
block's post_attention_layernorm applied to the blend b (so the blend sits inside the residual
stream, before the norm); the scan weighs s⁰ by (1 − α); a sample starts where cu_seqlens says
(padding is a sample of its own); the model ends with the final RMSNorm and the LM head.

LoRA (PEFT's scheme): an adapted projection computes x·Wᵀ + (lora_alpha/rank)·x·Aᵀ·Bᵀ; here as
the one product with W + scale·B·A, and its base W gets no gradient. freeze_backbone leaves only
blend_theta and the adapters trainable; frozen parameters get an all-zero "grad.<name>".

Usage: sst.py INPUTS.safetensors OUTPUT.safetensors
Reads tokens, positions, labels, cu_seqlens, prefix_len and every parameter; writes the logits,
the summed loss and "grad.<name>" for every parameter (computed in float64, written in float32)."""
import sys

import torch
import torch.nn.functional as F

from reference import attention, block_config, linear, mlp, norm, prefix_lm_mask
from st_io import load, save

BATCH_KEYS = {"tokens", "positions", "labels", "cu_seqlens", "prefix_len"}


def scan(x, alpha, bounds):
    """ŝ_t = (1 − α)·x_t + α·ŝ_{t−1}, from zero at each sample start."""
    out = []
    for begin, end in bounds:
        s = torch.zeros_like(x[0])
        for i in range(begin, end):
            s = (1 - alpha) * x[i] + alpha * s
            out.append(s)
    return torch.stack(out)


def previous_states(states, bounds):
    """s_{t−1} for every position, zero at each sample start."""
    rows = []
    for begin, end in bounds:
        rows.append(torch.zeros_like(states[0])[None])
        rows.append(states[begin:end - 1])
    return torch.cat(rows)


def layer(t, p, h, alpha, cfg, positions, mask, bounds, mode, state_is_output):
    a = h + attention(t, p, norm(t, p + "input_layernorm", h, "rms", cfg["eps"]), cfg, positions, mask)
    ffn = lambda b: mlp(t, p, norm(t, p + "post_attention_layernorm", b, "rms", cfg["eps"]), cfg)
    if mode == "sequential":
        outputs = []
        for begin, end in bounds:
            s = torch.zeros_like(a[0])
            for i in range(begin, end):
                b = (1 - alpha) * a[i] + alpha * s
                m = ffn(b[None])[0]
                outputs.append(b + m)
                s = b + m if state_is_output else m
        return torch.stack(outputs)
    with torch.no_grad():  # pass 1: the layer with α = 0
        m0 = ffn(a)
        first = a + m0 if state_is_output else m0
    streamed = scan(first, alpha, bounds)
    b = (1 - alpha) * a + alpha * previous_states(streamed, bounds)  # pass 2
    return b + ffn(b)


def main():
    arrays, meta = load(sys.argv[1])
    cfg = block_config(meta)
    layers, tied = int(meta["layers"]), meta["tie_embeddings"] == "1"
    alpha_min, alpha_max = float(meta["alpha_min"]), float(meta["alpha_max"])
    mode, state_is_output = meta["mode"], meta["state_is_output"] == "1"
    freeze_backbone, lora_scale = meta["freeze_backbone"] == "1", float(meta["lora_scale"])
    # float64, so that the comparison measures ponder's f32 rounding alone.
    t = {k: torch.from_numpy(v) if k in BATCH_KEYS else torch.from_numpy(v).double() for k, v in arrays.items()}
    params = [k for k in t if k not in BATCH_KEYS]
    adapted = {k[:-len(".lora_A.weight")] for k in params if k.endswith(".lora_A.weight")}

    def trainable(name):
        if name == "blend_theta" or ".lora_A." in name or ".lora_B." in name:
            return True
        return not freeze_backbone and name[:-len(".weight")] not in adapted

    for k in params:
        t[k].requires_grad_(trainable(k))
    # The forward reads adapted projections through their effective weight W + scale·B·A.
    w = dict(t)
    for name in adapted:
        w[name + ".weight"] = t[name + ".weight"] + lora_scale * t[name + ".lora_B.weight"] @ t[name + ".lora_A.weight"]

    tokens, positions = t["tokens"].long(), t["positions"].long()
    cu = [int(x) for x in t["cu_seqlens"]]
    bounds = [(cu[i], cu[i + 1]) for i in range(len(cu) - 1) if cu[i + 1] > cu[i]]
    prefix = t.get("prefix_len", torch.zeros(len(cu) - 1, dtype=torch.int32))
    mask = prefix_lm_mask(t["cu_seqlens"], prefix, tokens.shape[0])

    h = w["model.embed_tokens.weight"][tokens]
    for i in range(layers):
        alpha = alpha_min + (alpha_max - alpha_min) * torch.sigmoid(t["blend_theta"][i])
        h = layer(w, f"model.layers.{i}.", h, alpha, cfg, positions, mask, bounds, mode, state_is_output)
    h = norm(w, "model.norm", h, "rms", cfg["eps"])
    logits = h @ w["model.embed_tokens.weight"].T if tied else linear(w, "lm_head", h)
    loss = F.cross_entropy(logits, t["labels"].long(), ignore_index=-100, reduction="sum")
    loss.backward()
    result = {"logits": logits.detach().float().numpy(), "loss": loss.detach().reshape(1).float().numpy()}
    for k in params:
        grad = t[k].grad if t[k].grad is not None else torch.zeros_like(t[k])
        result["grad." + k] = grad.float().numpy()
    save(sys.argv[2], result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
