#!/usr/bin/env python3
"""The PyTorch reference for tools/bench_attention: torch's scaled_dot_product_attention on the
same packed rows and the same masks, timed the same way.

Usage: build/tools/bench_attention > bench.txt; scripts/bench_attention_reference.py bench.txt
Reads the workload (rows, row length, heads, head dim, mask, cu_seqlens, prefix_len) from the
benchmark's output, builds the dense boolean mask torch needs, and prints forward and backward
time and TFLOP/s with the benchmark's FLOP convention (visible pairs only: 4*D per pair forward,
2.5x that backward)."""
import re
import sys

import torch
import torch.nn.functional as F


def parse(path):
    text = open(path).read()
    head = re.search(r"attention (\w+), (\d+) rows x (\d+) tokens, (\d+) heads \((\d+) kv\) x (\d+)", text)
    if not head:
        sys.exit(f"{path}: not bench_attention output")
    lists = {k: [int(v) for v in re.search(rf"{k} = \[([^\]]*)\]", text).group(1).split(",") if v.strip()]
             for k in ("cu_seqlens", "prefix_len")}
    mask, rows, row_len, heads, kv, dim = head.groups()
    return mask, int(rows), int(row_len), int(heads), int(kv), int(dim), lists["cu_seqlens"], lists["prefix_len"]


def build_mask(mode, rows, row_len, cu, prefix):
    allowed = torch.zeros(rows, 1, row_len, row_len, dtype=torch.bool, device="cuda")
    pairs = 0
    for s in range(len(cu) - 1):
        a, b = cu[s], cu[s + 1]
        r, start = a // row_len, a % row_len
        n = b - a
        i = torch.arange(n, device="cuda")[:, None]
        j = torch.arange(n, device="cuda")[None, :]
        if mode == "causal":
            m = j <= i
        elif mode == "bidirectional":
            m = torch.ones(n, n, dtype=torch.bool, device="cuda")
        else:
            m = (j <= i) | (j < (prefix[s] if prefix else 0))
        allowed[r, 0, start:start + n, start:start + n] = m
        pairs += int(m.sum())
    return allowed, pairs


def time_ms(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def main():
    mode, rows, row_len, heads, kv, dim, cu, prefix = parse(sys.argv[1])
    mask, pairs = build_mask(mode, rows, row_len, cu, prefix)
    gen = torch.Generator(device="cuda").manual_seed(0)
    shape = (rows, heads, row_len, dim)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen).requires_grad_() for _ in range(3))
    do = torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen)
    fwd = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = fwd()
    both = lambda: torch.autograd.grad(fwd(), (q, k, v), do)
    t_fwd = time_ms(fwd)
    t_both = time_ms(both)
    t_bwd = t_both - t_fwd
    flop = 4.0 * dim * pairs * heads
    print(f"torch {torch.__version__} SDPA with a dense {mode} mask ({rows} x {row_len} tokens, {heads} heads x {dim})")
    print(f"{'pass':<10} {'ms':>10} {'TFLOP/s':>10}")
    print(f"{'forward':<10} {t_fwd:>10.3f} {flop / t_fwd / 1e9:>10.1f}")
    print(f"{'backward':<10} {t_bwd:>10.3f} {2.5 * flop / t_bwd / 1e9:>10.1f}")
    del out


if __name__ == "__main__":
    main()
