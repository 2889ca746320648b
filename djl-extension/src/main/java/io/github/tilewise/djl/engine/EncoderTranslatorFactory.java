package io.github.tilewise.djl.engine;

import ai.djl.MalformedModelException;
import ai.djl.Model;
import ai.djl.modality.Classifications;
import ai.djl.translate.ArgumentsUtil;
import ai.djl.translate.TranslateException;
import ai.djl.translate.Translator;
import ai.djl.translate.TranslatorFactory;
import ai.djl.util.Pair;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import java.io.IOException;
import java.lang.reflect.Type;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Map;
import java.util.Set;

/**
 * Makes the translators of Tilewise models: {@code String -> float[]} (text embedding) and {@code
 * String -> Classifications} (checkpoints with a classifier). Arguments: {@code tokenizerPath}
 * (default {@code tokenizer.json} in the model directory), {@code maxLength} (default: the model's
 * positions) and {@code truncation} ({@code true}: cut longer texts; {@code false}: refuse them).
 *
 * <p>Models loaded by the Tilewise engine also run with DJL's own {@code
 * ai.djl.huggingface.translator.TextEmbeddingTranslatorFactory}: the model's first output is {@code
 * last_hidden_state}, as in Hugging Face exports.
 */
public final class EncoderTranslatorFactory implements TranslatorFactory {

    private static final Set<Pair<Type, Type>> SUPPORTED =
            Set.of(
                    new Pair<>(String.class, float[].class),
                    new Pair<>(String.class, Classifications.class));

    /** Creates the factory. */
    public EncoderTranslatorFactory() {}

    @Override
    public Set<Pair<Type, Type>> getSupportedTypes() {
        return SUPPORTED;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <I, O> Translator<I, O> newInstance(
            Class<I> input, Class<O> output, Model model, Map<String, ?> arguments)
            throws TranslateException {
        if (!isSupported(input, output)) {
            throw new IllegalArgumentException(
                    "unsupported types " + input + " -> " + output + "; supported: " + SUPPORTED);
        }
        if (!(model.getBlock() instanceof TextEncoderBlock)) {
            throw new TranslateException(
                    "EncoderTranslatorFactory needs a model loaded by the Tilewise engine"
                            + " (Criteria.optEngine(\"Tilewise\")), got block "
                            + model.getBlock());
        }
        TextEncoderBlock block = (TextEncoderBlock) model.getBlock();
        EncoderConfig config = block.getEncoder().getConfig();
        int maxLength = ArgumentsUtil.intValue(arguments, "maxLength", config.getMaxSequenceLength());
        if (maxLength > config.getMaxSequenceLength()) {
            throw new TranslateException(
                    "maxLength "
                            + maxLength
                            + " exceeds the model's "
                            + config.getMaxSequenceLength()
                            + " positions");
        }
        boolean truncation = ArgumentsUtil.booleanValue(arguments, "truncation", true);
        String path = ArgumentsUtil.stringValue(arguments, "tokenizerPath");
        Path tokenizerFile =
                path != null ? Paths.get(path) : model.getModelPath().resolve("tokenizer.json");
        EncoderTokenizer tokenizer;
        try {
            tokenizer = EncoderTokenizer.load(tokenizerFile, maxLength, truncation);
        } catch (IOException | MalformedModelException e) {
            throw new TranslateException(e.getMessage(), e);
        }
        // The tokenizer lives as long as the model.
        model.getNDManager()
                .attachInternal(tokenizer.getTokenizer().getUid(), tokenizer.getTokenizer());
        if (output == float[].class) {
            return (Translator<I, O>) new EncoderEmbeddingTranslator(tokenizer);
        }
        if (!config.hasClassifier()) {
            throw new TranslateException(
                    "the checkpoint has no classification head (classifier.weight), so it cannot"
                            + " give Classifications; use float[] for embeddings");
        }
        return (Translator<I, O>)
                new EncoderClassificationTranslator(tokenizer, config.getLabels());
    }
}
