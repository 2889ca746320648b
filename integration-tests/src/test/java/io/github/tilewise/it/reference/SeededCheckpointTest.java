package io.github.tilewise.it.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile;
import io.github.tilewise.it.reference.SeededCheckpoint.TensorSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Proves that {@link SeededCheckpoint} regenerates transformers' reference checkpoints bit-exactly:
 * every tensor's SHA-256, exact sum and first values against the manifest that the Python script
 * wrote from the tensors transformers ran, and the written safetensors directories (single file and
 * sharded) read back by Tilewise's own reader.
 */
class SeededCheckpointTest {

    @TempDir Path tmp;

    static List<String> architectures() {
        return SeededCheckpoint.ARCHITECTURES;
    }

    /** {@code make_reference_models.py --prng-selftest}: model seed 12345, tensor 0, scale 0.2. */
    @Test
    void generatorMatchesThePythonGenerator() {
        long seed = SeededCheckpoint.tensorSeed(12345L, 0);
        assertEquals(Long.parseUnsignedLong("2454886589211414944"), seed);
        float[] expected = {
            -0.19366836547851562f,
            0.0003781557024922222f,
            -0.12899556756019592f,
            0.08218462765216827f,
            -0.16287410259246826f,
            -0.07916469871997833f,
            0.12566804885864258f
        };
        float[] got = SeededCheckpoint.generate(seed, expected.length, 0.2f, 0f);
        for (int i = 0; i < got.length; i++) {
            assertEquals(
                    Float.floatToIntBits(expected[i]), Float.floatToIntBits(got[i]), "value " + i);
        }
    }

    /** SHA-256 of whole tensors from the Python generator, with and without an offset. */
    @Test
    void generatorMatchesPythonTensorChecksums() {
        long linear = SeededCheckpoint.tensorSeed(1001L, 3);
        assertEquals(Long.parseUnsignedLong("8927971578246012719"), linear);
        float[] w = SeededCheckpoint.generate(linear, 37 * 27, 0.2f, 0f);
        assertEquals(
                "1d8d2a7c27038c5b1a7905f3ee8c9a7a8d8e6e54dab13e415c5a560ccbd1f1d7",
                SeededCheckpoint.sha256(w));
        long norm = SeededCheckpoint.tensorSeed(1006L, 5);
        assertEquals(Long.parseUnsignedLong("6193495858328576254"), norm);
        float[] g = SeededCheckpoint.generate(norm, 64, 0.1f, 1f);
        assertEquals(
                "38af01afdb22fa93fd748238c4b040cad25a7b8e1e085db5fb60ea43ba3de24d",
                SeededCheckpoint.sha256(g));
        assertEquals(0.9707033038139343f, g[0]);
    }

    @Test
    void generatorMatchesThePythonSelfTestFile() {
        assumeTrue(
                SeededCheckpoint.class.getResource(
                                SeededCheckpoint.RESOURCE_ROOT + "prng-selftest.json")
                        != null,
                "no reference files");
        JsonObject st = SeededCheckpoint.readJson("prng-selftest.json").getAsJsonObject();
        long seed =
                SeededCheckpoint.tensorSeed(
                        st.get("model_seed").getAsLong(), st.get("index").getAsInt());
        assertEquals(Long.parseUnsignedLong(st.get("seed").getAsString()), seed);
        JsonArray expected = st.getAsJsonArray("values");
        float[] got =
                SeededCheckpoint.generate(
                        seed,
                        expected.size(),
                        st.get("scale").getAsFloat(),
                        st.get("offset").getAsFloat());
        for (int i = 0; i < got.length; i++) {
            assertEquals(
                    Float.floatToIntBits(expected.get(i).getAsFloat()),
                    Float.floatToIntBits(got[i]),
                    "value " + i);
        }
    }

    @Test
    void uniformValuesStayInRange() {
        float[] v = SeededCheckpoint.generate(42L, 100_000, 1f, 0f);
        double sum = 0;
        for (float x : v) {
            assertTrue(x >= -1f && x < 1f, "out of [-1, 1): " + x);
            sum += x;
        }
        assertTrue(Math.abs(sum / v.length) < 0.01, "mean far from 0: " + sum / v.length);
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void everyTensorIsRegeneratedBitExactly(String arch) {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        SeededCheckpoint ckpt = SeededCheckpoint.load(arch);
        assertFalse(ckpt.getTensors().isEmpty(), arch + ": empty manifest");
        int seeded = 0;
        for (TensorSpec t : ckpt.getTensors()) {
            if (!"F32".equals(t.getDtype()) || t.getTiedTo() != null) {
                continue;
            }
            assertEquals(
                    SeededCheckpoint.tensorSeed(ckpt.getModelSeed(), t.getIndex()),
                    t.getSeed(),
                    arch + " " + t.getName() + ": seed");
            float[] v = ckpt.values(t);
            assertEquals(t.getSha256(), SeededCheckpoint.sha256(v), arch + " " + t.getName());
            float[] first = t.getFirst();
            for (int i = 0; i < first.length; i++) {
                assertEquals(
                        Float.floatToIntBits(first[i]),
                        Float.floatToIntBits(v[i]),
                        arch + " " + t.getName() + "[" + i + "]");
            }
            double sum = 0;
            for (float x : v) {
                sum += x;
            }
            assertEquals(
                    t.getFsum(),
                    sum,
                    1e-9 * Math.max(1.0, v.length),
                    arch + " " + t.getName() + ": sum");
            seeded++;
        }
        assertTrue(seeded > 0, arch + ": no seeded tensor");
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void writtenDirectoryHoldsEveryTensorUnderTransformersNames(String arch) throws Exception {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        SeededCheckpoint ckpt = SeededCheckpoint.load(arch);
        Path dir = ckpt.writeDirectory(tmp.resolve(arch));
        for (String f : ckpt.getFiles()) {
            assertTrue(Files.isRegularFile(dir.resolve(f)), arch + ": missing " + f);
        }
        assertTrue(Files.isRegularFile(dir.resolve("config.json")));
        assertTrue(Files.isRegularFile(dir.resolve("tokenizer.json")));
        Map<String, CheckpointTensor> read = SafetensorsFile.read(dir.resolve("model.safetensors"));
        TreeSet<String> expectedKeys = new TreeSet<>();
        for (JsonElement e : ckpt.getManifest().getAsJsonArray("safetensors_keys")) {
            expectedKeys.add(e.getAsString());
        }
        assertEquals(expectedKeys, new TreeSet<>(read.keySet()), arch + ": tensor names");
        for (TensorSpec t : ckpt.getTensors()) {
            if (!t.isWritten() || !"F32".equals(t.getDtype())) {
                continue;
            }
            CheckpointTensor c = read.get(t.getFileKey());
            assertNotNull(c, t.getFileKey());
            assertArrayEquals(t.getShape(), c.getShape(), t.getFileKey());
            assertEquals(t.getSha256(), SeededCheckpoint.sha256(c.getData()), t.getFileKey());
        }
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void shardedDirectoryHasAnIndexCoveringEveryTensor(String arch) throws Exception {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        SeededCheckpoint ckpt = SeededCheckpoint.load(arch);
        Path dir = ckpt.writeShardedDirectory(tmp.resolve(arch + "-sharded"), 3);
        assertFalse(Files.exists(dir.resolve("model.safetensors")));
        JsonObject index =
                JsonParser.parseString(
                                Files.readString(dir.resolve("model.safetensors.index.json")))
                        .getAsJsonObject();
        JsonObject weightMap = index.getAsJsonObject("weight_map");
        Map<String, CheckpointTensor> all = new HashMap<>();
        long bytes = 0;
        for (String file :
                new TreeSet<>(
                        weightMap.asMap().values().stream()
                                .map(JsonElement::getAsString)
                                .toList())) {
            Map<String, CheckpointTensor> part = SafetensorsFile.read(dir.resolve(file));
            for (var e : part.entrySet()) {
                assertEquals(file, weightMap.get(e.getKey()).getAsString(), e.getKey());
                all.put(e.getKey(), e.getValue());
                bytes += 4L * e.getValue().getData().length;
            }
        }
        assertEquals(weightMap.size(), all.size(), arch + ": index and shards disagree");
        assertEquals(index.getAsJsonObject("metadata").get("total_size").getAsLong(), bytes);
        for (TensorSpec t : ckpt.getTensors()) {
            if (t.isWritten() && "F32".equals(t.getDtype())) {
                assertEquals(
                        t.getSha256(),
                        SeededCheckpoint.sha256(all.get(t.getFileKey()).getData()),
                        t.getFileKey());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void referenceOutputsAreWithinTheTwoMegabyteLimit(String arch) {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        SeededCheckpoint ckpt = SeededCheckpoint.load(arch);
        for (String f : ckpt.getFiles()) {
            assertTrue(
                    SeededCheckpoint.readResource(arch + "/" + f).length < 2_000_000,
                    arch + "/" + f + " is 2 MB or more");
        }
        assertTrue(ckpt.getFiles().contains("outputs.json"), arch + ": no outputs.json");
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void referenceOutputsAreConsistentWithTheCheckpoint(String arch) {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        JsonObject config = SeededCheckpoint.readJson(arch + "/config.json").getAsJsonObject();
        int hidden = config.get(config.has("dim") ? "dim" : "hidden_size").getAsInt();
        int vocab = config.get("vocab_size").getAsInt();
        ReferenceOutputs outputs = ReferenceOutputs.load(arch);
        assertFalse(outputs.getCases().isEmpty(), arch);
        for (ReferenceOutputs.Case c : outputs.getCases()) {
            String what = arch + " " + c.getName();
            long[][] ids = c.getInputIds();
            long[][] mask = c.getAttentionMask();
            int[] lengths = c.getLengths();
            assertEquals(ids.length, mask.length, what);
            assertTrue(c.tokenizerIdsMatch(), what + ": tokenizer ids differ");
            double[][][] h32 = c.getLastHiddenState("fp32");
            double[][][] h64 = c.getLastHiddenState("fp64");
            int[] rows = c.getRows();
            for (int b = 0; b < ids.length; b++) {
                assertEquals(c.getSeqLen(), ids[b].length, what);
                for (int j = 0; j < ids[b].length; j++) {
                    assertTrue(ids[b][j] >= 0 && ids[b][j] < vocab, what + ": id out of range");
                    assertEquals(j < lengths[b] ? 1 : 0, mask[b][j], what + ": mask");
                }
                assertEquals(rows.length, h32[b].length, what);
                for (int r = 0; r < rows.length; r++) {
                    boolean real = rows[r] < lengths[b];
                    assertEquals(real, h32[b][r] != null, what + ": row " + rows[r]);
                    if (real) {
                        assertEquals(hidden, h32[b][r].length, what);
                        // transformers' ModernBERT in float64 gives NaN at every row of a padded
                        // sequence (its padding mask in float64); its float32 rows, which the
                        // parity tests use, are finite. Only that case may skip the comparison.
                        boolean fp64Nan = Arrays.stream(h64[b][r]).anyMatch(Double::isNaN);
                        if (fp64Nan) {
                            assertTrue(
                                    arch.equals("modernbert") && lengths[b] < c.getSeqLen(),
                                    what + ": NaN in fp64 row " + rows[r]);
                            assertTrue(
                                    Arrays.stream(h32[b][r]).allMatch(Double::isFinite),
                                    what + ": fp32 row " + rows[r] + " not finite");
                            continue;
                        }
                        for (int k = 0; k < hidden; k++) {
                            assertEquals(h64[b][r][k], h32[b][r][k], 1e-4, what + " fp32 vs fp64");
                        }
                    }
                }
                assertEquals(hidden, c.getMeanPooled("fp32")[b].length, what);
            }
        }
    }

    @Test
    void unknownArchitectureIsAClearError() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> SeededCheckpoint.load("gpt-17"));
        assertTrue(e.getMessage().contains("gpt-17/manifest.json"), e.getMessage());
    }
}
