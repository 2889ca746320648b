package io.github.tilewise.djl.attention;

/**
 * Attention written as plain Java loops, independent of DJL and of the native code: the oracle of
 * the tests. In {@link Precision#FLOAT64} every step is double precision. In the 16-bit modes it is
 * the naive same-precision computation a framework would do with half-precision tensors (inputs,
 * scores, probabilities and outputs rounded to the format, sums accumulated exactly), whose error
 * against float64 sets the bar for the fused kernel: FlashAttention's rule is that the fused result
 * may be at most twice as far from float64 as this naive computation.
 *
 * <p>Tensors are flat arrays in {@code [batch, heads, seq, dim]} order.
 */
final class NaiveAttention {

    /** The arithmetic of a computation. */
    enum Precision {
        /** Double precision everywhere. */
        FLOAT64,
        /** IEEE fp16 storage of inputs, scores, probabilities and outputs. */
        FP16,
        /** bfloat16 storage of inputs, scores, probabilities and outputs. */
        BF16
    }

    /** One problem: sizes, data and masks. */
    static final class Problem {
        int batch;
        int heads;
        int kvHeads;
        int qLen;
        int kvLen;
        int headDim;
        float[] q;
        float[] k;
        float[] v;
        double scale;
        boolean causal;
        int[] validLengths;

        /** {@code [batch][kvLen]}: false hides the key; null for none. */
        boolean[][] keep;

        /** Full {@code [batch, heads, qLen, kvLen]} additive bias, or null. */
        float[] bias;
    }

    /** Output {@code [B, H, Nq, D]} and log-sum-exp {@code [B, H, Nq]}. */
    static final class Result {
        final double[] out;
        final double[] lse;

        Result(double[] out, double[] lse) {
            this.out = out;
            this.lse = lse;
        }
    }

    private NaiveAttention() {}

    static Result compute(Problem p, Precision precision) {
        int group = p.heads / p.kvHeads;
        double[] out = new double[p.batch * p.heads * p.qLen * p.headDim];
        double[] lse = new double[p.batch * p.heads * p.qLen];
        double[] scores = new double[p.kvLen];
        boolean[] visible = new boolean[p.kvLen];
        for (int b = 0; b < p.batch; ++b) {
            for (int h = 0; h < p.heads; ++h) {
                int g = h / group;
                for (int i = 0; i < p.qLen; ++i) {
                    int qBase = ((b * p.heads + h) * p.qLen + i) * p.headDim;
                    double max = Double.NEGATIVE_INFINITY;
                    boolean nan = false;
                    for (int j = 0; j < p.kvLen; ++j) {
                        visible[j] = sees(p, b, i, j);
                        if (!visible[j]) {
                            continue;
                        }
                        int kBase = ((b * p.kvHeads + g) * p.kvLen + j) * p.headDim;
                        double dot = 0;
                        for (int d = 0; d < p.headDim; ++d) {
                            dot +=
                                    round(p.q[qBase + d], precision)
                                            * round(p.k[kBase + d], precision);
                        }
                        double s = round(dot * p.scale, precision);
                        if (p.bias != null) {
                            double add = p.bias[((b * p.heads + h) * p.qLen + i) * p.kvLen + j];
                            if (add == Double.NEGATIVE_INFINITY) {
                                visible[j] = false;
                                continue;
                            }
                            s = round(s + add, precision);
                        }
                        scores[j] = s;
                        nan |= Double.isNaN(s);
                        max = Math.max(max, s);
                    }
                    int row = (b * p.heads + h) * p.qLen + i;
                    int oBase = row * p.headDim;
                    if (nan) {
                        lse[row] = Double.NaN;
                        for (int d = 0; d < p.headDim; ++d) {
                            out[oBase + d] = Double.NaN;
                        }
                        continue;
                    }
                    if (max == Double.NEGATIVE_INFINITY) {
                        lse[row] = Double.NEGATIVE_INFINITY; // no visible key: zeros
                        continue;
                    }
                    double sum = 0;
                    for (int j = 0; j < p.kvLen; ++j) {
                        if (visible[j]) {
                            scores[j] = Math.exp(scores[j] - max);
                            sum += scores[j];
                        }
                    }
                    lse[row] = max + Math.log(sum);
                    for (int d = 0; d < p.headDim; ++d) {
                        double acc = 0;
                        for (int j = 0; j < p.kvLen; ++j) {
                            if (visible[j]) {
                                int vIndex = ((b * p.kvHeads + g) * p.kvLen + j) * p.headDim + d;
                                acc +=
                                        round(scores[j] / sum, precision)
                                                * round(p.v[vIndex], precision);
                            }
                        }
                        out[oBase + d] = round(acc, precision);
                    }
                }
            }
        }
        return new Result(out, lse);
    }

    private static boolean sees(Problem p, int b, int i, int j) {
        if (p.causal && j > i + (p.kvLen - p.qLen)) {
            return false;
        }
        if (p.validLengths != null && j >= p.validLengths[b]) {
            return false;
        }
        return p.keep == null || p.keep[b][j];
    }

    private static double round(double x, Precision precision) {
        switch (precision) {
            case FP16:
                return HalfFloats.roundToFp16((float) x);
            case BF16:
                return HalfFloats.roundToBf16((float) x);
            default:
                return x;
        }
    }
}
