package io.github.tilewise.djl.encoder.text;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * A tokenized batch padded on the right to its longest text: row-major {@code [batch, seq]} ids,
 * attention mask (1 for tokens, 0 for padding) and token types.
 */
public final class TokenBatch {

    private final int batch;
    private final int seq;
    private final long[] inputIds;
    private final long[] attentionMask;
    private final long[] tokenTypeIds;
    private final int[] lengths;

    TokenBatch(int batch, int seq, long[] ids, long[] mask, long[] types, int[] lengths) {
        this.batch = batch;
        this.seq = seq;
        this.inputIds = ids;
        this.attentionMask = mask;
        this.tokenTypeIds = types;
        this.lengths = lengths;
    }

    /**
     * Returns the number of texts.
     *
     * @return the batch size
     */
    public int getBatchSize() {
        return batch;
    }

    /**
     * Returns the padded length.
     *
     * @return the longest text's token count
     */
    public int getSequenceLength() {
        return seq;
    }

    /**
     * Returns the token count of each text (after truncation).
     *
     * @return a copy of the lengths
     */
    public int[] getLengths() {
        return lengths.clone();
    }

    /**
     * Returns the ids, row-major {@code [batch, seq]}.
     *
     * @return the ids (not copied)
     */
    public long[] getInputIds() {
        return inputIds;
    }

    /**
     * Returns the attention mask, row-major {@code [batch, seq]}.
     *
     * @return the mask (not copied)
     */
    public long[] getAttentionMask() {
        return attentionMask;
    }

    /**
     * Returns the token types, row-major {@code [batch, seq]}.
     *
     * @return the types (not copied)
     */
    public long[] getTokenTypeIds() {
        return tokenTypeIds;
    }

    /**
     * Creates the model inputs {@code input_ids}, {@code attention_mask}, {@code token_type_ids}
     * (int64 {@code [batch, seq]}).
     *
     * @param manager the manager of the arrays
     * @return the inputs
     */
    public NDList toNDList(NDManager manager) {
        Shape shape = new Shape(batch, seq);
        NDArray ids = manager.create(inputIds, shape);
        ids.setName("input_ids");
        NDArray mask = manager.create(attentionMask, shape);
        mask.setName("attention_mask");
        NDArray types = manager.create(tokenTypeIds, shape);
        types.setName("token_type_ids");
        return new NDList(ids, mask, types);
    }
}
