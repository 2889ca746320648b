package io.github.tilewise.it.lowp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import io.github.tilewise.djl.lowp.OrtQuantizedImport;
import io.github.tilewise.it.models.OrtEncoder;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * ONNX Runtime's dynamically quantized all-MiniLM-L6-v2 imported into the INT8 blocks: every one of
 * its 36 MatMulInteger layers runs on the exported int8 codes, and the sentence embeddings agree
 * with ONNX Runtime running that same file (both INT8; ONNX Runtime quantizes activations per
 * tensor, Tilewise per token) and stay close to the fp32 model. Corrupt or non-quantized files are
 * clear errors.
 */
class OrtQuantizedImportTest {

    @Test
    void quantizedExportRunsInTheInt8Blocks() throws Exception {
        Path quantized = RealModels.miniLmQuantizedOnnx();
        List<String> texts = AccuracyTexts.all().subList(0, 120);
        float[][] fp32;
        try (TextEncoder encoder =
                LowPrecisionAccuracy.open(RealModels.onnxFile(RealModels.miniLm()))) {
            fp32 = encoder.embed(texts);
        }
        try (OrtQuantizedImport imported = OrtQuantizedImport.read(quantized);
                TextEncoder encoder =
                        TextEncoder.builder()
                                .setModelPath(imported.getFloatModel())
                                .optTokenizerPath(quantized.getParent().resolve("tokenizer.json"))
                                .optPooling(Pooling.MEAN)
                                .optNormalize(true)
                                .optLinearOperatorFactory(imported.linearOperatorFactory())
                                .build();
                OrtEncoder ort = new OrtEncoder(quantized, 2)) {
            assertEquals(36, imported.getLayerNames().size());
            long int8Layers =
                    encoder.getBlock().getLinearBlocks().stream()
                            .filter(l -> l.getOperator().describe().startsWith("int8"))
                            .count();
            assertEquals(36, int8Layers);
            float[][] ours = encoder.embed(texts);
            float[][] theirs = new float[texts.size()][];
            int hidden = encoder.getConfig().getHiddenSize();
            for (int i = 0; i < texts.size(); i++) {
                TokenBatch one = encoder.getTokenizer().encode(List.of(texts.get(i)));
                float[] tokens = ort.run(one)[0];
                theirs[i] = meanNormalized(tokens, one.getLengths()[0], hidden);
            }
            EmbeddingAgreement vsOrt = EmbeddingAgreement.of(theirs, ours);
            assertTrue(vsOrt.getMeanCosine() >= 0.99, "vs ONNX Runtime int8: " + vsOrt);
            assertTrue(vsOrt.getMinCosine() >= 0.95, "vs ONNX Runtime int8: " + vsOrt);
            EmbeddingAgreement vsFp32 = EmbeddingAgreement.of(fp32, ours);
            EmbeddingAgreement ortVsFp32 = EmbeddingAgreement.of(fp32, theirs);
            System.out.println("accuracy model=all-minilm-l6-v2-q engine=tilewise " + vsFp32);
            System.out.println("accuracy model=all-minilm-l6-v2-q engine=onnxruntime " + ortVsFp32);
            assertTrue(vsFp32.getMeanCosine() >= 0.98, "imported int8 vs fp32: " + vsFp32);
        }
    }

    private static float[] meanNormalized(float[] tokens, int length, int hidden) {
        float[] mean = new float[hidden];
        for (int t = 0; t < length; t++) {
            for (int h = 0; h < hidden; h++) {
                mean[h] += tokens[t * hidden + h] / length;
            }
        }
        double norm = 0;
        for (float v : mean) {
            norm += v * (double) v;
        }
        for (int h = 0; h < hidden; h++) {
            mean[h] /= (float) Math.max(Math.sqrt(norm), 1e-12);
        }
        return mean;
    }

    @Test
    void corruptAndNonQuantizedFilesAreClearErrors() throws Exception {
        Path quantized = RealModels.miniLmQuantizedOnnx();
        Path truncated = Files.createTempFile("truncated", ".onnx");
        try {
            byte[] all = Files.readAllBytes(quantized);
            Files.write(truncated, Arrays.copyOf(all, all.length / 3));
            MalformedModelException e =
                    assertThrows(
                            MalformedModelException.class,
                            () -> OrtQuantizedImport.read(truncated));
            assertTrue(e.getMessage().contains(truncated.toString()), e.getMessage());
        } finally {
            Files.deleteIfExists(truncated);
        }
        MalformedModelException e =
                assertThrows(
                        MalformedModelException.class,
                        () -> OrtQuantizedImport.read(RealModels.onnxFile(RealModels.miniLm())));
        assertTrue(e.getMessage().contains("MatMulInteger"), e.getMessage());
        assertThrows(
                java.nio.file.NoSuchFileException.class, () -> OrtQuantizedImport.read(truncated));
    }
}
