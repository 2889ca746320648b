package io.github.tilewise.it;

import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import io.github.tilewise.it.bench.LongDocumentBenchmark;
import io.github.tilewise.it.bench.PeakMemory;
import io.github.tilewise.it.models.RealModels;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Locale;

/**
 * Embeds one long document in one pass: Abraham Lincoln's 1862 Annual Message to Congress (public
 * domain, about 8,400 words, shipped in this module's resources), up to the model's full length,
 * with the time and the peak extra memory of each call printed.
 *
 * <p>With a Hugging Face directory as its argument (e.g. a ModernBERT or XLM-RoBERTa checkpoint
 * with its {@code tokenizer.json}) it embeds with that model. Without one it writes a
 * ModernBERT-base-shaped checkpoint with random weights (22 layers, hidden 768, 8,192 positions,
 * local attention ±64) to a temporary directory and tokenizes with all-MiniLM-L6-v2's WordPiece
 * tokenizer: published ModernBERT weights cannot be downloaded on machines without access to the
 * Hugging Face hub, and the time and memory of a forward pass do not depend on the weights.
 *
 * <p>{@code mvn -q -pl integration-tests exec:exec@longdoc-demo [-Dbench.args=DIR]}
 */
public final class LongDocumentDemo {

    private static final String TEXT = "/texts/lincoln-1862-annual-message.txt";

    private LongDocumentDemo() {}

    /**
     * Runs the demo.
     *
     * @param args optionally a Hugging Face model directory
     * @throws Exception if the model fails to load or run
     */
    public static void main(String[] args) throws Exception {
        String text = readText();
        Path tmp = null;
        Path dir;
        Path tokenizer;
        if (args.length > 0) {
            dir = Paths.get(args[0]);
            tokenizer = dir.resolve("tokenizer.json");
        } else {
            tmp = Files.createTempDirectory("tilewise-longdoc");
            dir = writeRandomModernBert(tmp);
            tokenizer = RealModels.miniLm().resolve("tokenizer.json");
        }
        try {
            EncoderCheckpoint checkpoint = EncoderCheckpoint.read(dir);
            int longest = checkpoint.getConfig().getMaxSequenceLength();
            int tokens;
            try (EncoderTokenizer t = EncoderTokenizer.load(tokenizer, longest, true)) {
                tokens = t.encode(List.of(text)).getLengths()[0];
            }
            System.out.printf(
                    Locale.ROOT,
                    "Long document: Lincoln's 1862 Annual Message, %,d characters -> %,d tokens"
                            + " (the model takes %,d)%n",
                    text.length(),
                    tokens,
                    longest);
            System.out.println("Model: " + checkpoint.getConfig());
            float[] reference = null;
            for (Precision p : List.of(Precision.FP32, Precision.INT8, Precision.BF16)) {
                TextEncoder.Builder b =
                        TextEncoder.builder()
                                .setModelPath(dir)
                                .optTokenizerPath(tokenizer)
                                .optPooling(Pooling.MEAN)
                                .optNormalize(true)
                                .optMaxLength(longest)
                                .optTruncation(true);
                if (p != Precision.FP32) {
                    b.optLinearOperatorFactory(
                            LowPrecisionConverter.builder().setPrecision(p).build());
                }
                try (TextEncoder encoder = b.build()) {
                    encoder.embed("warm-up");
                    float[][] vector = new float[1][];
                    long t0 = System.nanoTime();
                    long peak = PeakMemory.measure(() -> vector[0] = encoder.embed(text));
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    if (reference == null) {
                        reference = vector[0];
                    }
                    System.out.printf(
                            Locale.ROOT,
                            "  %-5s %,d tokens in one pass: %.2f s, peak extra memory %.0f MB,"
                                    + " cosine to fp32 %.5f%n",
                            p,
                            tokens,
                            seconds,
                            peak / 1048576.0,
                            dot(reference, vector[0]));
                }
            }
        } finally {
            if (tmp != null) {
                deleteTree(tmp);
            }
        }
    }

    private static String readText() throws IOException {
        try (InputStream in = LongDocumentDemo.class.getResourceAsStream(TEXT)) {
            if (in == null) {
                throw new IOException("missing resource " + TEXT);
            }
            String all = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            // Skip the provenance lines above the first blank line.
            return all.substring(all.indexOf("\n\n") + 2).trim();
        }
    }

    /** The benchmark's ModernBERT-base-shaped random checkpoint as a Hugging Face directory. */
    private static Path writeRandomModernBert(Path dir) throws IOException {
        EncoderCheckpoint checkpoint = LongDocumentBenchmark.baseCheckpoint();
        SafetensorsFile.write(
                dir.resolve(SafetensorsFile.DEFAULT_NAME), checkpoint.getTensors().values());
        Files.writeString(
                dir.resolve("config.json"),
                "{\"model_type\": \"modernbert\", \"hidden_size\": 768, \"num_attention_heads\": 12,"
                        + " \"num_hidden_layers\": 22, \"intermediate_size\": 1152,"
                        + " \"max_position_embeddings\": 8192, \"vocab_size\": 50368,"
                        + " \"norm_eps\": 1e-05, \"norm_bias\": false, \"attention_bias\": false,"
                        + " \"mlp_bias\": false, \"hidden_activation\": \"gelu\","
                        + " \"local_attention\": 128, \"global_attn_every_n_layers\": 3,"
                        + " \"global_rope_theta\": 160000.0, \"local_rope_theta\": 10000.0,"
                        + " \"pad_token_id\": 50283}\n");
        return dir;
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var paths = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) paths.sorted((x, y) -> y.compareTo(x))::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }
}
