package io.github.tilewise.it.bench;

import ai.djl.huggingface.translator.TextEmbeddingTranslatorFactory;
import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.encoder.text.MixedLengthCorpus;
import io.github.tilewise.djl.lowp.CalibrationTexts;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * A mixed-length corpus embedded the way DJL code does it: batches of 32 texts in file order
 * through {@code Predictor.batchPredict}, with DJL's own {@code TextEmbeddingTranslatorFactory} on
 * both engines (Tilewise and DJL's ONNX Runtime engine), all-MiniLM-L6-v2, mean pooling,
 * normalized.
 *
 * <p>The corpus is generated deterministically (seed 42) from the calibration sentences that ship
 * in the tilewise-djl jar: each text strings sentences together up to a target length drawn as 70%
 * of 5–40 tokens, 25% of 40–200 and 5% of 200–512, in shuffled order. The run prints the measured
 * distribution, then one line per engine:
 *
 * <pre>
 * corpus model=all-minilm-l6-v2 engine=... precision=... texts=... tokens=... padded_tokens=... s=... texts_per_s=...
 * </pre>
 *
 * <p>{@code tokens} counts the texts' tokens, {@code padded_tokens} what the padded batches hold.
 * Arguments: {@code [texts] [engines]} (default 2000 and {@code
 * tilewise-fp32,tilewise-int8,tilewise-bf16,onnxruntime-fp32,onnxruntime-int8}; {@code
 * tilewise-fp32-padded} runs Tilewise with {@code -Dtilewise.packed=false}, {@code none} only the
 * memory lines). Run: {@code mvn -B -q -pl integration-tests exec:exec@corpus-bench}.
 */
public final class CorpusBenchmark {

    private static final int BATCH = 32;
    private static final int MAX_TOKENS = 512;

    private CorpusBenchmark() {}

    /**
     * Runs the benchmark.
     *
     * @param args {@code [texts] [engines]}
     * @throws Exception if a model cannot be loaded
     */
    public static void main(String[] args) throws Exception {
        int count = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
        List<String> engines =
                Arrays.asList(
                        (args.length > 1
                                        ? args[1]
                                        : "tilewise-fp32,tilewise-int8,tilewise-bf16,"
                                                + "onnxruntime-fp32,onnxruntime-int8")
                                .split(","));
        System.out.println("# " + Tilewise.describe());
        Path dir = RealModels.miniLm();
        List<String> corpus = MixedLengthCorpus.texts(count);
        long[] tokenCounts = tokenCounts(dir, corpus);
        for (String engine : engines) {
            if (!"none".equals(engine)) {
                run(engine, dir, corpus, tokenCounts);
            }
        }
        peakMemory(dir);
    }

    /**
     * Peak extra resident memory of one batch of 32: one 512-token text and 31 short ones, packed
     * (the default) and padded ({@code tilewise.packed=false}), each the first call of a fresh
     * predictor after a warm-up on other texts.
     */
    private static void peakMemory(Path dir) throws Exception {
        List<String> batch = new ArrayList<>(MixedLengthCorpus.texts(BATCH));
        StringBuilder longText = new StringBuilder();
        for (String sentence : CalibrationTexts.defaults()) {
            longText.append(sentence).append(' ');
        }
        batch.set(0, longText.toString().repeat(2));
        for (String mode : new String[] {"packed", "padded"}) {
            System.setProperty("tilewise.packed", Boolean.toString("packed".equals(mode)));
            try (ZooModel<String, float[]> model =
                            Criteria.builder()
                                    .setTypes(String.class, float[].class)
                                    .optModelPath(dir)
                                    .optEngine("Tilewise")
                                    .optTranslatorFactory(new TextEmbeddingTranslatorFactory())
                                    .optArgument("pooling", "mean")
                                    .optArgument("includeTokenTypes", "true")
                                    .optArgument("maxLength", Integer.toString(MAX_TOKENS))
                                    .build()
                                    .loadModel();
                    Predictor<String, float[]> predictor = model.newPredictor()) {
                predictor.batchPredict(List.of("warm up", "a second short text"));
                // Free blocks the allocator kept from earlier runs would hide the call's memory.
                System.gc();
                Tilewise.releaseFreedMemory();
                long bytes =
                        PeakMemory.measure(
                                () -> {
                                    try {
                                        predictor.batchPredict(batch);
                                    } catch (Exception e) {
                                        throw new IllegalStateException(e);
                                    }
                                });
                System.out.printf(
                        Locale.ROOT,
                        "corpus-memory model=all-minilm-l6-v2 execution=%s batch=%d longest=512"
                                + " peak_extra_mb=%.1f%n",
                        mode,
                        BATCH,
                        bytes / 1048576.0);
            } finally {
                System.clearProperty("tilewise.packed");
            }
        }
    }

    /** Each text's token count (special tokens included, capped at 512), and prints the mix. */
    private static long[] tokenCounts(Path dir, List<String> corpus) throws Exception {
        long[] counts = new long[corpus.size()];
        int[] buckets = new int[3];
        try (EncoderTokenizer tokenizer =
                EncoderTokenizer.load(dir.resolve("tokenizer.json"), MAX_TOKENS, true)) {
            for (int i = 0; i < corpus.size(); i++) {
                counts[i] = tokenizer.encode(List.of(corpus.get(i))).getLengths()[0];
                buckets[counts[i] < 40 ? 0 : counts[i] < 200 ? 1 : 2]++;
            }
        }
        System.out.printf(
                Locale.ROOT,
                "# corpus texts=%d tokens<40: %.1f%%, 40-199: %.1f%%, >=200: %.1f%%%n",
                corpus.size(),
                100.0 * buckets[0] / corpus.size(),
                100.0 * buckets[1] / corpus.size(),
                100.0 * buckets[2] / corpus.size());
        return counts;
    }

    private static void run(String engine, Path dir, List<String> corpus, long[] tokenCounts)
            throws Exception {
        boolean ort = engine.startsWith("onnxruntime");
        String precision = engine.substring(engine.indexOf('-') + 1).replace("-padded", "");
        Criteria.Builder<String, float[]> builder =
                MiniLmCriteria.builder(ort, precision, dir, MAX_TOKENS);
        boolean padded = engine.endsWith("-padded");
        if (padded) {
            System.setProperty("tilewise.packed", "false");
        }
        try (ZooModel<String, float[]> model = builder.build().loadModel();
                Predictor<String, float[]> predictor = model.newPredictor()) {
            predictor.batchPredict(corpus.subList(0, BATCH)); // warm up
            long tokens = 0;
            long paddedTokens = 0;
            long start = System.nanoTime();
            for (int from = 0; from < corpus.size(); from += BATCH) {
                int to = Math.min(corpus.size(), from + BATCH);
                predictor.batchPredict(corpus.subList(from, to));
                long longest = 0;
                for (int i = from; i < to; i++) {
                    tokens += tokenCounts[i];
                    longest = Math.max(longest, tokenCounts[i]);
                }
                paddedTokens += longest * (to - from);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf(
                    Locale.ROOT,
                    "corpus model=all-minilm-l6-v2 engine=%s precision=%s%s texts=%d tokens=%d"
                            + " padded_tokens=%d s=%.2f texts_per_s=%.1f%n",
                    ort ? "onnxruntime" : "tilewise",
                    precision,
                    padded ? " execution=padded" : "",
                    corpus.size(),
                    tokens,
                    paddedTokens,
                    seconds,
                    corpus.size() / seconds);
        } finally {
            System.clearProperty("tilewise.packed");
        }
    }
}
