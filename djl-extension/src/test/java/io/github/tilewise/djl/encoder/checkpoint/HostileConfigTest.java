package io.github.tilewise.djl.encoder.checkpoint;

import static io.github.tilewise.djl.encoder.checkpoint.Hostile.assertMalformed;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crafted {@code config.json} files next to a small valid {@code model.safetensors}: each absurd or
 * contradicting field must fail, naming {@code config.json} and the field, before any layer is
 * built (a thousand layers or a 2^31 hidden size would otherwise be built for a minute or run out
 * of memory).
 */
class HostileConfigTest {

    @TempDir Path dir;

    @BeforeEach
    void weights() throws Exception {
        SafetensorsFile.write(dir.resolve("model.safetensors"), TinyCheckpoints.tensors(7));
    }

    private void config(String field, Object value) throws Exception {
        JsonObject o = TinyCheckpoints.configJson();
        if (value instanceof Number) {
            o.add(field, new JsonPrimitive((Number) value));
        } else if (value instanceof JsonObject || value instanceof JsonArray) {
            o.add(field, (com.google.gson.JsonElement) value);
        } else {
            o.addProperty(field, String.valueOf(value));
        }
        Files.writeString(dir.resolve("config.json"), o.toString());
    }

    @Test
    void theTinyCheckpointReads() throws Exception {
        config("hidden_act", "gelu");
        EncoderCheckpoint c = EncoderCheckpoint.read(dir);
        assertEquals(TinyCheckpoints.config().toString(), c.getConfig().toString());
    }

    @Test
    void absurdSizesAreOutOfRange() throws Exception {
        String[] fields = {
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "vocab_size",
            "max_position_embeddings",
            "type_vocab_size"
        };
        for (String field : fields) {
            for (long v : new long[] {100_000_000, Integer.MAX_VALUE, -1}) {
                config(field, v);
                assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", field);
            }
        }
        config("num_attention_heads", 0);
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "num_attention_heads");
    }

    @Test
    void valuesBeyondAnIntAreNotWrapped() throws Exception {
        // 2^32 + 2 read by getAsInt() is 2: the right layer count, silently.
        config("num_hidden_layers", 4294967298L);
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "num_hidden_layers");
        config("num_hidden_layers", new BigInteger("18446744073709551618"));
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "num_hidden_layers");
        config("num_hidden_layers", 2.5);
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "num_hidden_layers");
    }

    @Test
    void sizesContradictingTheWeightsNameTheField() throws Exception {
        // Within range, but the weights file holds 2 layers, a 12-word vocabulary, ...
        Object[][] cases = {
            {"num_hidden_layers", 1000},
            {"num_hidden_layers", 1},
            {"vocab_size", 1_000_000},
            {"max_position_embeddings", 1 << 20},
            {"intermediate_size", 16},
            {"type_vocab_size", 3},
            {"hidden_size", 8},
        };
        for (Object[] c : cases) {
            config((String) c[0], c[1]);
            assertMalformed(
                    () -> EncoderCheckpoint.read(dir),
                    "config.json",
                    (String) c[0],
                    "contradicts the weights");
        }
        // hidden_size must divide into the heads.
        config("num_attention_heads", 3);
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "num_attention_heads");
    }

    @Test
    void fieldsOfTheWrongJsonTypeAreMalformedNotClassCasts() throws Exception {
        config("id2label", new JsonArray());
        writeClassifier();
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "id2label");
        JsonObject bad = new JsonObject();
        bad.addProperty("zero", "x");
        bad.addProperty("1", "y");
        config("id2label", bad);
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "id2label");
        config("layer_norm_eps", new JsonObject());
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "layer_norm_eps");
        config("model_type", new JsonArray());
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "model_type");
        config("hidden_size", "four");
        assertMalformed(() -> EncoderCheckpoint.read(dir), "config.json", "hidden_size");
    }

    /** Adds a pooler and a 2-label classifier to the weights. */
    private void writeClassifier() throws Exception {
        List<CheckpointTensor> t = new ArrayList<>(TinyCheckpoints.tensors(7));
        int h = TinyCheckpoints.HIDDEN;
        t.add(new CheckpointTensor("pooler.dense.weight", new long[] {h, h}, new float[h * h]));
        t.add(new CheckpointTensor("pooler.dense.bias", new long[] {h}, new float[h]));
        t.add(new CheckpointTensor("classifier.weight", new long[] {2, h}, new float[2 * h]));
        t.add(new CheckpointTensor("classifier.bias", new long[] {2}, new float[2]));
        SafetensorsFile.write(dir.resolve("model.safetensors"), t);
    }
}
