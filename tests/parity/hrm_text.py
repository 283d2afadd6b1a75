"""PyTorch reference for ponder's HRM-Text (models::HrmText) on a packed batch, written from the
paper's recurrence: z_H = embed·scale, z_L = z_L_init; per H cycle, L_cycles times
z_L = L_module(z_L + z_H), then z_H = H_module(z_H + z_L); logits = lm_head(z_H). Each module is a
stack of pre-norm blocks with a parameter-free exit RMSNorm. Only the last `bp` calls record
gradients: H_bp = min(H, bp - 1) trailing H calls and L_bp = bp - H_bp trailing L calls.

Usage: hrm_text.py INPUTS.safetensors OUTPUT.safetensors
Reads tokens, positions, labels, cu_seqlens, prefix_len, z_L_init and every parameter
(HrmTextForCausalLM names); writes the logits, the summed loss and "grad.<name>" for every
parameter (zeros where no recorded call reaches it)."""
import contextlib
import sys

import torch
import torch.nn.functional as F

from reference import block, block_config, linear, norm, prefix_lm_mask
from st_io import load, save


def stack(t, name, x, layers, cfg, positions, mask):
    for i in range(layers):
        x = block(t, f"{name}.layers.{i}.", x, cfg, positions, mask)
    return norm(t, name + ".norm", x, "rms", cfg["eps"])


def main():
    arrays, meta = load(sys.argv[1])
    cfg = block_config(meta)
    layers, h_cycles, l_cycles = int(meta["layers_per_stack"]), int(meta["H_cycles"]), int(meta["L_cycles"])
    bp, scale = int(meta["bp"]), float(meta["embedding_scale"])
    h_bp = min(h_cycles, bp - 1)
    l_bp = bp - h_bp
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    params = [k for k in t if k.endswith(".weight")]
    for k in params:
        t[k].requires_grad_(True)
    tokens, positions = t["tokens"].long(), t["positions"].long()
    mask = prefix_lm_mask(t["cu_seqlens"], t["prefix_len"], tokens.shape[0])
    run = lambda name, x: stack(t, name, x, layers, cfg, positions, mask)
    grad_if = lambda records: contextlib.nullcontext() if records else torch.no_grad()

    z_h = t["model.embed_tokens.weight"][tokens] * scale
    z_l = t["model.z_L_init"]
    for h in range(h_cycles):
        for l in range(l_cycles):
            with grad_if(h * l_cycles + l >= h_cycles * l_cycles - l_bp):
                z_l = run("model.L_module", z_l + z_h)
        with grad_if(h >= h_cycles - h_bp):
            z_h = run("model.H_module", z_h + z_l)
    logits = linear(t, "lm_head", z_h)
    loss = F.cross_entropy(logits, t["labels"].long(), ignore_index=-100, reduction="sum")
    loss.backward()
    result = {"logits": logits.detach().numpy(), "loss": loss.detach().reshape(1).numpy()}
    for k in params:
        grad = t[k].grad if t[k].grad is not None else torch.zeros_like(t[k])
        result["grad." + k] = grad.numpy()
    save(sys.argv[2], result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
