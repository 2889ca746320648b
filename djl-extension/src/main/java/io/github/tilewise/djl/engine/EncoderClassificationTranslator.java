package io.github.tilewise.djl.engine;

import ai.djl.modality.Classifications;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.translate.Batchifier;
import ai.djl.translate.Translator;
import ai.djl.translate.TranslatorContext;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code String -> Classifications}: softmax over the logits of a checkpoint's sequence
 * classification head ({@code classifier.weight}), labelled from {@code id2label}. Batches are
 * padded into one forward pass as for embeddings.
 */
public final class EncoderClassificationTranslator implements Translator<String, Classifications> {

    private final EncoderTokenizer tokenizer;
    private final List<String> labels;

    /**
     * Creates the translator.
     *
     * @param tokenizer the model's tokenizer
     * @param labels the labels in logit order
     */
    public EncoderClassificationTranslator(EncoderTokenizer tokenizer, List<String> labels) {
        this.tokenizer = tokenizer;
        this.labels = labels;
    }

    @Override
    public Batchifier getBatchifier() {
        return Batchifier.STACK;
    }

    @Override
    public NDList processInput(TranslatorContext ctx, String input) {
        return batchProcessInput(ctx, List.of(input));
    }

    @Override
    public NDList batchProcessInput(TranslatorContext ctx, List<String> inputs) {
        return tokenizer.encode(inputs).toNDList(ctx.getNDManager());
    }

    @Override
    public Classifications processOutput(TranslatorContext ctx, NDList list) {
        return batchProcessOutput(ctx, list).get(0);
    }

    @Override
    public List<Classifications> batchProcessOutput(TranslatorContext ctx, NDList list) {
        NDArray logits = list.get(TextEncoderBlock.LOGITS);
        if (logits == null) {
            throw new IllegalStateException("the model has no classification head (no logits)");
        }
        List<Classifications> out = new ArrayList<>();
        for (float[] row : EncoderEmbeddingTranslator.rows(logits.softmax(-1))) {
            List<Double> p = new ArrayList<>(row.length);
            for (float v : row) {
                p.add((double) v);
            }
            out.add(new Classifications(labels, p));
        }
        return out;
    }
}
