package io.github.tilewise.it.bench;

import ai.djl.huggingface.translator.TextEmbeddingTranslatorFactory;
import ai.djl.repository.zoo.Criteria;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;

/**
 * The {@code Criteria} the end-to-end benchmarks load all-MiniLM-L6-v2 with, as a DJL user would:
 * DJL's own {@code TextEmbeddingTranslatorFactory} (mean pooling, normalised, token types) on the
 * Tilewise engine at a precision, or on DJL's ONNX Runtime engine with the fp32 export or, for
 * {@code int8}, ONNX Runtime's own quantized export.
 */
final class MiniLmCriteria {

    private MiniLmCriteria() {}

    /**
     * Starts the criteria for one engine.
     *
     * @param ort whether the engine is ONNX Runtime (else Tilewise)
     * @param precision {@code fp32}, {@code int8}, {@code bf16}, ...
     * @param dir the MiniLM directory
     * @param maxLength the tokenizer's maximum length
     * @return the builder, for engine-specific options
     */
    static Criteria.Builder<String, float[]> builder(
            boolean ort, String precision, Path dir, int maxLength) {
        Path modelPath =
                ort && "int8".equals(precision)
                        ? RealModels.miniLmQuantizedOnnx().getParent()
                        : dir;
        Criteria.Builder<String, float[]> builder =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optModelPath(modelPath)
                        .optEngine(ort ? "OnnxRuntime" : "Tilewise")
                        .optTranslatorFactory(new TextEmbeddingTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "true")
                        .optArgument("includeTokenTypes", "true")
                        .optArgument("maxLength", Integer.toString(maxLength));
        if (!ort && !"fp32".equals(precision)) {
            builder.optArgument("precision", precision);
        }
        return builder;
    }
}
