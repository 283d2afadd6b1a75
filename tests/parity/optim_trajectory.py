"""PyTorch reference trajectory of torch.optim.AdamW or torch.optim.SGD (CPU, float32).

Usage: optim_trajectory.py INPUTS.safetensors OUTPUT.safetensors
Reads the initial parameters param.K, the gradients grad.S.K of every step S (a missing entry
means the parameter has no gradient at that step) and the hyperparameters from the metadata:
optimizer (adamw | sgd), steps, lr.S (base learning rate of step S), lr_scale.K and wd.K (each
parameter is its own group), beta1, beta2, eps (adamw), momentum, dampening, nesterov (sgd).
Writes param.S.K, the parameters after every step."""
import sys

import numpy as np
import torch

from st_io import load, save


def make_optimizer(meta, groups):
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
