"""PyTorch reference trajectory of torch.optim.AdamW, torch.optim.SGD or Muon (CPU, float32).

Usage: optim_trajectory.py INPUTS.safetensors OUTPUT.safetensors
Reads the initial parameters param.K, the gradients grad.S.K of every step S (a missing entry
means the parameter has no gradient at that step) and the hyperparameters from the metadata:
optimizer (adamw | sgd | muon), steps, lr.S (base learning rate of step S), lr_scale.K and wd.K
(each parameter is its own group), beta1, beta2, eps (adamw), momentum, dampening, nesterov (sgd),
momentum, nesterov, ns_steps (muon). Writes param.S.K, the parameters after every step."""
import sys

import numpy as np
import torch

from st_io import load, save


def newton_schulz(g, steps):
    """Quintic Newton-Schulz orthogonalisation with Keller Jordan's coefficients."""
    a, b, c = 3.4445, -4.7750, 2.0315
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        A = x @ x.T
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon for 2-D parameters: buf = momentum*buf + grad, u = grad + momentum*buf (Nesterov) or buf,
    p = p*(1 - lr*wd) - lr*sqrt(max(1, rows/cols))*newton_schulz(u)."""

    def __init__(self, params, momentum, nesterov, ns_steps):
        super().__init__(params, dict(lr=1.0, weight_decay=0.0))
        self.momentum, self.nesterov, self.ns_steps = momentum, nesterov, ns_steps

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(self.momentum).add_(p.grad)
                u = p.grad.add(buf, alpha=self.momentum) if self.nesterov else buf
                scale = max(1.0, p.shape[0] / p.shape[1]) ** 0.5
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(newton_schulz(u, self.ns_steps), alpha=-group["lr"] * scale)


def make_optimizer(meta, groups):
    if meta["optimizer"] == "muon":
        return Muon(groups, float(meta["momentum"]), meta["nesterov"] == "1", int(meta["ns_steps"]))
    if meta["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, betas=(float(meta["beta1"]), float(meta["beta2"])),
                                 eps=float(meta["eps"]), foreach=False)
    return torch.optim.SGD(groups, lr=1.0, momentum=float(meta["momentum"]),
                           dampening=float(meta["dampening"]), nesterov=meta["nesterov"] == "1", foreach=False)


def main(inputs, output):
    tensors, meta = load(inputs)
    count = sum(1 for k in tensors if k.startswith("param."))
    params = [torch.tensor(tensors[f"param.{k}"], requires_grad=True) for k in range(count)]
    scales = [float(meta[f"lr_scale.{k}"]) for k in range(count)]
    groups = [{"params": [p], "weight_decay": float(meta[f"wd.{k}"]), "lr": 1.0} for k, p in enumerate(params)]
    opt = make_optimizer(meta, groups)
    out = {}
    for s in range(int(meta["steps"])):
        for k, (group, p) in enumerate(zip(opt.param_groups, params)):
            group["lr"] = float(meta[f"lr.{s}"]) * scales[k]
            g = tensors.get(f"grad.{s}.{k}")
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
        for k, p in enumerate(params):
            out[f"param.{s}.{k}"] = p.detach().numpy().astype(np.float32)
    save(output, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
