"""ONNX Runtime's fused attention from Python: the peer of attention_bench --bshd on machines
without Java (the Java attention-bench runs the same one-node graph through ONNX Runtime's Java API).

One com.microsoft.MultiHeadAttention node, B=1, H=8, fp32 query/key/value [B, N, H*D], no mask,
non-causal, intra-op threads from --threads. Prints one line per shape, median of the timed runs
after one warm-up (5 runs at N >= 8192, else 20), GFLOP/s = 4*B*H*N*N*D / time:

  attention-ort version=<ort> threads=T D=<d> N=<n> ms=<median> gflops=<x>

Usage: python3 ort_attention_bench.py [--threads 2] [--dims 64,128] [--n 512,2048,8192]
"""
import argparse
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper


def model(n, heads, dim):
    hidden = heads * dim
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, n, hidden])
        for name in ("query", "key", "value")
    ]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n, hidden])
    node = helper.make_node(
        "MultiHeadAttention",
        ["query", "key", "value"],
        ["output"],
        domain="com.microsoft",
        num_heads=heads,
        unidirectional=0,
    )
    graph = helper.make_graph([node], "multi_head_attention", inputs, [output])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    # IR version 10: what ONNX Runtime 1.17 and later read (newer onnx packages write 11+).
    return helper.make_model(graph, opset_imports=opsets, ir_version=10).SerializeToString()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dims", default="64,128")
    parser.add_argument("--n", default="512,2048,8192")
    args = parser.parse_args()
    heads = 8
    rng = np.random.default_rng(1)
    for dim in [int(d) for d in args.dims.split(",")]:
        for n in [int(x) for x in args.n.split(",")]:
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(
                model(n, heads, dim), options, providers=["CPUExecutionProvider"]
            )
            feeds = {
                name: rng.uniform(-1, 1, (1, n, heads * dim)).astype(np.float32)
                for name in ("query", "key", "value")
            }
            session.run(None, feeds)
            times = []
            for _ in range(5 if n >= 8192 else 20):
                start = time.perf_counter()
                session.run(None, feeds)
                times.append((time.perf_counter() - start) * 1e3)
            ms = float(np.median(times))
            flops = 4.0 * heads * n * n * dim
            print(
                f"attention-ort version={ort.__version__} threads={args.threads} D={dim} N={n} "
                f"ms={ms:.2f} gflops={flops / ms / 1e6:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
