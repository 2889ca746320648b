package io.github.tilewise.it;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.attention.ReferenceAttention;
import io.github.tilewise.it.bench.PeakMemory;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * The README's first command: Tilewise's fused attention against DJL's naive attention (matMul,
 * softmax, matMul) on long sequences, printing time, peak extra memory and the largest difference.
 * At the longest length the naive path would need tens of GB for its score matrix, so only the
 * fused one runs. Then {@link EncoderDemo}: sentence embeddings with a real model through DJL's
 * Criteria on the Tilewise engine, and their throughput against ONNX Runtime.
 */
public final class Demo {

    private static final int HEADS = 8;
    private static final int HEAD_DIM = 64;

    private Demo() {}

    /**
     * Runs the demo.
     *
     * @param args sequence lengths to compare (default 8192 and 32768)
     * @throws Exception if an NDArray operation or the native library fails
     */
    public static void main(String[] args) throws Exception {
        int[] lengths =
                args.length == 0
                        ? new int[] {8192, 32768}
                        : java.util.Arrays.stream(args).mapToInt(Integer::parseInt).toArray();
        System.out.println(Tilewise.describe());
        System.out.println(
                "Causal self-attention, 8 heads of 64, [batch, seq, heads, dim] fp32 on the CPU");
        try (NDManager manager = NDManager.newBaseManager()) {
            for (int n : lengths) {
                compare(manager, n);
            }
        }
        EncoderDemo.run();
    }

    private static void compare(NDManager manager, int n) {
        try (NDManager scope = manager.newSubManager()) {
            Shape shape = new Shape(1, n, HEADS, HEAD_DIM);
            NDArray q = scope.randomNormal(shape);
            NDArray k = scope.randomNormal(shape);
            NDArray v = scope.randomNormal(shape);
            AttentionOptions options =
                    AttentionOptions.builder()
                            .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                            .optCausal(true)
                            .build();
            System.out.printf(Locale.ROOT, "%nN = %d%n", n);
            NDArray fused = run("fused (Tilewise)", () -> FusedAttention.forward(q, k, v, options));

            double scoreGb = 4.0 * HEADS * n * (double) n / 1e9;
            if (2.5 * scoreGb * 1e9 > 0.7 * PeakMemory.availableBytes()) {
                System.out.printf(
                        Locale.ROOT,
                        "  %-18s skipped: its %.1f GB score matrix (and copies) would not fit"
                                + " in memory%n",
                        "naive (DJL ops)",
                        scoreGb);
                return;
            }
            NDArray naive =
                    run("naive (DJL ops)", () -> ReferenceAttention.forward(q, k, v, options));
            float maxDiff = fused.sub(naive).abs().max().getFloat();
            System.out.printf(Locale.ROOT, "  max |fused - naive| = %.2e%n", maxDiff);
        }
    }

    private static NDArray run(String name, Supplier<NDArray> call) {
        NDArray[] out = new NDArray[1];
        long start = System.nanoTime();
        long extra = PeakMemory.measure(() -> out[0] = call.get());
        double ms = (System.nanoTime() - start) / 1e6;
        System.out.printf(
                Locale.ROOT,
                "  %-18s %9.1f ms   peak extra memory %8.1f MB%n",
                name,
                ms,
                extra / (1024.0 * 1024.0));
        return out[0];
    }
}
