package io.github.tilewise.it.lowp;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import io.github.tilewise.djl.lowp.Precision;
import java.util.Arrays;
import java.util.Locale;

/**
 * Linear-layer throughput per precision from Java (DJL NDArrays in and out, as the encoder runs
 * them), with fp32 through PyTorch's own GEMM ({@code linear}) in the same run:
 *
 * <pre>
 * gemm precision=&lt;p&gt; M=4096 N=&lt;n&gt; K=384 ms=&lt;median&gt; gops=&lt;2MNK/time&gt; engine=&lt;tilewise|pytorch&gt;
 * </pre>
 *
 * <p>Arguments: {@code [reps]} (default 20). The Tilewise time includes the per-call activation
 * quantization (int8) or bf16 rounding, and the output allocation.
 */
public final class GemmBenchmark {

    private static final int M = 4096;
    private static final int[][] SHAPES = {{384, 384}, {1536, 384}};

    private GemmBenchmark() {}

    /**
     * Runs the benchmark.
     *
     * @param args {@code [reps]}
     */
    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        System.out.println("# " + Tilewise.describe());
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            for (int[] shape : SHAPES) {
                int n = shape[0];
                int k = shape[1];
                NDArray x = manager.randomNormal(new Shape(M, k));
                NDArray w =
                        manager.randomNormal(
                                0f, 0.05f, new Shape(n, k), ai.djl.ndarray.types.DataType.FLOAT32);
                float[] wf = w.toFloatArray();
                double fp32 =
                        median(
                                reps,
                                () -> {
                                    try (NDManager scope = manager.newSubManager()) {
                                        x.tempAttach(scope);
                                        x.getNDArrayInternal()
                                                .linear(x, w, null)
                                                .singletonOrThrow()
                                                .toType(
                                                        ai.djl.ndarray.types.DataType.FLOAT32,
                                                        false)
                                                .getShape();
                                    }
                                });
                print("fp32", n, k, fp32, "pytorch");
                for (Precision p :
                        new Precision[] {
                            Precision.INT8,
                            Precision.INT8_WEIGHT_ONLY,
                            Precision.BF16,
                            Precision.FP16
                        }) {
                    try (PackedLinear layer =
                            PackedLinear.builder()
                                    .setWeights(PackedWeights.pack(wf, n, k, p))
                                    .build()) {
                        double ms =
                                median(
                                        reps,
                                        () -> {
                                            try (NDManager scope = manager.newSubManager()) {
                                                x.tempAttach(scope);
                                                layer.forward(x, null).getShape();
                                            }
                                        });
                        print(p.label(), n, k, ms, "tilewise kernel=" + p.kernelName());
                    }
                }
            }
        }
    }

    private static void print(String precision, int n, int k, double ms, String engine) {
        System.out.printf(
                Locale.ROOT,
                "gemm precision=%s M=%d N=%d K=%d ms=%.3f gops=%.1f engine=%s%n",
                precision,
                M,
                n,
                k,
                ms,
                2.0 * M * n * k / (ms * 1e6),
                engine);
    }

    private static double median(int reps, Runnable r) {
        for (int i = 0; i < 3; i++) {
            r.run();
        }
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            r.run();
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(t);
        return t[reps / 2];
    }
}
