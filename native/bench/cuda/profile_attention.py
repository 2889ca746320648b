#!/usr/bin/env python3
"""Runs one attention case a few times for a profiler (ncu): Tilewise with a chosen config, then
PyTorch's cuDNN backend, on the same random inputs.

Usage: profile_attention.py <libtilewise_cuda.so> <config> <dtype fp16|bf16> <N> <D> <causal 0|1>
Example (on the GPU machine):
  ncu --clock-control none -k regex:'attention_fwd|cudnn|fmha' --launch-skip 2 --launch-count 1 \\
      python3 profile_attention.py libtilewise_cuda.so 6 bf16 4096 128 0
"""
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench_attention import Tilewise


def main():
    lib, config, tname, n, d, causal = sys.argv[1:7]
    n, d, causal = int(n), int(d), bool(int(causal))
    dtype = torch.float16 if tname == "fp16" else torch.bfloat16
    h = 16
    b = max(1, 16 * 16 * 16384 // (h * n))
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=dtype) for _ in range(3))
    o = torch.empty_like(q)
    tw = Tilewise(lib)
    tw.set_config(int(config))
    p = tw.params(q, k, v, o, causal)
    for _ in range(3):
        tw.forward(p)
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
        for _ in range(3):
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.cuda.synchronize()
    print(f"profiled config {config} and cudnn: {tname} B={b} H={h} N={n} D={d} causal={int(causal)}")


if __name__ == "__main__":
    main()
