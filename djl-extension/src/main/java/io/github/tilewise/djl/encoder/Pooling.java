package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import java.util.Locale;

/**
 * How token embeddings {@code [batch, seq, hidden]} become one vector per text.
 *
 * <p>The token-based modes are those of sentence-transformers' {@code Pooling} module ({@code
 * 1_Pooling/config.json}), computed as it computes them: only tokens with attention mask 1 count,
 * so padding never changes a text's vector. A text with no valid token gives zeros (mean, weighted
 * mean, mean/sqrt(len), last token) or {@code -1e9} in every component (max), as there.
 */
public enum Pooling {
    /** The first token's embedding ({@code [CLS]}). */
    CLS,
    /** BERT's pooler: {@code tanh(dense(first token))}; needs a checkpoint with a pooler. */
    POOLER,
    /**
     * The mean over valid tokens (attention mask 1), as sentence-transformers does: padding does
     * not change a text's embedding.
     */
    MEAN,
    /** The component-wise maximum over valid tokens ({@code pooling_mode_max_tokens}). */
    MAX,
    /**
     * The sum over valid tokens divided by the square root of their count ({@code
     * pooling_mode_mean_sqrt_len_tokens}).
     */
    MEAN_SQRT_LEN,
    /**
     * The mean over valid tokens weighted by position, token {@code t} (from 0) with weight {@code
     * t + 1} ({@code pooling_mode_weightedmean_tokens}).
     */
    WEIGHTED_MEAN,
    /**
     * The last valid token's embedding ({@code pooling_mode_lasttoken}), as decoder-based embedding
     * models pool.
     */
    LAST_TOKEN,
    /** No pooling: the token embeddings themselves. */
    NONE;

    /** The value sentence-transformers gives padded positions before the maximum. */
    private static final float MAX_PADDING = -1e9f;

    /**
     * Parses {@code cls}, {@code pooler}, {@code mean}, {@code max}, {@code mean_sqrt_len}, {@code
     * weighted_mean}, {@code last_token} or {@code none} (any case; sentence-transformers' names
     * {@code cls_token}, {@code mean_tokens}, {@code max_tokens}, {@code mean_sqrt_len_tokens},
     * {@code weightedmean} and {@code lasttoken} too; {@code token_embeddings} means none).
     *
     * @param name the mode's name
     * @return the mode
     * @throws IllegalArgumentException for any other name
     */
    public static Pooling fromName(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        switch (n) {
            case "token_embeddings":
            case "tokens":
                return NONE;
            case "cls_token":
                return CLS;
            case "mean_tokens":
                return MEAN;
            case "max_tokens":
                return MAX;
            case "mean_sqrt_len_tokens":
                return MEAN_SQRT_LEN;
            case "weightedmean":
            case "weightedmean_tokens":
                return WEIGHTED_MEAN;
            case "lasttoken":
                return LAST_TOKEN;
            default:
                break;
        }
        try {
            return valueOf(n.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                    "Unknown pooling '"
                            + name
                            + "': expected cls, pooler, mean, max, mean_sqrt_len, weighted_mean,"
                            + " last_token or none",
                    e);
        }
    }

    /**
     * Pools token embeddings, attaching the result to {@code hidden}'s manager.
     *
     * @param hidden token embeddings {@code [batch, seq, hidden]}
     * @param attentionMask {@code [batch, seq]}, 1 for valid tokens (any numeric type)
     * @param poolerOutput the pooler's output {@code [batch, hidden]}, or null when the model has
     *     none
     * @return {@code [batch, hidden]}, or {@code hidden} itself for {@link #NONE}
     * @throws IllegalStateException for {@link #POOLER} without a pooler output
     */
    public NDArray apply(NDArray hidden, NDArray attentionMask, NDArray poolerOutput) {
        switch (this) {
            case CLS:
                return hidden.get(new NDIndex(":, 0, :"));
            case POOLER:
                if (poolerOutput == null) {
                    throw new IllegalStateException(
                            "Pooling POOLER needs a checkpoint with a pooler (pooler.dense.*); this"
                                    + " one has none: use CLS or MEAN");
                }
                return poolerOutput;
            case MEAN:
            case MEAN_SQRT_LEN:
            case WEIGHTED_MEAN:
                return weightedSum(hidden, attentionMask);
            case MAX:
                return maxOverValidTokens(hidden, attentionMask);
            case LAST_TOKEN:
                return lastValidToken(hidden, attentionMask);
            case NONE:
                return hidden;
            default:
                throw new AssertionError(this);
        }
    }

    /**
     * MEAN, MEAN_SQRT_LEN and WEIGHTED_MEAN: {@code sum_t(w_t · h_t) / d} with {@code w_t = mask_t}
     * (times {@code t + 1} for the weighted mean) as one batched {@code [B,1,S]·[B,S,H]} product,
     * and {@code d = max(sum_t w_t, 1e-9)}, or its square root for MEAN_SQRT_LEN.
     */
    private NDArray weightedSum(NDArray hidden, NDArray attentionMask) {
        try (NDManager scope = hidden.getManager().newSubManager()) {
            NDArray w = attentionMask.toType(DataType.FLOAT32, true);
            w.attach(scope);
            if (this == WEIGHTED_MEAN) {
                long seq = hidden.getShape().get(1);
                w = w.mul(scope.arange(1f, seq + 1f, 1f, DataType.FLOAT32).expandDims(0));
            }
            NDArray sum = w.expandDims(1).matMul(hidden).squeeze(1);
            NDArray count = w.sum(new int[] {1}, true).maximum(1e-9f);
            if (this == MEAN_SQRT_LEN) {
                count = count.sqrt();
            }
            return scope.ret(sum.divi(count));
        }
    }

    /** MAX: padded positions become {@code -1e9}, then the maximum over the sequence. */
    private static NDArray maxOverValidTokens(NDArray hidden, NDArray attentionMask) {
        try (NDManager scope = hidden.getManager().newSubManager()) {
            NDArray mask = attentionMask.toType(DataType.FLOAT32, true);
            mask.attach(scope);
            NDArray valid = mask.gt(0f).expandDims(2);
            NDArray padding = scope.full(hidden.getShape(), MAX_PADDING, DataType.FLOAT32);
            NDArray masked = NDArrays.where(valid.broadcast(hidden.getShape()), hidden, padding);
            return scope.ret(masked.max(new int[] {1}));
        }
    }

    /**
     * LAST_TOKEN: the row of the last position with mask 1, picked by a one-hot {@code [B,1,S]}
     * product (exact: one weight 1, the others 0); a text without valid tokens gives zeros.
     */
    private static NDArray lastValidToken(NDArray hidden, NDArray attentionMask) {
        try (NDManager scope = hidden.getManager().newSubManager()) {
            long seq = hidden.getShape().get(1);
            NDArray mask = attentionMask.toType(DataType.FLOAT32, true);
            mask.attach(scope);
            NDArray valid = mask.gt(0f);
            NDArray v = valid.toType(DataType.FLOAT32, false);
            NDArray positions = scope.arange(0f, (float) seq, 1f, DataType.FLOAT32).expandDims(0);
            // valid ? t : -1 (exact for integers); the row maximum is the last valid position.
            NDArray last = positions.mul(v).add(v).sub(1f).max(new int[] {1}, true);
            NDArray oneHot = positions.eq(last).logicalAnd(valid).toType(DataType.FLOAT32, false);
            return scope.ret(oneHot.expandDims(1).matMul(hidden).squeeze(1));
        }
    }
}
