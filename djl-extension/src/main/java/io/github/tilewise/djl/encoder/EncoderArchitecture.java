package io.github.tilewise.djl.encoder;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The encoder families Tilewise loads, by their Hugging Face {@code model_type}.
 *
 * <p>The first five share BERT's post-LayerNorm layer and are built as a {@link BertEncoder}; they
 * differ in tensor names (mapped onto BERT's when a checkpoint is read), in how positions are
 * numbered and in MPNet's relative-position bias. ModernBERT is a pre-norm encoder with rotary
 * positions, gated feed-forward layers and local attention ({@link ModernBertEncoder}).
 */
public enum EncoderArchitecture {
    /** BERT and its distillations (MiniLM, TinyBERT, BGE, E5 ...): {@code bert}. */
    BERT("bert"),
    /** RoBERTa: BERT's layer, positions counted from {@code pad_token_id + 1}. */
    ROBERTA("roberta"),
    /** XLM-RoBERTa (multilingual E5, BGE-M3): RoBERTa's layout. */
    XLM_ROBERTA("xlm-roberta"),
    /** DistilBERT: BERT's layer under other names, no token types. */
    DISTILBERT("distilbert"),
    /** MPNet: RoBERTa's positions plus a bucketed relative-position bias in every layer. */
    MPNET("mpnet"),
    /** ModernBERT: pre-norm, rotary positions, GeGLU, alternating global and local attention. */
    MODERNBERT("modernbert");

    private final String modelType;

    EncoderArchitecture(String modelType) {
        this.modelType = modelType;
    }

    /**
     * Returns the Hugging Face {@code model_type}.
     *
     * @return e.g. {@code xlm-roberta}
     */
    public String getModelType() {
        return modelType;
    }

    /**
     * Whether position ids count real tokens from {@code pad_token_id + 1}, padding tokens sitting
     * at {@code pad_token_id} (RoBERTa's {@code create_position_ids_from_input_ids}).
     *
     * @return true for RoBERTa, XLM-RoBERTa and MPNet
     */
    public boolean positionsAfterPadding() {
        return this == ROBERTA || this == XLM_ROBERTA || this == MPNET;
    }

    /**
     * Whether the family is built from BERT's post-LayerNorm layer ({@link BertEncoder}).
     *
     * @return true for every family but ModernBERT
     */
    public boolean isBertLayout() {
        return this != MODERNBERT;
    }

    /**
     * Finds the family of a {@code model_type}.
     *
     * @param modelType a Hugging Face {@code model_type}, any case ({@code xlm_roberta} too)
     * @return the family
     * @throws IllegalArgumentException listing the supported types when it is none of them
     */
    public static EncoderArchitecture fromModelType(String modelType) {
        String key = modelType == null ? "" : modelType.trim().toLowerCase(Locale.ROOT);
        for (EncoderArchitecture a : values()) {
            if (a.modelType.equals(key) || a.modelType.replace('-', '_').equals(key)) {
                return a;
            }
        }
        throw new IllegalArgumentException(
                "unknown architecture model_type='"
                        + modelType
                        + "': supported are "
                        + supported());
    }

    /**
     * Returns the supported {@code model_type} values, for messages.
     *
     * @return e.g. {@code [bert, roberta, ...]}
     */
    public static List<String> supported() {
        List<String> names = new ArrayList<>();
        for (EncoderArchitecture a : values()) {
            names.add(a.modelType);
        }
        return names;
    }
}
