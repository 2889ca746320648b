package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.Random;

/**
 * One randomly generated attention problem and its NDArrays: the tests' bridge between {@link
 * NaiveAttention} (flat {@code [B, H, N, D]} float arrays) and the DJL operators (NDArrays in
 * either layout, FLOAT32 or FLOAT16).
 */
final class AttentionTestData {

    /** Which key mask a case uses. */
    enum KeyMask {
        NONE,
        /**
         * Per-sequence valid lengths: full, partial, and zero (fully masked) if the batch allows.
         */
        VALID_LENGTHS,
        /** A random BOOLEAN mask; the last batch entry hides every key if the batch has two. */
        BOOLEAN_PADDING,
        /** A Hugging Face style INT64 mask of ones then zeros. */
        INT64_PADDING
    }

    /** Which additive bias a case uses. */
    enum Bias {
        NONE,
        /** {@code [B, H, Nq, Nk]}. */
        FULL,
        /** {@code [1, H, 1, Nk]}, broadcast over batch and queries. */
        HEADS_KEYS,
        /** {@code [Nq, Nk]}, broadcast over batch and heads. */
        QUERY_KEYS,
        /** {@code [B, 1, Nq, Nk]} with about a fifth of the entries {@code -inf}. */
        WITH_MINUS_INFINITY
    }

    /** Sizes and options of one test case. */
    record Case(
            int batch,
            int heads,
            int kvHeads,
            int qLen,
            int kvLen,
            int headDim,
            boolean causal,
            AttentionLayout layout,
            KeyMask mask,
            Bias bias) {

        Case(int batch, int heads, int kvHeads, int qLen, int kvLen, int headDim, boolean causal) {
            this(
                    batch,
                    heads,
                    kvHeads,
                    qLen,
                    kvLen,
                    headDim,
                    causal,
                    AttentionLayout.BATCH_HEADS_SEQ_DIM,
                    KeyMask.NONE,
                    Bias.NONE);
        }

        Case with(AttentionLayout newLayout) {
            return new Case(
                    batch, heads, kvHeads, qLen, kvLen, headDim, causal, newLayout, mask, bias);
        }

        Case with(KeyMask newMask) {
            return new Case(
                    batch, heads, kvHeads, qLen, kvLen, headDim, causal, layout, newMask, bias);
        }

        Case with(Bias newBias) {
            return new Case(
                    batch, heads, kvHeads, qLen, kvLen, headDim, causal, layout, mask, newBias);
        }

        @Override
        public String toString() {
            return String.format(
                    "B=%d H=%d Hkv=%d Nq=%d Nk=%d D=%d%s %s%s%s",
                    batch,
                    heads,
                    kvHeads,
                    qLen,
                    kvLen,
                    headDim,
                    causal ? " causal" : "",
                    layout == AttentionLayout.BATCH_HEADS_SEQ_DIM ? "BHSD" : "BSHD",
                    mask == KeyMask.NONE ? "" : " " + mask,
                    bias == Bias.NONE ? "" : " bias=" + bias);
        }
    }

    final Case c;
    final long seed;
    final NaiveAttention.Problem problem = new NaiveAttention.Problem();
    private final float[] biasData;
    private final long[] biasShape;
    private final long[] paddingMask;

    /**
     * Draws fresh inputs for a case.
     *
     * @param c the case
     * @param seed the random seed (printed by failing assertions)
     * @param halfData whether the data is rounded to fp16 (for FLOAT16 arrays)
     */
    AttentionTestData(Case c, long seed, boolean halfData) {
        this.c = c;
        this.seed = seed;
        Random random = new Random(seed);
        NaiveAttention.Problem p = problem;
        p.batch = c.batch;
        p.heads = c.heads;
        p.kvHeads = c.kvHeads;
        p.qLen = c.qLen;
        p.kvLen = c.kvLen;
        p.headDim = c.headDim;
        p.causal = c.causal;
        p.scale = (float) (1.0 / Math.sqrt(c.headDim));
        // Gaussian inputs times 1.5 give peaked softmax rows, which exercise the online rescaling.
        p.q = gaussian(random, c.batch * c.heads * c.qLen * c.headDim, 1.5f, halfData);
        p.k = gaussian(random, c.batch * c.kvHeads * c.kvLen * c.headDim, 1.5f, halfData);
        p.v = gaussian(random, c.batch * c.kvHeads * c.kvLen * c.headDim, 1f, halfData);

        long[] mask = null;
        switch (c.mask) {
            case VALID_LENGTHS:
                p.validLengths = new int[c.batch];
                for (int b = 0; b < c.batch; ++b) {
                    p.validLengths[b] = b == 0 ? c.kvLen : b == 2 ? 0 : 1 + random.nextInt(c.kvLen);
                }
                break;
            case BOOLEAN_PADDING:
            case INT64_PADDING:
                p.keep = new boolean[c.batch][c.kvLen];
                mask = new long[c.batch * c.kvLen];
                for (int b = 0; b < c.batch; ++b) {
                    int length = 1 + random.nextInt(c.kvLen);
                    for (int j = 0; j < c.kvLen; ++j) {
                        boolean keep =
                                c.mask == KeyMask.INT64_PADDING
                                        ? j < length
                                        : (b < 1 || b < c.batch - 1) && random.nextFloat() < 0.7f;
                        p.keep[b][j] = keep;
                        mask[b * c.kvLen + j] = keep ? 1 : 0;
                    }
                }
                break;
            default:
                break;
        }
        paddingMask = mask;

        long[] shape;
        switch (c.bias) {
            case FULL:
                shape = new long[] {c.batch, c.heads, c.qLen, c.kvLen};
                break;
            case HEADS_KEYS:
                shape = new long[] {1, c.heads, 1, c.kvLen};
                break;
            case QUERY_KEYS:
                shape = new long[] {c.qLen, c.kvLen};
                break;
            case WITH_MINUS_INFINITY:
                shape = new long[] {c.batch, 1, c.qLen, c.kvLen};
                break;
            default:
                shape = null;
        }
        biasShape = shape;
        if (shape != null) {
            int size = (int) new Shape(shape).size();
            biasData = gaussian(random, size, 1f, false);
            if (c.bias == Bias.WITH_MINUS_INFINITY) {
                for (int i = 0; i < size; ++i) {
                    if (random.nextFloat() < 0.2f) {
                        biasData[i] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
            p.bias = expandBias(biasData, shape, c);
        } else {
            biasData = null;
        }
    }

    /** Q as an NDArray in the case's layout. */
    NDArray q(NDManager manager, DataType type) {
        return tensor(manager, problem.q, c.heads, c.qLen, type);
    }

    /** K as an NDArray in the case's layout. */
    NDArray k(NDManager manager, DataType type) {
        return tensor(manager, problem.k, c.kvHeads, c.kvLen, type);
    }

    /** V as an NDArray in the case's layout. */
    NDArray v(NDManager manager, DataType type) {
        return tensor(manager, problem.v, c.kvHeads, c.kvLen, type);
    }

    /** The options of the case, with its masks and bias as NDArrays on the manager. */
    AttentionOptions.Builder options(NDManager manager) {
        AttentionOptions.Builder builder =
                AttentionOptions.builder().optLayout(c.layout).optCausal(c.causal);
        if (problem.validLengths != null) {
            builder.optKeyValidLengths(problem.validLengths);
        }
        if (paddingMask != null) {
            NDArray mask = manager.create(paddingMask, new Shape(c.batch, c.kvLen));
            builder.optKeyPaddingMask(
                    c.mask == KeyMask.BOOLEAN_PADDING
                            ? mask.toType(DataType.BOOLEAN, false)
                            : mask);
        }
        if (biasData != null) {
            builder.optBias(manager.create(biasData, new Shape(biasShape)));
        }
        return builder;
    }

    /** The output of an operator as a flat {@code [B, H, Nq, D]} array. */
    float[] outputOf(NDArray out) {
        float[] flat = out.toType(DataType.FLOAT32, false).toFloatArray();
        return c.layout == AttentionLayout.BATCH_HEADS_SEQ_DIM
                ? flat
                : swapMiddleAxes(flat, c.batch, c.qLen, c.heads, c.headDim);
    }

    private NDArray tensor(NDManager manager, float[] data, int heads, int seq, DataType type) {
        float[] laidOut =
                c.layout == AttentionLayout.BATCH_HEADS_SEQ_DIM
                        ? data
                        : swapMiddleAxes(data, c.batch, heads, seq, c.headDim);
        Shape shape =
                c.layout == AttentionLayout.BATCH_HEADS_SEQ_DIM
                        ? new Shape(c.batch, heads, seq, c.headDim)
                        : new Shape(c.batch, seq, heads, c.headDim);
        NDArray fp32 = manager.create(laidOut, shape);
        return type == DataType.FLOAT32 ? fp32 : fp32.toType(type, false);
    }

    /** [B, X, Y, D] to [B, Y, X, D]. */
    static float[] swapMiddleAxes(float[] data, int batch, int x, int y, int d) {
        float[] out = new float[data.length];
        for (int b = 0; b < batch; ++b) {
            for (int i = 0; i < x; ++i) {
                for (int j = 0; j < y; ++j) {
                    System.arraycopy(
                            data, ((b * x + i) * y + j) * d, out, ((b * y + j) * x + i) * d, d);
                }
            }
        }
        return out;
    }

    private static float[] expandBias(float[] data, long[] shape, Case c) {
        long[] extents = {1, 1, 1, 1};
        System.arraycopy(shape, 0, extents, 4 - shape.length, shape.length);
        float[] full = new float[c.batch * c.heads * c.qLen * c.kvLen];
        int index = 0;
        for (int b = 0; b < c.batch; ++b) {
            for (int h = 0; h < c.heads; ++h) {
                for (int i = 0; i < c.qLen; ++i) {
                    for (int j = 0; j < c.kvLen; ++j) {
                        long bb = extents[0] == 1 ? 0 : b;
                        long hh = extents[1] == 1 ? 0 : h;
                        long ii = extents[2] == 1 ? 0 : i;
                        long jj = extents[3] == 1 ? 0 : j;
                        long source = ((bb * extents[1] + hh) * extents[2] + ii) * extents[3] + jj;
                        full[index++] = data[(int) source];
                    }
                }
            }
        }
        return full;
    }

    private static float[] gaussian(Random random, int size, float scale, boolean half) {
        float[] out = new float[size];
        for (int i = 0; i < size; ++i) {
            float x = (float) random.nextGaussian() * scale;
            out[i] = half ? HalfFloats.roundToFp16(x) : x;
        }
        return out;
    }

    @Override
    public String toString() {
        return c
                + " seed="
                + seed
                + (problem.validLengths == null
                        ? ""
                        : " lengths=" + Arrays.toString(problem.validLengths));
    }
}
