#!/usr/bin/env python3
"""The PyTorch reference for `ponder bench`: training steps of Hugging Face transformers'
HrmTextForCausalLM (or LlamaForCausalLM with --family transformer) at the same shape on the same GPU,
eager and under torch.compile, printed in ponder bench's format (tokens/s, model TFLOP/s, MFU, peak
memory; --json for one JSON object per mode).

Usage: scripts/bench_reference.py [--family hrm_text|transformer] [--mode eager|compile|both]
           [--rows 1] [--seq-len 4096] [--mask prefix_lm|causal] [--steps 10] [--warmup 3]
           [--compile-scope layers|model]
           [--hidden 1536 --layers 16 --heads 12 --head-dim 128 --ffn 4096 --vocab 65536
            --h-cycles 2 --l-cycles 3 --bp 5] [--json]
The defaults are the HRM-Text 1B shape of shared/GPU.md. A step is forward, backward, gradient
clipping at norm 1 and a fused AdamW step over bf16 parameters, on one random batch that stays on
the GPU. PrefixLM marks a random prefix of each row with token_type_ids (one sample per row: the
transformers model takes no packed cu_seqlens); the prefix is excluded from the loss.

Model FLOPs per token follow ponder's formula (train/family.cpp, shared/GPU.md): every matmul of the
forward (2 FLOPs per weight), attention scores over the full row (4·T·heads·head_dim per layer and
call), twice that again for each call with backward (bp of the H_cycles·(L_cycles+1) stack calls for
HRM-Text, all layers for Llama), and the LM head forward and backward. --bp only enters that count:
the backward depth itself is whatever the transformers model does.

Exits with status 2 and one line when torch, CUDA or the transformers model class is missing, and
with status 1 and one line when a mode runs out of GPU memory (eager mode at the default shape
with --rows 3 did on an 80 GB H100, in the cross-entropy's fp32 copy of the logits)."""
import argparse
import json
import sys
import time

CEILING_TFLOPS = 796.0  # measured bf16 cuBLAS GEMM rate of an H100 (shared/GPU.md)


def fail(message, status=2):
    print(f"bench_reference: {message}", file=sys.stderr)
    sys.exit(status)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--family", choices=["hrm_text", "transformer"], default="hrm_text")
    p.add_argument("--mode", choices=["eager", "compile", "both"], default="both")
    p.add_argument("--rows", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--mask", choices=["prefix_lm", "causal"], default="prefix_lm")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--hidden", type=int, default=1536)
    p.add_argument("--layers", type=int, default=16, help="layers per stack (HRM-Text) or in all (Llama)")
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--ffn", type=int, default=4096)
    p.add_argument("--vocab", type=int, default=65536)
    p.add_argument("--h-cycles", type=int, default=2)
    p.add_argument("--l-cycles", type=int, default=3)
    p.add_argument("--bp", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile-scope", choices=["layers", "model"], default="layers",
                   help="torch.compile each decoder layer (regional compilation: one compile shared by every layer, "
                        "minutes faster to start) or the whole model")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    for name in ("rows", "seq_len", "steps", "hidden", "layers", "heads", "head_dim", "ffn", "vocab", "h_cycles",
                 "l_cycles", "bp"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        fail(f"--warmup must be at least 0, got {args.warmup}")
    if args.family == "transformer" and args.mask != "causal":
        args.mask = "causal"  # LlamaForCausalLM attends causally only
    return args


def load_libraries(family):
    try:
        import torch
    except ImportError as e:
        fail(f"torch is not installed here ({e})")
    if not torch.cuda.is_available():
        fail("torch sees no CUDA device")
    try:
        import transformers
    except ImportError as e:
        fail(f"transformers is not installed here ({e})")
    names = {"hrm_text": ("HrmTextConfig", "HrmTextForCausalLM"), "transformer": ("LlamaConfig", "LlamaForCausalLM")}
    config_name, model_name = names[family]
    if not hasattr(transformers, model_name):
        fail(f"transformers {transformers.__version__} has no {model_name} (HRM-Text needs transformers >= 5.9)")
    return torch, transformers, getattr(transformers, config_name), getattr(transformers, model_name)


def make_config(args, config_class):
    """The keys ponder export writes (train/export.cpp)."""
    common = dict(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
                  num_attention_heads=args.heads, head_dim=args.head_dim, hidden_act="silu", rms_norm_eps=1e-5,
                  attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
                  max_position_embeddings=args.seq_len)
    if args.family == "transformer":
        return config_class(num_hidden_layers=args.layers, num_key_value_heads=args.heads, **common)
    return config_class(num_layers_per_stack=args.layers,
                        num_hidden_layers=args.layers * args.h_cycles * (args.l_cycles + 1),
                        H_cycles=args.h_cycles, L_cycles=args.l_cycles, **common)


def train_flops_per_token(args, model, torch):
    """ponder's formula, with the matmul weights counted from the model itself."""
    head = 2.0 * args.vocab * args.hidden
    linear = sum(m.weight.numel() for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head"))
    attention = 4.0 * args.seq_len * args.heads * args.head_dim * args.layers
    if args.family == "transformer":
        return 3 * (2.0 * linear + attention + head)
    calls = args.h_cycles * (args.l_cycles + 1)
    stack_call = 2.0 * linear / 2 + attention  # the H and L stacks have the same shape
    return calls * stack_call + head + 2 * args.bp * stack_call + 2 * head


def make_batch(args, torch):
    gen = torch.Generator(device="cuda").manual_seed(args.seed)
    tokens = torch.randint(0, args.vocab, (args.rows, args.seq_len), device="cuda", generator=gen)
    labels = tokens.clone()
    kwargs = {}
    if args.mask == "prefix_lm":
        prefix = torch.randint(1, args.seq_len, (args.rows,), device="cuda", generator=gen)
        in_prefix = torch.arange(args.seq_len, device="cuda")[None, :] < prefix[:, None]
        kwargs["token_type_ids"] = in_prefix.long()
        labels[in_prefix] = -100
    return tokens, labels, kwargs


def compiled(model, scope, torch):
    """The model under torch.compile: whole, or each decoder layer compiled in place (regional
    compilation: the layers share one compiled graph, since their parameters are graph inputs)."""
    if scope == "model":
        return torch.compile(model)
    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    if not layers:
        fail(f"{type(model).__name__} has no *DecoderLayer modules to compile; use --compile-scope model")
    for layer in layers:
        layer.compile()
    return model


def run_mode(args, mode, libs):
    torch, transformers, config_class, model_class = libs
    torch.manual_seed(args.seed)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    config = make_config(args, config_class)
    config._attn_implementation = "sdpa"
    model = model_class(config).to(device="cuda", dtype=torch.bfloat16)
    model.train()
    flops = train_flops_per_token(args, model, torch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    forward = compiled(model, args.compile_scope, torch) if mode == "compile" else model
    tokens, labels, kwargs = make_batch(args, torch)

    def step():
        loss = forward(input_ids=tokens, labels=labels, use_cache=False, **kwargs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / args.steps
    tokens_per_s = args.rows * args.seq_len / step_s
    mode_name = f"compile, {args.compile_scope}" if mode == "compile" else mode
    result = {"implementation": f"transformers {transformers.__version__} {model_class.__name__}", "mode": mode_name,
              "device": torch.cuda.get_device_name(), "dtype": "bf16", "rows": args.rows, "row_len": args.seq_len,
              "mask": args.mask, "parameters": sum(p.numel() for p in model.parameters()),
              "warmup_steps": args.warmup, "steps": args.steps, "step_s": step_s, "loss": float(loss),
              "tokens_per_s": tokens_per_s, "flops_per_token": flops, "tflops": flops * tokens_per_s / 1e12,
              "mfu": flops * tokens_per_s / 1e12 / CEILING_TFLOPS, "peak_bytes": torch.cuda.max_memory_allocated()}
    del model, forward, optimizer
    return result


def print_table(r):
    print(f"{r['implementation']} ({r['mode']}), {r['parameters']} parameters, {r['device']} {r['dtype']}")
    print(f"step: {r['rows'] * r['row_len']} tokens = {r['rows']} rows x {r['row_len']} tokens, {r['mask']}")
    print(f"{r['steps']} timed steps after {r['warmup_steps']} warm-up: {r['step_s']:.4f} s/step, loss {r['loss']:.4f}")
    print(f"{'tokens/s':<16} {r['tokens_per_s']:12.0f}")
    print(f"{'model TFLOP/s':<16} {r['tflops']:12.4g}   ({r['flops_per_token'] / 1e9:.4g} GFLOP/token)")
    print(f"{'MFU':<16} {100 * r['mfu']:11.1f}%   of {CEILING_TFLOPS:.0f} TFLOP/s (bf16 GEMM ceiling)")
    print(f"{'peak memory':<16} {r['peak_bytes'] / 2**30:12.2f} GiB")


def main():
    args = parse_args()
    libs = load_libraries(args.family)
    modes = ["eager", "compile"] if args.mode == "both" else [args.mode]
    torch = libs[0]
    for i, mode in enumerate(modes):
        try:
            r = run_mode(args, mode, libs)
        except torch.OutOfMemoryError:
            fail(f"out of GPU memory in {mode} mode at {args.rows} rows x {args.seq_len} tokens (try fewer --rows)", 1)
        if args.json:
            print(json.dumps(r))
        else:
            if i:
                print()
            print_table(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
