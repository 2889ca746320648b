package io.github.tilewise.djl.encoder.checkpoint;

import static io.github.tilewise.djl.encoder.checkpoint.Hostile.assertMalformed;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.encoder.Pooling;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading sentence-transformers' {@code modules.json} and friends, valid and hostile. */
class SentenceTransformerConfigTest {

    private static final String TRANSFORMER =
            "{\"idx\":0,\"name\":\"0\",\"path\":\"\","
                    + "\"type\":\"sentence_transformers.models.Transformer\"}";
    private static final String POOLING =
            "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\","
                    + "\"type\":\"sentence_transformers.models.Pooling\"}";
    private static final String NORMALIZE =
            "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Normalize\","
                    + "\"type\":\"sentence_transformers.models.Normalize\"}";

    @TempDir Path dir;

    /** all-MiniLM-L6-v2's files as sentence-transformers writes them. */
    private void writeMiniLmLayout() throws IOException {
        modules(TRANSFORMER, POOLING, NORMALIZE);
        pooling(
                "{\"word_embedding_dimension\": 384, \"pooling_mode_cls_token\": false,"
                        + " \"pooling_mode_mean_tokens\": true, \"pooling_mode_max_tokens\": false,"
                        + " \"pooling_mode_mean_sqrt_len_tokens\": false,"
                        + " \"pooling_mode_weightedmean_tokens\": false,"
                        + " \"pooling_mode_lasttoken\": false, \"include_prompt\": true}");
        Files.writeString(
                dir.resolve("sentence_bert_config.json"),
                "{\"max_seq_length\": 256, \"do_lower_case\": false}");
    }

    private void modules(String... modules) throws IOException {
        Files.writeString(dir.resolve("modules.json"), "[" + String.join(",", modules) + "]");
    }

    private void pooling(String json) throws IOException {
        Files.createDirectories(dir.resolve("1_Pooling"));
        Files.writeString(dir.resolve("1_Pooling/config.json"), json);
    }

    private void poolingMode(String flag) throws IOException {
        pooling("{\"word_embedding_dimension\": 8, \"" + flag + "\": true}");
    }

    @Test
    void readsTheMiniLmLayout() throws Exception {
        writeMiniLmLayout();
        SentenceTransformerConfig c = SentenceTransformerConfig.read(dir);
        assertEquals(Optional.of(Pooling.MEAN), c.getPooling());
        assertEquals(List.of(Pooling.MEAN), c.getPoolingModes());
        assertTrue(c.isNormalize());
        assertEquals(OptionalInt.of(256), c.getMaxSeqLength());
        assertFalse(c.isDoLowerCase());
        assertEquals(OptionalInt.of(384), c.getWordEmbeddingDimension());
        assertTrue(c.isIncludePrompt());
        assertTrue(c.getUnsupportedModules().isEmpty());
        // find: from the directory, from a model file in it, from an onnx/ folder below it.
        assertEquals(dir, SentenceTransformerConfig.find(dir).get().getDirectory());
        Files.writeString(dir.resolve("model.onnx"), "x");
        assertTrue(SentenceTransformerConfig.find(dir.resolve("model.onnx")).isPresent());
        Files.createDirectories(dir.resolve("onnx"));
        Files.writeString(dir.resolve("onnx/model.onnx"), "x");
        assertTrue(SentenceTransformerConfig.find(dir.resolve("onnx/model.onnx")).isPresent());
        assertTrue(SentenceTransformerConfig.find(dir.resolve("onnx")).isPresent());
    }

    @Test
    void eachModeAndNoNormalize() throws Exception {
        String[][] flags = {
            {"pooling_mode_cls_token", "CLS"},
            {"pooling_mode_mean_tokens", "MEAN"},
            {"pooling_mode_max_tokens", "MAX"},
            {"pooling_mode_mean_sqrt_len_tokens", "MEAN_SQRT_LEN"},
            {"pooling_mode_weightedmean_tokens", "WEIGHTED_MEAN"},
            {"pooling_mode_lasttoken", "LAST_TOKEN"},
        };
        modules(TRANSFORMER, POOLING);
        for (String[] f : flags) {
            poolingMode(f[0]);
            SentenceTransformerConfig c = SentenceTransformerConfig.read(dir);
            assertEquals(Optional.of(Pooling.valueOf(f[1])), c.getPooling(), f[0]);
            assertFalse(c.isNormalize());
            assertFalse(c.getMaxSeqLength().isPresent());
        }
        // The constructor's string form.
        pooling("{\"pooling_mode\": \"lasttoken\"}");
        assertEquals(
                Optional.of(Pooling.LAST_TOKEN), SentenceTransformerConfig.read(dir).getPooling());
        // Old layout: the Transformer module in 0_Transformer with its sentence_bert_config.json.
        Files.createDirectories(dir.resolve("0_Transformer"));
        Files.writeString(
                dir.resolve("0_Transformer/sentence_bert_config.json"),
                "{\"max_seq_length\": 128, \"do_lower_case\": true}");
        modules(TRANSFORMER.replace("\"path\":\"\"", "\"path\":\"0_Transformer\""), POOLING);
        SentenceTransformerConfig old = SentenceTransformerConfig.read(dir);
        assertEquals(OptionalInt.of(128), old.getMaxSeqLength());
        assertTrue(old.isDoLowerCase());
        // No Pooling module at all: no pooling of its own.
        modules(TRANSFORMER);
        assertEquals(Optional.empty(), SentenceTransformerConfig.read(dir).getPooling());
        // No modules.json: nothing to find.
        Files.delete(dir.resolve("modules.json"));
        assertEquals(Optional.empty(), SentenceTransformerConfig.find(dir));
        assertThrows(NoSuchFileException.class, () -> SentenceTransformerConfig.read(dir));
    }

    @Test
    void combinationsDenseAndUnknownModulesAreRecordedThenRefusedWhenUsed() throws Exception {
        modules(TRANSFORMER, POOLING);
        pooling("{\"pooling_mode_mean_tokens\": true, \"pooling_mode_cls_token\": true}");
        SentenceTransformerConfig c = SentenceTransformerConfig.read(dir);
        // sentence-transformers' concatenation order: cls before mean.
        assertEquals(List.of(Pooling.CLS, Pooling.MEAN), c.getPoolingModes());
        UnsupportedOperationException e =
                assertThrows(UnsupportedOperationException.class, c::getPooling);
        assertTrue(e.getMessage().contains("[CLS, MEAN]"), e.getMessage());

        poolingMode("pooling_mode_mean_tokens");
        modules(
                TRANSFORMER,
                POOLING,
                "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Dense\","
                        + "\"type\":\"sentence_transformers.models.Dense\"}",
                NORMALIZE.replace("\"idx\":2", "\"idx\":3"));
        c = SentenceTransformerConfig.read(dir);
        e = assertThrows(UnsupportedOperationException.class, c::getPooling);
        assertTrue(
                e.getMessage().contains("2_Dense") && e.getMessage().contains("Dense"),
                e.getMessage());
        assertEquals(List.of(Pooling.MEAN), c.getPoolingModes());

        modules(
                TRANSFORMER,
                POOLING,
                "{\"idx\":2,\"name\":\"2\",\"path\":\"2_X\",\"type\":\"my.package.Custom\"}");
        e =
                assertThrows(
                        UnsupportedOperationException.class,
                        () -> SentenceTransformerConfig.read(dir).getPooling());
        assertTrue(e.getMessage().contains("my.package.Custom"), e.getMessage());
    }

    @Test
    void pathTraversalIsRefused() throws Exception {
        Path outside = dir.resolve("outside");
        Path model = dir.resolve("model");
        Files.createDirectories(outside);
        Files.createDirectories(model);
        Files.writeString(outside.resolve("config.json"), "{\"pooling_mode_cls_token\": true}");
        String[] paths = {
            "../outside", "../../etc", "/etc", "1_Pooling/../../outside", "..", "a\\\\..\\\\b"
        };
        for (String p : paths) {
            Files.writeString(
                    model.resolve("modules.json"),
                    "[{\"idx\":1,\"name\":\"1\",\"path\":\""
                            + p
                            + "\",\"type\":\"sentence_transformers.models.Pooling\"}]");
            assertMalformed(() -> SentenceTransformerConfig.read(model), "modules.json", "path");
        }
        // A link inside the directory leading out of it.
        try {
            Files.createSymbolicLink(model.resolve("1_Pooling"), outside);
        } catch (UnsupportedOperationException | IOException e) {
            return;
        }
        Files.writeString(model.resolve("modules.json"), "[" + POOLING + "]");
        assertMalformed(
                () -> SentenceTransformerConfig.read(model), "modules.json", "out of the model");
    }

    @Test
    void hostileValuesAreNamed() throws Exception {
        modules(TRANSFORMER, POOLING);
        String[][] cases = {
            {"{\"pooling_mode_cls_token\": \"true\"}", "pooling_mode_cls_token"},
            {"{\"pooling_mode_cls_token\": 1}", "pooling_mode_cls_token"},
            {"{\"pooling_mode_cls_token\": {}}", "pooling_mode_cls_token"},
            {"{\"pooling_mode_mean_tokens\": false}", "no pooling_mode"},
            {"{}", "no pooling_mode"},
            {"{\"pooling_mode_median_tokens\": true}", "unknown pooling mode"},
            {"{\"pooling_mode\": 7}", "pooling_mode"},
            {"{\"pooling_mode\": \"median\"}", "median"},
            {
                "{\"pooling_mode_cls_token\": true, \"word_embedding_dimension\": 1e30}",
                "word_embedding_dimension"
            },
            {
                "{\"pooling_mode_cls_token\": true, \"word_embedding_dimension\": 99999999999}",
                "word_embedding_dimension"
            },
            {
                "{\"pooling_mode_cls_token\": true, \"word_embedding_dimension\": -4}",
                "word_embedding_dimension"
            },
            {
                "{\"pooling_mode_cls_token\": true, \"word_embedding_dimension\": 1.5}",
                "word_embedding_dimension"
            },
            {"{\"pooling_mode_cls_token\": true, \"include_prompt\": \"no\"}", "include_prompt"},
            {"[true]", "not a JSON object"},
            {"{\"pooling_mode_cls_token\": tru", "not valid JSON"},
        };
        for (String[] c : cases) {
            pooling(c[0]);
            assertMalformed(() -> SentenceTransformerConfig.read(dir), "config.json", c[1]);
        }
        poolingMode("pooling_mode_cls_token");
        String[][] sbert = {
            {"{\"max_seq_length\": 1e30}", "max_seq_length"},
            {"{\"max_seq_length\": 0}", "max_seq_length"},
            {"{\"max_seq_length\": 123456789012}", "max_seq_length"},
            {"{\"max_seq_length\": \"512\"}", "max_seq_length"},
            {"{\"do_lower_case\": \"yes\"}", "do_lower_case"},
        };
        for (String[] c : sbert) {
            Files.writeString(dir.resolve("sentence_bert_config.json"), c[0]);
            assertMalformed(
                    () -> SentenceTransformerConfig.read(dir), "sentence_bert_config.json", c[1]);
        }
        Files.writeString(dir.resolve("sentence_bert_config.json"), "{\"max_seq_length\": null}");
        assertFalse(SentenceTransformerConfig.read(dir).getMaxSeqLength().isPresent());
    }

    @Test
    void hostileModulesFile() throws Exception {
        poolingMode("pooling_mode_cls_token");
        String[][] cases = {
            {"{}", "not a JSON array"},
            {"[1]", "not an object"},
            {"[{\"path\": \"1_Pooling\"}]", "has no type"},
            {"[{\"type\": 5, \"path\": \"1_Pooling\"}]", "type is not a string"},
            {
                "[{\"type\": \"sentence_transformers.models.Pooling\", \"path\": [1]}]",
                "path is not a string"
            },
            {"[" + "{\"type\":\"x\"},".repeat(65) + "{\"type\":\"x\"}]", "more than 64"},
            {"not json [", "not valid JSON"},
            {"[".repeat(100_000), "not valid JSON"},
        };
        for (String[] c : cases) {
            Files.writeString(dir.resolve("modules.json"), c[0]);
            assertMalformed(() -> SentenceTransformerConfig.read(dir), "modules.json", c[1]);
        }
        Files.write(dir.resolve("modules.json"), new byte[] {'[', (byte) 0xff, (byte) 0xfe, ']'});
        assertMalformed(() -> SentenceTransformerConfig.read(dir), "modules.json", "UTF-8");
        Files.writeString(
                dir.resolve("modules.json"),
                "[" + " ".repeat((int) SentenceTransformerConfig.MAX_FILE_BYTES) + "]");
        assertMalformed(() -> SentenceTransformerConfig.read(dir), "modules.json", "bytes");
        // A Pooling module whose config.json is missing is named.
        modules(TRANSFORMER, POOLING.replace("1_Pooling", "9_Pooling"));
        NoSuchFileException e =
                assertThrows(NoSuchFileException.class, () -> SentenceTransformerConfig.read(dir));
        assertTrue(e.getMessage().contains("9_Pooling"), e.getMessage());
    }
}
