package io.github.tilewise.djl.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.translate.Batchifier;
import ai.djl.translate.Translator;
import ai.djl.translate.TranslatorContext;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code String -> float[]}: a text embedding from a Tilewise model. {@code batchPredict} tokenizes
 * the whole list into one padded batch and runs it in one forward pass; pooling and normalisation
 * happen inside the model block, as configured when it was loaded.
 */
public final class EncoderEmbeddingTranslator implements Translator<String, float[]> {

    private final EncoderTokenizer tokenizer;

    /**
     * Creates the translator.
     *
     * @param tokenizer the model's tokenizer
     */
    public EncoderEmbeddingTranslator(EncoderTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    @Override
    public Batchifier getBatchifier() {
        // Non-null so DJL's Predictor takes the batch path; batching itself is done below.
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
    public float[] processOutput(TranslatorContext ctx, NDList list) {
        return batchProcessOutput(ctx, list).get(0);
    }

    @Override
    public List<float[]> batchProcessOutput(TranslatorContext ctx, NDList list) {
        NDArray embeddings = list.get(TextEncoderBlock.SENTENCE_EMBEDDING);
        if (embeddings == null) {
            throw new IllegalStateException(
                    "the model computes no text embedding (pooling is none): load it with the"
                            + " Criteria argument pooling=mean, cls or pooler");
        }
        return rows(embeddings);
    }

    static List<float[]> rows(NDArray matrix) {
        int n = (int) matrix.getShape().get(0);
        int d = (int) matrix.getShape().get(1);
        float[] all = matrix.toFloatArray();
        List<float[]> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(Arrays.copyOfRange(all, i * d, (i + 1) * d));
        }
        return out;
    }
}
