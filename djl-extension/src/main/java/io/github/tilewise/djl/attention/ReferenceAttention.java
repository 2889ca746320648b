package io.github.tilewise.djl.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

/**
 * Attention composed from DJL NDArray ops (matMul, max, exp, sum): the textbook computation that
 * materialises the {@code [B, H, Nq, Nk]} score matrix. It is the fallback of {@link
 * FusedAttention} where no native build exists, and the peer the benchmarks compare against.
 *
 * <p>Same contract as {@link FusedAttention} (shapes, layouts, masks, bottom-right causal
 * alignment, fully masked rows giving zeros and log-sum-exp {@code -inf}) with two differences: the
 * arithmetic is fp32 whatever the data type and {@link ComputePrecision} (FLOAT16 data is widened,
 * computed and rounded back, because half-precision matrix products through DJL are very slow on
 * CPUs and a BFLOAT16 NDArray aborts the PyTorch engine), and its memory grows with {@code Nq·Nk}.
 * Grouped-query attention is computed by folding the query heads of a group into the row axis, so K
 * and V are never repeated.
 */
public final class ReferenceAttention {

    private ReferenceAttention() {}

    /**
     * Computes attention with DJL ops; same contract as {@link FusedAttention#forward}.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision; null means the defaults
     * @return the output, shaped like q, with q's data type, attached to q's manager
     */
    public static NDArray forward(NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        AttentionOptions opts = options == null ? AttentionOptions.builder().build() : options;
        return compute(q, k, v, opts, AttentionShape.check(q, k, v, opts), false, q.getManager())
                .singletonOrThrow();
    }

    /**
     * Computes attention and the log-sum-exp with DJL ops; same contract as {@link
     * FusedAttention#forwardWithLogSumExp}.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param options layout, scale, masks and precision; null means the defaults
     * @return the output and the log-sum-exp {@code [B, H, Nq]} (FLOAT32), on q's manager
     */
    public static NDList forwardWithLogSumExp(
            NDArray q, NDArray k, NDArray v, AttentionOptions options) {
        AttentionOptions opts = options == null ? AttentionOptions.builder().build() : options;
        return compute(q, k, v, opts, AttentionShape.check(q, k, v, opts), true, q.getManager());
    }

    /**
     * The computation, on arguments {@link AttentionShape#check} has accepted; the results attach
     * to {@code target}.
     */
    static NDList compute(
            NDArray q,
            NDArray k,
            NDArray v,
            AttentionOptions options,
            AttentionShape s,
            boolean withLogSumExp,
            NDManager target) {
        try (NDManager scope = target.newSubManager()) {
            NDArray qh = headsFirst(q, s, scope);
            NDArray kh = headsFirst(k, s, scope);
            NDArray vh = headsFirst(v, s, scope);
            long group = s.heads / s.kvHeads;

            // Scores [B, H, Nq, Nk]: the query heads of one K/V head are stacked as rows.
            NDArray product =
                    qh.reshape(s.batch, s.kvHeads, group * s.qLen, s.headDim)
                            .matMul(kh.transpose(0, 1, 3, 2));
            NDArray scores = product.reshape(s.batch, s.heads, s.qLen, s.kvLen);
            scores.muli(options.getScale(s.headDim));
            NDArray bias = options.getBias();
            if (bias != null) {
                attach(bias, scope);
                scores.addi(bias.toType(DataType.FLOAT32, false));
            }
            NDArray relative = relativeBias(options, s, scope);
            if (relative != null) {
                scores.addi(relative);
                relative = relative.neq(Float.NEGATIVE_INFINITY); // -inf entries mask
            }
            // Masked scores become -inf by selection, not by adding -inf: a NaN or infinity in a
            // masked-out key (or a -inf bias on a NaN score) must not reach the row.
            NDArray visible = visibility(options, s, scope);
            if (options.getBias() != null) {
                NDArray open = options.getBias().neq(Float.NEGATIVE_INFINITY);
                visible = visible == null ? open : visible.logicalAnd(open);
            }
            if (relative != null) {
                visible = visible == null ? relative : visible.logicalAnd(relative);
            }
            if (visible != null) {
                NDArray all = visible.broadcast(scores.getShape());
                scores =
                        NDArrays.where(
                                all,
                                scores,
                                scope.full(scores.getShape(), Float.NEGATIVE_INFINITY));
            }

            // Softmax that keeps fully masked rows at zero: their maximum -inf is replaced by 0,
            // so exp gives 0 everywhere and the sum 0, which divides as 1.
            NDArray rowMax = scores.max(new int[] {-1}, true);
            NDArray noKey = rowMax.eq(Float.NEGATIVE_INFINITY);
            NDArray shift = NDArrays.where(noKey, scope.zeros(noKey.getShape()), rowMax);
            NDArray weights = scores.subi(shift).exp();
            // Free the scores (the view and the product it shares memory with) before going on,
            // so that at most two score-sized arrays are alive at once.
            scores.close();
            product.close();
            NDArray rowSum = weights.sum(new int[] {-1}, true);
            NDArray empty = rowSum.eq(0f);
            weights.divi(NDArrays.where(empty, scope.ones(empty.getShape()), rowSum));

            // 0 · NaN is NaN: multiply by V with its non-finite values zeroed, then make NaN the
            // outputs whose row gives a non-zero weight to a non-finite value.
            NDArray grouped = weights.reshape(s.batch, s.kvHeads, group * s.qLen, s.kvLen);
            NDArray finite = vh.isInfinite().logicalOr(vh.isNaN()).logicalNot();
            NDArray out = grouped.matMul(NDArrays.where(finite, vh, scope.zeros(vh.getShape())));
            if (!finite.all().getBoolean()) {
                NDArray reached =
                        grouped.gt(0f)
                                .toType(DataType.FLOAT32, false)
                                .matMul(finite.logicalNot().toType(DataType.FLOAT32, false))
                                .gt(0f);
                out = NDArrays.where(reached, scope.full(out.getShape(), Float.NaN), out);
            }
            out = out.reshape(s.batch, s.heads, s.qLen, s.headDim);
            if (s.layout == AttentionLayout.BATCH_SEQ_HEADS_DIM) {
                out = out.transpose(0, 2, 1, 3);
            }
            out = out.toType(s.dataType, false);
            out.attach(target);
            if (!withLogSumExp) {
                return new NDList(out);
            }
            NDArray lse = rowSum.log().add(shift).reshape(s.batch, s.heads, s.qLen);
            lse.attach(target);
            return new NDList(out, lse);
        }
    }

    /** The array as FLOAT32 {@code [B, heads, seq, D]}, a view where possible, on the scope. */
    private static NDArray headsFirst(NDArray x, AttentionShape s, NDManager scope) {
        attach(x, scope);
        NDArray fp32 = x.toType(DataType.FLOAT32, false);
        return s.layout == AttentionLayout.BATCH_HEADS_SEQ_DIM ? fp32 : fp32.transpose(0, 2, 1, 3);
    }

    /**
     * Which keys each query may see, broadcastable to {@code [B, H, Nq, Nk]} (BOOLEAN), or null if
     * no mask applies.
     */
    private static NDArray visibility(AttentionOptions options, AttentionShape s, NDManager scope) {
        NDArray visible = null;
        if (options.isCausal()) {
            // Query i sees key j iff j <= i + (Nk - Nq): bottom-right alignment.
            NDArray rows =
                    scope.arange(0, (int) s.qLen).add(s.kvLen - s.qLen).reshape(1, 1, s.qLen, 1);
            NDArray cols = scope.arange(0, (int) s.kvLen).reshape(1, 1, 1, s.kvLen);
            visible = cols.lte(rows);
        }
        if (options.hasSlidingWindow()) {
            // Query i, at i' = i + (Nk - Nq), sees key j iff i' - left <= j <= i' + right.
            NDArray rows =
                    scope.arange(0, (int) s.qLen).add(s.kvLen - s.qLen).reshape(1, 1, s.qLen, 1);
            NDArray cols = scope.arange(0, (int) s.kvLen).reshape(1, 1, 1, s.kvLen);
            NDArray distance = cols.sub(rows);
            if (options.getWindowLeft() >= 0) {
                visible = and(visible, distance.gte(-options.getWindowLeft()));
            }
            if (options.getWindowRight() >= 0) {
                visible = and(visible, distance.lte(options.getWindowRight()));
            }
        }
        int[] lengths = options.getKeyValidLengths();
        if (lengths != null) {
            NDArray limit = scope.create(lengths).reshape(s.batch, 1, 1, 1);
            NDArray cols = scope.arange(0, (int) s.kvLen).reshape(1, 1, 1, s.kvLen);
            visible = and(visible, cols.lt(limit));
        }
        NDArray mask = options.getKeyPaddingMask();
        if (mask != null) {
            attach(mask, scope);
            visible = and(visible, mask.neq(0).reshape(s.batch, 1, 1, s.kvLen));
        }
        return visible;
    }

    /**
     * The relative-position bias {@code [1, H or 1, Nq, Nk]} (FLOAT32) gathered from the options'
     * table, {@code table[h, clamp(j - i', -R, R) + R]}, or null without a table.
     */
    private static NDArray relativeBias(
            AttentionOptions options, AttentionShape s, NDManager scope) {
        NDArray table = options.getRelativeBias();
        if (table == null) {
            return null;
        }
        attach(table, scope);
        long tableHeads = table.getShape().get(0);
        int radius = options.getRelativeBiasRadius();
        int width = 2 * radius + 1;
        // Distance index [Nq, Nk] (int64), then one row of the table per head: take() flattens the
        // table, so each head's indices are offset by h·width.
        NDArray rows =
                scope.arange(0, (int) s.qLen)
                        .toType(DataType.INT64, false)
                        .add(s.kvLen - s.qLen)
                        .reshape(s.qLen, 1);
        NDArray cols = scope.arange(0, (int) s.kvLen).toType(DataType.INT64, false);
        NDArray index = cols.reshape(1, s.kvLen).sub(rows).clip(-radius, radius).add(radius);
        NDArray heads =
                scope.arange(0, (int) tableHeads)
                        .toType(DataType.INT64, false)
                        .mul(width)
                        .reshape(tableHeads, 1, 1);
        NDArray flat = index.reshape(1, s.qLen, s.kvLen).add(heads).flatten();
        NDArray gathered = table.flatten().take(flat);
        return gathered.reshape(1, tableHeads, s.qLen, s.kvLen);
    }

    private static NDArray and(NDArray a, NDArray b) {
        return a == null ? b : a.logicalAnd(b);
    }

    /** Attaches an input to the scope for the call; DJL returns it when the scope closes. */
    private static void attach(NDArray array, NDManager scope) {
        if (array.getManager() != scope) {
            array.tempAttach(scope);
        }
    }
}
