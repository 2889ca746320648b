package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * MPNet's (and T5's bidirectional) relative-position buckets, turned into the per-head table of
 * distances the fused attention adds to its scores: {@code table[h][d + R]} is the learned bias of
 * the bucket of distance {@code d = j − i} (key minus query) for {@code |d| ≤ R = maxDistance};
 * beyond {@code maxDistance} every distance falls in the outermost bucket, so the kernel clamps to
 * the table's ends and no {@code N × N} tensor is ever built.
 *
 * <p>The bucket of a distance follows Hugging Face's {@code MPNetEncoder.relative_position_bucket}
 * in float32: half the buckets for each direction; distances below a quarter of the buckets are
 * exact; larger ones are spaced logarithmically up to {@code maxDistance}.
 */
public final class RelativePositionBuckets {

    /**
     * The bucket count MPNet's attention uses: Hugging Face's {@code compute_position_bias} always
     * passes its default 32, whatever {@code relative_attention_num_buckets} sizes the table to.
     */
    public static final int MPNET_BUCKETS = 32;

    private RelativePositionBuckets() {}

    /**
     * Returns the bucket of a distance.
     *
     * @param distance key position minus query position
     * @param buckets the number of buckets (both directions)
     * @param maxDistance the distance from which the outermost bucket is used
     * @return the bucket, in {@code [0, buckets)}
     */
    public static int bucket(int distance, int buckets, int maxDistance) {
        int half = buckets / 2;
        int n = -distance;
        int ret = n < 0 ? half : 0;
        n = Math.abs(n);
        int maxExact = half / 2;
        if (n < maxExact) {
            return ret + n;
        }
        // float32 throughout, as torch computes it on a float tensor.
        float ratio = (float) Math.log((float) n / (float) maxExact);
        ratio = ratio / (float) Math.log((double) maxDistance / maxExact);
        int large = maxExact + (int) (ratio * (float) (half - maxExact));
        return ret + Math.min(large, half - 1);
    }

    /**
     * Builds the table of distances for every head.
     *
     * @param weights the learned biases {@code [rows, heads]} (the checkpoint's {@code
     *     relative_attention_bias.weight})
     * @param buckets the number of buckets distances fall into (at most {@code rows})
     * @param maxDistance the distance from which the outermost bucket is used (the table's radius)
     * @param manager owns the table
     * @return {@code [heads, 2 · maxDistance + 1]} float32
     * @throws IllegalArgumentException if the weights have fewer rows than buckets
     */
    public static NDArray table(NDArray weights, int buckets, int maxDistance, NDManager manager) {
        int rows = (int) weights.getShape().get(0);
        if (rows < buckets) {
            throw new IllegalArgumentException(
                    "relative_attention_bias has "
                            + rows
                            + " rows, fewer than its "
                            + buckets
                            + " buckets");
        }
        int heads = (int) weights.getShape().get(1);
        float[] w = weights.toFloatArray();
        int width = 2 * maxDistance + 1;
        float[] table = new float[heads * width];
        for (int d = -maxDistance; d <= maxDistance; d++) {
            int b = bucket(d, buckets, maxDistance);
            for (int h = 0; h < heads; h++) {
                table[h * width + d + maxDistance] = w[b * heads + h];
            }
        }
        return manager.create(table, new ai.djl.ndarray.types.Shape(heads, width));
    }
}
