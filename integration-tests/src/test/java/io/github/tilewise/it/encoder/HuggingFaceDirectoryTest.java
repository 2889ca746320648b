package io.github.tilewise.it.encoder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import ai.djl.inference.Predictor;
import ai.djl.modality.Classifications;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import ai.onnx.proto.OnnxMl;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import io.github.tilewise.it.models.OrtEncoder;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Hugging Face directory path (config.json + model.safetensors + tokenizer.json), written in
 * the test from the weights of the real ONNX files, and bad checkpoints made from the real files.
 */
class HuggingFaceDirectoryTest {

    @TempDir Path tmp;

    /** Writes an HF directory with {@code bert.}-prefixed names from an ONNX checkpoint. */
    private static void writeHfDirectory(
            Path onnx, Path out, String extraConfig, List<CheckpointTensor> extra)
            throws Exception {
        EncoderCheckpoint source = EncoderCheckpoint.read(onnx);
        List<CheckpointTensor> tensors = new ArrayList<>();
        for (CheckpointTensor t : source.getTensors().values()) {
            tensors.add(t.rename("bert." + t.getName()));
        }
        tensors.addAll(extra);
        Files.createDirectories(out);
        SafetensorsFile.write(out.resolve("model.safetensors"), tensors);
        var c = source.getConfig();
        Files.writeString(
                out.resolve("config.json"),
                String.format(
                        Locale.ROOT,
                        "{\"model_type\": \"bert\", \"hidden_size\": %d, \"num_attention_heads\": %d,"
                                + " \"num_hidden_layers\": %d, \"intermediate_size\": %d,"
                                + " \"max_position_embeddings\": %d, \"vocab_size\": %d,"
                                + " \"type_vocab_size\": %d, \"layer_norm_eps\": %s,"
                                + " \"hidden_act\": \"gelu\"%s}",
                        c.getHiddenSize(),
                        c.getNumHeads(),
                        c.getNumLayers(),
                        c.getIntermediateSize(),
                        c.getMaxPositions(),
                        c.getVocabSize(),
                        c.getTypeVocabSize(),
                        Float.toString(c.getLayerNormEps()),
                        extraConfig));
        Files.copy(onnx.getParent().resolve("tokenizer.json"), out.resolve("tokenizer.json"));
    }

    @Test
    void safetensorsDirectoryMatchesOnnxRuntime() throws Exception {
        Path onnx = RealModels.onnxFile(RealModels.miniLm());
        Path hf = tmp.resolve("minilm-hf");
        writeHfDirectory(onnx, hf, "", List.of());
        List<String> texts = ParityTexts.all(600).subList(10, 30);
        try (TextEncoder encoder =
                        TextEncoder.builder().setModelPath(hf).optPooling(Pooling.MEAN).build();
                OrtEncoder ort = new OrtEncoder(onnx, 2)) {
            float[][] actual = encoder.embed(texts);
            double[][] expected =
                    OrtReference.meanPooled(ort, encoder.getTokenizer(), texts, 384, false);
            for (int i = 0; i < texts.size(); i++) {
                assertTrue(OrtReference.cosine(expected[i], actual[i]) >= 0.99999);
                assertTrue(OrtReference.maxAbsDiff(expected[i], actual[i]) <= 1e-4);
            }
        }
    }

    /**
     * tinybert with a classifier head added by the test (random weights, labels in config.json):
     * the Predictor's probabilities equal softmax(W · pooler + b) computed from ONNX Runtime's
     * pooler output in float64.
     */
    @Test
    void classificationPredictorOnHfDirectory() throws Exception {
        Path onnx = RealModels.onnxFile(RealModels.tinyBert());
        Path hf = tmp.resolve("tinybert-cls");
        Random random = new Random(17);
        int labels = 3;
        int hidden = 50;
        float[] w = new float[labels * hidden];
        float[] b = new float[labels];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        for (int i = 0; i < labels; i++) {
            b[i] = (float) random.nextGaussian();
        }
        writeHfDirectory(
                onnx,
                hf,
                ", \"id2label\": {\"0\": \"negative\", \"1\": \"neutral\", \"2\": \"positive\"}",
                List.of(
                        new CheckpointTensor("classifier.weight", new long[] {labels, hidden}, w),
                        new CheckpointTensor("classifier.bias", new long[] {labels}, b)));
        List<String> texts = List.of("good movie", "", "terrible, awful, never again", "ok");
        Criteria<String, Classifications> criteria =
                Criteria.builder()
                        .setTypes(String.class, Classifications.class)
                        .optEngine("Tilewise")
                        .optModelPath(hf)
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .build();
        try (ZooModel<String, Classifications> model = criteria.loadModel();
                Predictor<String, Classifications> predictor = model.newPredictor();
                OrtEncoder ort = new OrtEncoder(onnx, 1);
                EncoderTokenizer tokenizer =
                        EncoderTokenizer.load(hf.resolve("tokenizer.json"), 100, true)) {
            List<Classifications> result = predictor.batchPredict(texts);
            for (int i = 0; i < texts.size(); i++) {
                TokenBatch alone = tokenizer.encode(List.of(texts.get(i)));
                float[] pooled = ort.run(alone)[1];
                double[] logits = new double[labels];
                double max = Double.NEGATIVE_INFINITY;
                for (int l = 0; l < labels; l++) {
                    logits[l] = b[l];
                    for (int h = 0; h < hidden; h++) {
                        logits[l] += (double) w[l * hidden + h] * pooled[h];
                    }
                    max = Math.max(max, logits[l]);
                }
                double sum = 0;
                for (int l = 0; l < labels; l++) {
                    sum += Math.exp(logits[l] - max);
                }
                String[] names = {"negative", "neutral", "positive"};
                for (int l = 0; l < labels; l++) {
                    double expected = Math.exp(logits[l] - max) / sum;
                    assertEquals(
                            expected,
                            result.get(i).get(names[l]).getProbability(),
                            1e-5,
                            texts.get(i));
                }
            }
        }
    }

    @Test
    void configContradictingWeightsIsNamed() throws Exception {
        Path onnx = RealModels.onnxFile(RealModels.tinyBert());
        Path hf = tmp.resolve("contradiction");
        writeHfDirectory(onnx, hf, "", List.of());
        String config = Files.readString(hf.resolve("config.json"));
        Files.writeString(
                hf.resolve("config.json"),
                config.replace("\"intermediate_size\": 200", "\"intermediate_size\": 256"));
        MalformedModelException e =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(hf));
        assertTrue(
                e.getMessage().contains("config.json")
                        && e.getMessage().contains("encoder.layer.0.intermediate.dense.weight")
                        && e.getMessage().contains("200"),
                e.getMessage());
    }

    @Test
    void truncatedOnnxFileIsNamed() throws Exception {
        Path onnx = RealModels.onnxFile(RealModels.tinyBert());
        byte[] bytes = Files.readAllBytes(onnx);
        for (int cut : new int[] {bytes.length / 2, bytes.length - 1000, 100}) {
            Path truncated = tmp.resolve("truncated-" + cut + ".onnx");
            Files.write(truncated, java.util.Arrays.copyOf(bytes, cut));
            MalformedModelException e =
                    assertThrows(
                            MalformedModelException.class, () -> EncoderCheckpoint.read(truncated));
            assertTrue(e.getMessage().contains(truncated.toString()), e.getMessage());
        }
    }

    @Test
    void onnxGraphThatIsNotBertIsUnknownArchitecture() throws Exception {
        OnnxMl.ModelProto model =
                OnnxMl.ModelProto.newBuilder()
                        .setIrVersion(7)
                        .setGraph(
                                OnnxMl.GraphProto.newBuilder()
                                        .setName("add")
                                        .addNode(
                                                OnnxMl.NodeProto.newBuilder()
                                                        .setOpType("Add")
                                                        .addInput("a")
                                                        .addInput("b")
                                                        .addOutput("c")))
                        .build();
        Path file = tmp.resolve("add.onnx");
        Files.write(file, model.toByteArray());
        MalformedModelException e =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(file));
        assertTrue(
                e.getMessage().contains("add.onnx")
                        && e.getMessage().contains("unknown architecture"),
                e.getMessage());
        Files.write(tmp.resolve("noise.onnx"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
        e =
                assertThrows(
                        MalformedModelException.class,
                        () -> EncoderCheckpoint.read(tmp.resolve("noise.onnx")));
        assertTrue(e.getMessage().contains("noise.onnx"), e.getMessage());
    }

    @Test
    void longTextsAreRefusedWhenTruncationIsOff() throws Exception {
        Path dir = RealModels.tinyBert();
        try (TextEncoder encoder =
                TextEncoder.builder()
                        .setModelPath(RealModels.onnxFile(dir))
                        .optTruncation(false)
                        .build()) {
            String longText =
                    ParityTexts.all(300).stream().max((a, c) -> a.length() - c.length()).get();
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> encoder.embed(List.of("short", longText)));
            assertTrue(
                    e.getMessage().contains("text #1") && e.getMessage().contains("100"),
                    e.getMessage());
            assertEquals(50, encoder.embed("short").length);
        }
    }
}
