#!/usr/bin/env python3
"""Checks and times libtilewise_cuda's attention against PyTorch's SDPA backends on one GPU.

For every case (dtype x head dim x sequence length x causal):
  1. correctness on fresh random inputs: Tilewise's output (poisoned with NaN first, so every
     element must be written) against an fp32 reference (SDPA's efficient backend on upcast
     inputs), ||out - ref|| / ||ref|| within fp16/bf16 limits;
  2. timing with CUDA events after warm-up, median of many runs, for Tilewise (each tile
     configuration) and PyTorch's flash and cuDNN backends, on sizes that fill the chip;
and prints one line per (case, implementation):
  cuda-attention impl=<name> dtype=<t> B= H= N= D= causal= ms=<median> tflops=<x>

Usage: bench_attention.py <path to libtilewise_cuda.so> [--quick] [--configs=0,2] [--sizes=1024,4096]
"""
import ctypes
import math
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

TW_F16, TW_BF16 = 1, 2


class Params(ctypes.Structure):
    """Mirror of tw_cuda_attention_params (tilewise_cuda.h)."""

    _fields_ = [
        ("dtype", ctypes.c_int),
        ("batch", ctypes.c_int64), ("q_heads", ctypes.c_int64), ("kv_heads", ctypes.c_int64),
        ("q_len", ctypes.c_int64), ("kv_len", ctypes.c_int64), ("head_dim", ctypes.c_int64),
        ("q", ctypes.c_void_p), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p), ("o", ctypes.c_void_p),
        ("q_strides", ctypes.c_int64 * 3), ("k_strides", ctypes.c_int64 * 3),
        ("v_strides", ctypes.c_int64 * 3), ("o_strides", ctypes.c_int64 * 3),
        ("scale", ctypes.c_float), ("causal", ctypes.c_int),
        ("kv_valid_lengths", ctypes.c_void_p), ("lse", ctypes.c_void_p), ("stream", ctypes.c_void_p),
    ]


class Tilewise:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.tw_cuda_last_error.restype = ctypes.c_char_p
        self.lib.tw_cuda_attention_forward.argtypes = [ctypes.POINTER(Params)]

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: {self.lib.tw_cuda_last_error().decode()}")

    def set_config(self, config):
        self.check(self.lib.tw_cuda_attention_set_config(config), "set_config")

    def params(self, q, k, v, o, causal, lse=None, kv_lengths=None):
        """q, o: [B, H, Nq, D]; k, v: [B, Hkv, Nk, D] (any strides with unit dim stride)."""
        p = Params()
        p.dtype = TW_F16 if q.dtype == torch.float16 else TW_BF16
        p.batch, p.q_heads, p.q_len, p.head_dim = q.shape
        p.kv_heads, p.kv_len = k.shape[1], k.shape[2]
        p.q, p.k, p.v, p.o = q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr()
        for name, t in (("q_strides", q), ("k_strides", k), ("v_strides", v), ("o_strides", o)):
            getattr(p, name)[:] = t.stride()[:3]
        p.scale = 1.0 / math.sqrt(q.shape[-1])
        p.causal = int(causal)
        p.lse = lse.data_ptr() if lse is not None else None
        p.kv_valid_lengths = kv_lengths.data_ptr() if kv_lengths is not None else None
        p.stream = torch.cuda.current_stream().cuda_stream
        return p

    def forward(self, p):
        self.check(self.lib.tw_cuda_attention_forward(ctypes.byref(p)), "attention_forward")


def median_ms(fn, target_ms=1000.0, min_reps=5, max_reps=50):
    for _ in range(2):  # warm-up: module load, workspace allocation, clocks up
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    est = max(start.elapsed_time(end), 1e-3)
    reps = int(min(max_reps, max(min_reps, target_ms / est)))
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def rel_err(out, ref):
    return ((out.float() - ref.float()).norm() / ref.float().norm()).item()


def main():
    tw = Tilewise(sys.argv[1])
    quick = "--quick" in sys.argv
    torch.manual_seed(int.from_bytes(__import__("os").urandom(4), "little"))
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name}, {props.multi_processor_count} SMs, torch {torch.__version__}, "
          f"cudnn {torch.backends.cudnn.version()}", flush=True)
    tokens_heads = 16 * 16 * 16384  # B*H*N kept constant: the work grows with N
    lines, failures = [], []
    # 0 = the library's own choice; the others force one kernel (tilewise_cuda.h).
    names = {0: "tilewise", 1: "tilewise-sm80-w4", 2: "tilewise-sm80-r32", 3: "tilewise-wgmma",
             4: "tilewise-wgmma-small", 5: "tilewise-wgmma-single", 6: "tilewise-ws"}
    wanted = [0, 2]
    sizes = [4096] if quick else [1024, 4096, 16384]
    for arg in sys.argv[2:]:
        if arg.startswith("--configs="):
            wanted = [int(c) for c in arg.split("=", 1)[1].split(",")]
        if arg.startswith("--sizes="):
            sizes = [int(n) for n in arg.split("=", 1)[1].split(",")]
    configs = [(names[c], c) for c in wanted]
    for dtype in (torch.float16, torch.bfloat16):
        tname = "fp16" if dtype == torch.float16 else "bf16"
        tol = 5e-3 if dtype == torch.float16 else 2.5e-2
        for D in (64, 128):
            for N in sizes:
                H = 16
                B = max(1, tokens_heads // (H * N))
                for causal in (False, True):
                    q = torch.randn(B, H, N, D, device=dev, dtype=dtype)
                    k = torch.randn(B, H, N, D, device=dev, dtype=dtype)
                    v = torch.randn(B, H, N, D, device=dev, dtype=dtype)
                    o = torch.empty_like(q)
                    lse = torch.empty(B, H, N, device=dev, dtype=torch.float32)
                    # Correctness on batch 0 against an fp32 reference.
                    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
                        ref = F.scaled_dot_product_attention(
                            q[:1].float(), k[:1].float(), v[:1].float(), is_causal=causal)
                    for name, cfg in configs:
                        tw.set_config(cfg)
                        o.fill_(float("nan"))
                        lse.fill_(float("nan"))
                        tw.forward(tw.params(q, k, v, o, causal, lse))
                        torch.cuda.synchronize()
                        err = rel_err(o[:1], ref)
                        nan = bool(torch.isnan(o).any().item() or torch.isnan(lse).any().item())
                        ok = err <= tol and not nan
                        print(f"check impl={name} dtype={tname} D={D} N={N} causal={int(causal)} "
                              f"rel_err={err:.2e} nan={nan} {'OK' if ok else 'FAIL'}", flush=True)
                        if not ok:
                            failures.append((name, tname, D, N, causal, err, nan))
                    del ref
                    flops = 4.0 * B * H * N * N * D * (0.5 if causal else 1.0)
                    impls = []
                    for name, cfg in configs:
                        p = tw.params(q, k, v, o, causal)
                        impls.append((name, (lambda p=p, cfg=cfg: (tw.set_config(cfg), tw.forward(p)))))
                    for name, backend in (("torch-flash", SDPBackend.FLASH_ATTENTION),
                                          ("torch-cudnn", SDPBackend.CUDNN_ATTENTION)):
                        def run(backend=backend):
                            with sdpa_kernel([backend]):
                                F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        impls.append((name, run))
                    for name, fn in impls:
                        try:
                            ms = median_ms(fn)
                        except Exception as e:  # a backend that refuses a case is reported, not fatal
                            print(f"skip impl={name} dtype={tname} D={D} N={N}: {e}", flush=True)
                            continue
                        line = (f"cuda-attention impl={name} dtype={tname} B={B} H={H} N={N} D={D} "
                                f"causal={int(causal)} ms={ms:.3f} tflops={flops / ms / 1e9:.1f}")
                        print(line, flush=True)
                        lines.append(line)
                    del q, k, v, o, lse
                    torch.cuda.empty_cache()
    print("\n==== summary ====")
    for line in lines:
        print(line)
    print(f"correctness failures: {len(failures)} {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
