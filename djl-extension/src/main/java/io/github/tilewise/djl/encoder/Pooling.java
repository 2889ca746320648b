package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import java.util.Locale;

/** How token embeddings {@code [batch, seq, hidden]} become one vector per text. */
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
    /** No pooling: the token embeddings themselves. */
    NONE;

    /**
     * Parses {@code cls}, {@code pooler}, {@code mean} or {@code none} (any case; {@code
     * token_embeddings} means none).
     *
     * @param name the mode's name
     * @return the mode
     * @throws IllegalArgumentException for any other name
     */
    public static Pooling fromName(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        if ("token_embeddings".equals(n) || "tokens".equals(n)) {
            return NONE;
        }
        try {
            return valueOf(n.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                    "Unknown pooling '" + name + "': expected cls, pooler, mean or none", e);
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
                return meanOverValidTokens(hidden, attentionMask);
            case NONE:
                return hidden;
            default:
                throw new AssertionError(this);
        }
    }

    private static NDArray meanOverValidTokens(NDArray hidden, NDArray attentionMask) {
        // sum_t(mask_t · h_t) / max(sum_t mask_t, 1e-9): a batched [B,1,S]·[B,S,H] product.
        try (NDManager scope = hidden.getManager().newSubManager()) {
            NDArray mask = attentionMask.toType(DataType.FLOAT32, true);
            mask.attach(scope);
            NDArray sum = mask.expandDims(1).matMul(hidden).squeeze(1);
            NDArray count = mask.sum(new int[] {1}, true).maximum(1e-9f);
            return scope.ret(sum.divi(count));
        }
    }
}
