package io.github.tilewise.djl.encoder.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import ai.onnx.proto.OnnxMl.ModelProto;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.lowp.OrtQuantizedImport;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes the checkpoint parsers (ONNX, the ONNX Runtime quantized importer, safetensors, and a
 * Hugging Face directory's {@code config.json} + {@code model.safetensors}) with seeded random
 * mutants of small valid seeds. Every outcome must be success or a documented exception ({@link
 * MalformedModelException}, {@link IOException}) naming the file; anything else, or a parse over 10
 * s, fails with the seed and the mutant.
 *
 * <p>The normal test run does {@code tilewise.fuzz.iterations} (default 2,000) iterations; the long
 * run (100,000) is {@code mvn -pl djl-extension test-compile surefire:test@hostile-files -Pfuzz
 * -Dtest=ParserFuzzTest}; set {@code tilewise.fuzz.iterations} and {@code tilewise.fuzz.seed} to
 * replay or extend (see docs/RELIABILITY.md).
 */
class ParserFuzzTest {

    @TempDir Path work;

    private final ModelProto onnxSeed = TinyCheckpoints.onnxEncoder(1);
    private final ModelProto ortSeed = TinyCheckpoints.ortQuantized(1);

    @Test
    void seedsParse() throws Exception {
        for (FuzzHarness.Target t : targets()) {
            Path dir = Files.createDirectories(work.resolve(t.name()));
            for (Map.Entry<String, byte[]> f : seedFiles(t.name()).entrySet()) {
                Files.write(dir.resolve(f.getKey()), f.getValue());
            }
            t.parse(dir);
        }
    }

    @Test
    void mutantsParseOrFailWithADocumentedException() throws Exception {
        int iterations = Integer.getInteger("tilewise.fuzz.iterations", 2000);
        long seed = Long.getLong("tilewise.fuzz.seed", 13);
        Path crashDir = Path.of("target", "fuzz-crashes");
        FuzzHarness h = new FuzzHarness(work, crashDir);
        long start = System.nanoTime();
        h.run(targets(), seed, iterations);
        double seconds = (System.nanoTime() - start) / 1e9;
        String summary =
                String.format(
                        "parser fuzz: %d iterations from seed %d in %.1f s, %d crashes%n%s%n%s",
                        iterations,
                        seed,
                        seconds,
                        h.crashes().size(),
                        h.outcomes(),
                        String.join("\n", h.crashes()));
        System.out.println(summary);
        Files.createDirectories(Path.of("target"));
        Files.writeString(Path.of("target", "fuzz-summary-" + seed + ".txt"), summary);
        assertTrue(h.crashes().isEmpty(), summary);
        int total =
                h.outcomes().values().stream()
                        .mapToInt(m -> m.values().stream().mapToInt(Integer::intValue).sum())
                        .sum();
        assertEquals(iterations, total);
    }

    private List<FuzzHarness.Target> targets() {
        return List.of(
                target(
                        "onnx",
                        dir -> {
                            EncoderCheckpoint c =
                                    OnnxCheckpointReader.read(dir.resolve("model.onnx"));
                            // As a load does next, before any weight is copied.
                            c.checkShapes(
                                    new TextEncoderBlock(c.getConfig(), Pooling.CLS, false)
                                            .getCheckpointParameters());
                        }),
                target("ort", dir -> OrtQuantizedImport.read(dir.resolve("model.onnx")).close()),
                target(
                        "safetensors",
                        dir -> SafetensorsFile.read(dir.resolve("model.safetensors"))),
                target("huggingface", EncoderCheckpoint::read));
    }

    /** The unmutated files of a target. */
    private Map<String, byte[]> seedFiles(String target) throws IOException {
        Map<String, byte[]> files = new LinkedHashMap<>();
        switch (target) {
            case "onnx":
                files.put("model.onnx", onnxSeed.toByteArray());
                break;
            case "ort":
                files.put("model.onnx", ortSeed.toByteArray());
                break;
            case "safetensors":
                files.put("model.safetensors", safetensors(false));
                break;
            default:
                files.put("config.json", configWithLabels());
                files.put("model.safetensors", safetensors(true));
                break;
        }
        return files;
    }

    /** A mutant: field mutations for ONNX (byte mutations rarely parse), bytes for the rest. */
    private Map<String, byte[]> mutant(String target, Random r) throws IOException {
        Mutator bytes = new Mutator(r);
        Map<String, byte[]> files = seedFiles(target);
        if (target.equals("onnx") || target.equals("ort")) {
            ModelProto seed = target.equals("onnx") ? onnxSeed : ortSeed;
            byte[] b =
                    r.nextInt(3) > 0
                            ? new OnnxMutator(r).mutate(seed).toByteArray()
                            : seed.toByteArray();
            files.put("model.onnx", r.nextInt(3) == 0 ? b : bytes.mutate(b));
            return files;
        }
        if (target.equals("huggingface") && r.nextBoolean()) {
            files.put("config.json", mutateConfigField(files.get("config.json"), bytes, r));
            return files;
        }
        // Mutate one file or both.
        int which = r.nextInt(files.size() == 1 ? 1 : 3);
        int i = 0;
        for (Map.Entry<String, byte[]> f : files.entrySet()) {
            if (which == 2 || which == i++) {
                f.setValue(bytes.mutate(f.getValue()));
            }
        }
        return files;
    }

    /** Sets one config.json field to a boundary integer or a value of the wrong JSON type. */
    private static byte[] mutateConfigField(byte[] config, Mutator bytes, Random r) {
        JsonObject c =
                JsonParser.parseString(new String(config, StandardCharsets.UTF_8))
                        .getAsJsonObject();
        List<String> keys = new ArrayList<>(c.keySet());
        String key = keys.get(r.nextInt(keys.size()));
        switch (r.nextInt(4)) {
            case 0:
                c.add(key, new JsonArray());
                break;
            case 1:
                c.add(key, new JsonObject());
                break;
            case 2:
                c.addProperty(key, r.nextBoolean() ? "x" : "1e30");
                break;
            default:
                c.addProperty(key, bytes.interesting());
                break;
        }
        return c.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] configWithLabels() {
        JsonObject c = TinyCheckpoints.configJson();
        JsonObject labels = new JsonObject();
        labels.addProperty("0", "negative");
        labels.addProperty("1", "positive");
        c.add("id2label", labels);
        return c.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** The tiny encoder's weights, with a pooler and a 2-label classifier if asked. */
    private byte[] safetensors(boolean heads) throws IOException {
        List<CheckpointTensor> t = new ArrayList<>(TinyCheckpoints.tensors(1));
        if (heads) {
            int h = TinyCheckpoints.HIDDEN;
            t.add(
                    new CheckpointTensor(
                            "bert.pooler.dense.weight", new long[] {h, h}, new float[h * h]));
            t.add(new CheckpointTensor("bert.pooler.dense.bias", new long[] {h}, new float[h]));
            t.add(new CheckpointTensor("classifier.weight", new long[] {2, h}, new float[2 * h]));
            t.add(new CheckpointTensor("classifier.bias", new long[] {2}, new float[2]));
        }
        Path file = work.resolve("seed-" + heads + ".safetensors");
        SafetensorsFile.write(file, t);
        return Files.readAllBytes(file);
    }

    private interface Parse {
        void parse(Path dir) throws Exception;
    }

    private FuzzHarness.Target target(String name, Parse parse) {
        return new FuzzHarness.Target() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Map<String, byte[]> mutant(Random r) throws IOException {
                return ParserFuzzTest.this.mutant(name, r);
            }

            @Override
            public void parse(Path dir) throws Exception {
                parse.parse(dir);
            }

            @Override
            public boolean documented(Throwable t, Path dir) {
                return (t instanceof MalformedModelException || t instanceof IOException)
                        && String.valueOf(t.getMessage()).contains(dir.toString());
            }
        };
    }
}
