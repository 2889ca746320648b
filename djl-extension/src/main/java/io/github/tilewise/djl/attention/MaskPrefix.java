package io.github.tilewise.djl.attention;

import java.nio.ByteBuffer;

/**
 * What a key-padding mask says in terms of valid lengths: for each batch entry, one past its last
 * kept key, and whether every key before that is kept. The fused kernel skips whole tiles past a
 * valid length but tests mask bytes key by key, so {@link FusedAttention} passes a right-padding
 * mask (ones then zeros, the Hugging Face convention) as lengths, which gives the same result
 * faster.
 */
final class MaskPrefix {

    private final int[] lengths;
    private final boolean prefixOnly;

    private MaskPrefix(int[] lengths, boolean prefixOnly) {
        this.lengths = lengths;
        this.prefixOnly = prefixOnly;
    }

    /**
     * Reads a {@code [batch, kvLen]} mask of bytes, 0 masking.
     *
     * @param mask the bytes, from index 0
     * @param batch batch size
     * @param kvLen keys per entry
     * @return the lengths and whether the mask is a pure prefix mask
     */
    static MaskPrefix of(ByteBuffer mask, long batch, long kvLen) {
        int[] lengths = new int[Math.toIntExact(batch)];
        boolean prefixOnly = true;
        for (int b = 0; b < batch; ++b) {
            int base = Math.toIntExact(b * kvLen);
            int end = 0;
            for (int j = Math.toIntExact(kvLen) - 1; j >= 0; --j) {
                if (mask.get(base + j) != 0) {
                    end = j + 1;
                    break;
                }
            }
            for (int j = 0; j < end && prefixOnly; ++j) {
                prefixOnly = mask.get(base + j) != 0;
            }
            lengths[b] = end;
        }
        return new MaskPrefix(lengths, prefixOnly);
    }

    /**
     * Returns whether the mask keeps exactly the first {@code length} keys of every entry, so that
     * the lengths alone express it.
     *
     * @return true for a right-padding mask
     */
    boolean isPrefixOnly() {
        return prefixOnly;
    }

    /**
     * Returns the tighter of these lengths and the caller's, entry by entry.
     *
     * @param validLengths the caller's valid lengths, or null
     * @return the combined lengths
     */
    int[] combine(int[] validLengths) {
        int[] out = lengths.clone();
        if (validLengths != null) {
            for (int b = 0; b < out.length; ++b) {
                out[b] = Math.min(out[b], validLengths[b]);
            }
        }
        return out;
    }
}
