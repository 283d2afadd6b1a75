"""PyTorch reference for ponder's Attractor model (models::Attractor, arXiv 2605.12466 "Solve the
Loop") on a packed batch, written from the paper's equations as src/models/attractor/attractor.h
states them (the authors' code defines the same map):

  c       = Backbone(embed(tokens))                  pre-norm blocks + exit RMSNorm: the proposal
  H(x)    = x + Σ γ-gated branches of the head's pre-norm blocks, in order
            (x ← x + γ_attn ⊙ Attn(norm1(x)); x ← x + γ_mlp ⊙ MLP(norm2(x))), γ = γ_max·sigmoid(raw)
  f(y, c) = H(y + c) − y,   y* = f(y*, c)            (solved from y0 = c)
  logits  = (rms(y*)·logit_scale) · embed_tokensᵀ    (parameter-free RMSNorm, tied head)

Everything runs in float64. The forward is plain Picard iteration to a relative residual below
1e-13. Gradients come from the implicit function theorem: with v = ∂L/∂y* and J = ∂f/∂y at y*,
the adjoint u = (I − Jᵀ)⁻¹v is found by iterating u ← v + Jᵀu (to 1e-13), and u is pulled back
through one application of f(y*, c) to c (hence the backbone and embedding) and to the head's
parameters. As an independent check the script also back-propagates through the unrolled
iteration from y0 = c (it must agree to 1e-8) and exits non-zero otherwise.

backward "onestep" instead gives the C++'s first-order Neumann adjoint u = v + Jᵀv (Jᵀv scaled,
per batch row, to at most adjoint_clip·‖v‖ when adjoint_clip > 0); that is an approximation of
the implicit gradient by design, so it is compared only with ponder's own onestep mode.

Usage: attractor.py INPUTS.safetensors OUTPUT.safetensors
Reads tokens, positions, labels, cu_seqlens, prefix_len (absent: causal) and every parameter;
writes the logits, the summed loss and "grad.<name>" for every parameter, in float32."""
import sys

import torch
import torch.nn.functional as F

from reference import attention, block_config, mlp, norm, prefix_lm_mask
from st_io import load, save

BATCH_KEYS = {"tokens", "positions", "labels", "cu_seqlens", "prefix_len"}
SOLVE_TOL = 1e-13


def relative(a, b):
    return float((a - b).norm() / b.norm())


def stack(t, p, x, blocks, cfg, positions, mask, gates=None, gamma_max=1.0):
    """Pre-norm blocks; with gates, each branch is scaled by γ = γ_max·sigmoid(raw) first."""
    gamma = lambda kind, i: torch.sigmoid(t[f"{gates}.{kind}_gates.{i}.raw"]) * gamma_max if gates else 1.0
    for i in range(blocks):
        q = f"{p}.layers.{i}."
        branch = attention(t, q, norm(t, q + "input_layernorm", x, "rms", cfg["eps"]), cfg, positions, mask)
        x = x + gamma("attn", i) * branch
        branch = mlp(t, q, norm(t, q + "post_attention_layernorm", x, "rms", cfg["eps"]), cfg)
        x = x + gamma("mlp", i) * branch
    return x


def picard(step, x0, tol, what):
    x = x0
    for iteration in range(1, 2001):
        nxt = step(x)
        if relative(nxt, x) < tol:
            return nxt, iteration
        x = nxt
    raise SystemExit(f"{what} did not converge to {tol} in 2000 iterations")


def main():
    arrays, meta = load(sys.argv[1])
    cfg = block_config(meta)
    n_backbone, n_fp = int(meta["n_backbone_layers"]), int(meta["n_fp_blocks"])
    gamma_max, logit_scale, eps = float(meta["gamma_max"]), float(meta["logit_scale"]), cfg["eps"]
    mode, clip, rows = meta["backward"], float(meta["adjoint_clip"]), int(meta["rows"])
    t = {k: torch.from_numpy(v).double() if k not in BATCH_KEYS else torch.from_numpy(v) for k, v in arrays.items()}
    params = [k for k in t if k not in BATCH_KEYS]
    for k in params:
        t[k].requires_grad_(True)
    tokens, positions, labels = t["tokens"].long(), t["positions"].long(), t["labels"].long()
    prefix = t.get("prefix_len", torch.zeros(len(t["cu_seqlens"]) - 1, dtype=torch.int32))
    mask = prefix_lm_mask(t["cu_seqlens"], prefix, tokens.shape[0])
    embed = t["model.embed_tokens.weight"]

    def proposal():
        x = stack(t, "model.backbone", embed[tokens], n_backbone, cfg, positions, mask)
        return norm(t, "model.backbone.norm", x, "rms", eps)

    def f(y, c):
        return stack(t, "model.fp_head.blocks", y + c, n_fp, cfg, positions, mask, "model.fp_head", gamma_max) - y

    def loss_of(y):
        logits = (norm({}, "", y, "rms", eps) * logit_scale) @ embed.T
        return logits, F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")

    c = proposal()
    with torch.no_grad():
        y_star, iterations = picard(lambda y: f(y, c), c.detach(), SOLVE_TOL, "forward solve")

    # Implicit differentiation through one retained application of f at y*.
    y_in = y_star.clone().requires_grad_(True)
    y_out = f(y_in, c)
    logits, loss = loss_of(y_out)
    (v,) = torch.autograd.grad(loss, y_out, retain_graph=True)
    vjp = lambda u: torch.autograd.grad(y_out, y_in, u, retain_graph=True)[0]
    if mode == "onestep":
        jv = vjp(v)
        if clip > 0:
            per_row = lambda x: x.reshape(rows, -1).norm(dim=1)
            scale = torch.clamp(clip * per_row(v) / per_row(jv), max=1.0)
            jv = (jv.reshape(rows, -1) * scale[:, None]).reshape(jv.shape)
        u = v + jv
    else:
        u, _ = picard(lambda u: v + vjp(u), v, SOLVE_TOL, "adjoint solve")
    # ∂L/∂θ = its direct part (the tied head) + uᵀ·∂f/∂θ: v already flows through y_out, add u − v.
    torch.autograd.backward([loss, y_out], [None, u - v])
    grads = {k: t[k].grad.clone() if t[k].grad is not None else torch.zeros_like(t[k]) for k in params}

    # The independent check: the gradient of the loss after the unrolled iteration.
    if mode != "onestep":
        for k in params:
            t[k].grad = None
        c = proposal()
        y = c.detach()
        for _ in range(iterations + 40):
            y = f(y, c)
        _, unrolled_loss = loss_of(y)
        unrolled_loss.backward()
        unrolled = {k: t[k].grad if t[k].grad is not None else torch.zeros_like(t[k]) for k in params}
        worst = max(relative(unrolled[k], grads[k]) if grads[k].any() else float(unrolled[k].norm()) for k in params)
        print(f"attractor.py: {iterations} forward iterations; unrolled vs implicit gradient: {worst:.1e}")
        if not worst < 1e-8:
            raise SystemExit("the implicit gradient disagrees with back-propagation through the unrolled solve")

    result = {"logits": logits.detach().float().numpy(), "loss": loss.detach().reshape(1).float().numpy()}
    result.update({"grad." + k: g.float().numpy() for k, g in grads.items()})
    save(sys.argv[2], result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
