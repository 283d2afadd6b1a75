"""Checks scripts/bench_reference.py's exits without a GPU: stand-ins for torch and transformers that
report a CUDA device, and a mode that runs out of GPU memory, give one line and status 1; torch
without CUDA gives one line and status 2."""
import contextlib
import importlib.util
import io
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "bench_reference.py")


class OutOfMemoryError(RuntimeError):
    pass


def install_stand_ins(cuda_available):
    torch = types.ModuleType("torch")
    torch.OutOfMemoryError = OutOfMemoryError
    torch.cuda = types.SimpleNamespace(is_available=lambda: cuda_available)
    transformers = types.ModuleType("transformers")
    transformers.__version__ = "0-stand-in"
    transformers.HrmTextConfig = transformers.HrmTextForCausalLM = object
    sys.modules["torch"], sys.modules["transformers"] = torch, transformers


def load_script():
    spec = importlib.util.spec_from_file_location("bench_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exit_of(module, argv):
    """(status, stderr) of main() with these arguments."""
    sys.argv = ["bench_reference.py"] + argv
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            module.main()
        except SystemExit as e:
            return e.code, err.getvalue()
    return 0, err.getvalue()


install_stand_ins(cuda_available=True)
script = load_script()


def out_of_memory(args, mode, libs):
    raise OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB.")


script.run_mode = out_of_memory
status, err = exit_of(script, ["--mode", "eager", "--rows", "3"])
assert status == 1, status
assert err == "bench_reference: out of GPU memory in eager mode at 3 rows x 4096 tokens (try fewer --rows)\n", err

install_stand_ins(cuda_available=False)
status, err = exit_of(load_script(), [])
assert status == 2, status
assert err == "bench_reference: torch sees no CUDA device\n", err
print("bench_reference: exits checked")
