package io.github.tilewise.djl.encoder.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import com.google.gson.JsonObject;
import io.github.tilewise.djl.encoder.CheckpointParameter;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pooling, normalisation and maxLength taken from a model's sentence-transformers files when the
 * user does not choose them, in {@link TextEncoder} and on the DJL Criteria path, on a random BERT
 * written as a Hugging Face directory; the expected vectors are computed here in float64 from the
 * model's own token vectors.
 */
class TextEncoderDefaultsTest {

    private static final int HIDDEN = 16;
    private static final int POSITIONS = 40;
    private static final String[] WORDS = {
        "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "away", "and", "slept", "##s",
        "big", "small", "red"
    };
    private static final List<String> TEXTS =
            List.of(
                    "the cat sat on the mat",
                    "a dog",
                    "",
                    "the big red dogs ran far away and slept");

    @TempDir Path dir;

    /** config.json, model.safetensors (random, seeded) and a WordPiece tokenizer.json. */
    private void writeModel(boolean lowercaseTokenizer) throws IOException {
        JsonObject c = new JsonObject();
        c.addProperty("model_type", "bert");
        c.addProperty("hidden_size", HIDDEN);
        c.addProperty("num_attention_heads", 2);
        c.addProperty("num_hidden_layers", 2);
        c.addProperty("intermediate_size", 32);
        c.addProperty("max_position_embeddings", POSITIONS);
        c.addProperty("vocab_size", 5 + WORDS.length);
        c.addProperty("type_vocab_size", 2);
        Files.writeString(dir.resolve("config.json"), c.toString());
        EncoderConfig config =
                EncoderConfig.builder()
                        .setHiddenSize(HIDDEN)
                        .setNumHeads(2)
                        .setNumLayers(2)
                        .setIntermediateSize(32)
                        .setMaxPositions(POSITIONS)
                        .setVocabSize(5 + WORDS.length)
                        .optTypeVocabSize(2)
                        .build();
        Random r = new Random(7);
        List<CheckpointTensor> tensors = new ArrayList<>();
        for (CheckpointParameter p :
                new TextEncoderBlock(config, Pooling.CLS, false).getCheckpointParameters()) {
            long[] shape = p.getShape().getShape();
            float[] data = new float[(int) p.getShape().size()];
            boolean gamma = p.getName().endsWith("LayerNorm.weight");
            double scale = shape.length == 2 ? 1 / Math.sqrt(shape[1]) : 0.1;
            for (int i = 0; i < data.length; i++) {
                data[i] = (float) (gamma ? 1 + 0.2 * r.nextGaussian() : scale * r.nextGaussian());
            }
            tensors.add(new CheckpointTensor(p.getName(), shape, data));
        }
        SafetensorsFile.write(dir.resolve("model.safetensors"), tensors);
        StringBuilder vocab =
                new StringBuilder("\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"[MASK]\":4");
        for (int i = 0; i < WORDS.length; i++) {
            vocab.append(",\"").append(WORDS[i]).append("\":").append(5 + i);
        }
        Files.writeString(
                dir.resolve("tokenizer.json"),
                "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[],"
                        + "\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,"
                        + "\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":"
                        + lowercaseTokenizer
                        + "},\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
                        + "\"post_processor\":{\"type\":\"BertProcessing\","
                        + "\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2]},"
                        + "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
                        + "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                        + "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,"
                        + "\"vocab\":{"
                        + vocab
                        + "}}}");
    }

    private void writeModules(String poolingFlag, boolean normalize, String extra)
            throws IOException {
        StringBuilder m =
                new StringBuilder(
                        "[{\"idx\":0,\"name\":\"0\",\"path\":\"\","
                                + "\"type\":\"sentence_transformers.models.Transformer\"},"
                                + "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\","
                                + "\"type\":\"sentence_transformers.models.Pooling\"}");
        if (extra != null) {
            m.append(",").append(extra);
        }
        if (normalize) {
            m.append(
                    ",{\"idx\":3,\"name\":\"3\",\"path\":\"3_Normalize\","
                            + "\"type\":\"sentence_transformers.models.Normalize\"}");
        }
        Files.writeString(dir.resolve("modules.json"), m.append("]").toString());
        Files.createDirectories(dir.resolve("1_Pooling"));
        Files.writeString(
                dir.resolve("1_Pooling/config.json"),
                "{\"word_embedding_dimension\": " + HIDDEN + ", \"" + poolingFlag + "\": true}");
    }

    private TextEncoder.Builder builder() {
        return TextEncoder.builder().setModelPath(dir);
    }

    /** The expected text vectors from the model's token vectors, in float64. */
    private static float[][] expected(float[][][] tokens, Pooling pooling, boolean normalize) {
        float[][] out = new float[tokens.length][];
        for (int b = 0; b < tokens.length; b++) {
            double[] v = new double[HIDDEN];
            float[][] t = tokens[b];
            for (int k = 0; k < HIDDEN; k++) {
                if (pooling == Pooling.CLS) {
                    v[k] = t[0][k];
                } else if (pooling == Pooling.LAST_TOKEN) {
                    v[k] = t[t.length - 1][k];
                } else {
                    double s = 0;
                    for (float[] row : t) {
                        s += row[k];
                    }
                    v[k] = s / t.length;
                }
            }
            double norm = 0;
            for (double x : v) {
                norm += x * x;
            }
            norm = normalize ? Math.max(Math.sqrt(norm), 1e-12) : 1;
            out[b] = new float[HIDDEN];
            for (int k = 0; k < HIDDEN; k++) {
                out[b][k] = (float) (v[k] / norm);
            }
        }
        return out;
    }

    private static void assertClose(float[][] want, float[][] got) {
        assertEquals(want.length, got.length);
        for (int b = 0; b < want.length; b++) {
            assertArrayEquals(want[b], got[b], 1e-5f, "text #" + b);
        }
    }

    @Test
    void modulesJsonSayingClsGivesClsVectorsWithoutAsking() throws Exception {
        writeModel(true);
        writeModules("pooling_mode_cls_token", false, null);
        try (TextEncoder e = builder().build()) {
            assertEquals(Pooling.CLS, e.getBlock().getPooling());
            assertFalse(e.getBlock().isNormalize());
            float[][][] tokens = e.embedTokens(TEXTS);
            assertClose(expected(tokens, Pooling.CLS, false), e.embed(TEXTS));
        }
        // The same with a Normalize module: unit CLS vectors.
        writeModules("pooling_mode_cls_token", true, null);
        try (TextEncoder e = builder().build()) {
            assertTrue(e.getBlock().isNormalize());
            assertClose(expected(e.embedTokens(TEXTS), Pooling.CLS, true), e.embed(TEXTS));
        }
        // Last-token pooling, too.
        writeModules("pooling_mode_lasttoken", false, null);
        try (TextEncoder e = builder().build()) {
            assertEquals(Pooling.LAST_TOKEN, e.getBlock().getPooling());
            assertClose(expected(e.embedTokens(TEXTS), Pooling.LAST_TOKEN, false), e.embed(TEXTS));
        }
    }

    @Test
    void explicitChoiceWinsAndNoFilesKeepTheDefaults() throws Exception {
        writeModel(true);
        writeModules("pooling_mode_cls_token", true, null);
        try (TextEncoder e = builder().optPooling(Pooling.MEAN).optNormalize(false).build()) {
            assertEquals(Pooling.MEAN, e.getBlock().getPooling());
            assertClose(expected(e.embedTokens(TEXTS), Pooling.MEAN, false), e.embed(TEXTS));
        }
        Files.delete(dir.resolve("modules.json"));
        try (TextEncoder e = builder().build()) {
            assertEquals(ModelDefaults.DEFAULT_POOLING, e.getBlock().getPooling());
            assertEquals(Pooling.MEAN, e.getBlock().getPooling());
            assertFalse(e.getBlock().isNormalize());
            assertEquals(POSITIONS, e.getTokenizer().getMaxLength());
        }
    }

    @Test
    void maxSeqLengthCapsTheTokenizerAndLowerCaseIsApplied() throws Exception {
        writeModel(false);
        writeModules("pooling_mode_mean_tokens", false, null);
        Files.writeString(
                dir.resolve("sentence_bert_config.json"),
                "{\"max_seq_length\": 6, \"do_lower_case\": true}");
        try (TextEncoder e = builder().build()) {
            assertEquals(6, e.getTokenizer().getMaxLength());
            assertTrue(e.getTokenizer().isLowerCase());
            assertEquals(6, e.embedTokens(List.of(TEXTS.get(3)))[0].length);
            // "THE CAT" reaches the vocabulary only lower-cased (the tokenizer itself keeps case).
            long[] ids = e.getTokenizer().encode(List.of("THE CAT")).getInputIds();
            assertArrayEquals(new long[] {2, 5, 6, 3}, ids);
        }
        // A max_seq_length beyond the position table leaves the table's length.
        Files.writeString(dir.resolve("sentence_bert_config.json"), "{\"max_seq_length\": 512}");
        try (TextEncoder e = builder().build()) {
            assertEquals(POSITIONS, e.getTokenizer().getMaxLength());
        }
        try (TextEncoder e = builder().optMaxLength(9).build()) {
            assertEquals(9, e.getTokenizer().getMaxLength());
        }
        IllegalArgumentException tooLong =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> builder().optMaxLength(POSITIONS + 1).build());
        assertTrue(tooLong.getMessage().contains("exceeds"), tooLong.getMessage());
    }

    @Test
    void unsupportedModulesFailOnlyWhenTheirPoolingIsNeeded() throws Exception {
        writeModel(true);
        writeModules(
                "pooling_mode_mean_tokens",
                true,
                "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Dense\","
                        + "\"type\":\"sentence_transformers.models.Dense\"}");
        UnsupportedOperationException e =
                assertThrows(UnsupportedOperationException.class, () -> builder().build());
        assertTrue(e.getMessage().contains("2_Dense"), e.getMessage());
        try (TextEncoder explicit = builder().optPooling(Pooling.MEAN).build()) {
            assertEquals(Pooling.MEAN, explicit.getBlock().getPooling());
            // Normalisation still follows the Normalize module.
            assertTrue(explicit.getBlock().isNormalize());
        }
        // A Pooling module contradicting the encoder's width is a malformed model.
        writeModules("pooling_mode_mean_tokens", false, null);
        Files.writeString(
                dir.resolve("1_Pooling/config.json"),
                "{\"word_embedding_dimension\": 384, \"pooling_mode_mean_tokens\": true}");
        ai.djl.MalformedModelException m =
                assertThrows(ai.djl.MalformedModelException.class, () -> builder().build());
        assertTrue(m.getMessage().contains("word_embedding_dimension"), m.getMessage());
    }

    @Test
    void criteriaPathTakesTheModelsPooling() throws Exception {
        writeModel(true);
        writeModules("pooling_mode_cls_token", true, null);
        Files.writeString(dir.resolve("sentence_bert_config.json"), "{\"max_seq_length\": 8}");
        float[][] want;
        try (TextEncoder e = builder().build()) {
            want = expected(e.embedTokens(TEXTS), Pooling.CLS, true);
        }
        try (ZooModel<String, float[]> model = criteria(null).loadModel();
                Predictor<String, float[]> p = model.newPredictor()) {
            assertClose(want, p.batchPredict(TEXTS).toArray(new float[0][]));
        }
        // An explicit Criteria argument wins.
        float[][] mean;
        try (TextEncoder e = builder().optPooling(Pooling.MEAN).optNormalize(false).build()) {
            mean = e.embed(TEXTS);
            assertClose(expected(e.embedTokens(TEXTS), Pooling.MEAN, false), mean);
        }
        try (ZooModel<String, float[]> model = criteria("mean").loadModel();
                Predictor<String, float[]> p = model.newPredictor()) {
            assertClose(mean, p.batchPredict(TEXTS).toArray(new float[0][]));
        }
    }

    private Criteria<String, float[]> criteria(String pooling) {
        Criteria.Builder<String, float[]> b =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(dir)
                        .optTranslatorFactory(new EncoderTranslatorFactory());
        if (pooling != null) {
            b.optArgument("pooling", pooling).optArgument("normalize", "false");
        }
        return b.build();
    }
}
