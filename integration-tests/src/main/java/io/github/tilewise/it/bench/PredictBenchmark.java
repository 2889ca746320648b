package io.github.tilewise.it.bench;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.it.models.RealModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * all-MiniLM-L6-v2 through DJL's {@code Criteria} and DJL's own {@code
 * TextEmbeddingTranslatorFactory} (mean pooling, normalized), Tilewise next to DJL's ONNX Runtime
 * engine (fp32 export and ONNX Runtime's int8 export) in one process, the engines timed in turns:
 *
 * <ul>
 *   <li>{@code single}: one text of about 100 word pieces per {@code Predictor.predict} call (the
 *       texts of {@link TribuoExtractBenchmark}), blocks of {@code --block} calls per engine in
 *       turns;
 *   <li>{@code batch}: {@code Predictor.batchPredict} on 32 texts of 128 tokens (tokenization
 *       included), one call per engine in turns.
 * </ul>
 *
 * <pre>
 * predict model=all-minilm-l6-v2 engine=&lt;e&gt; precision=&lt;p&gt; mode=single texts=&lt;n&gt; ms=&lt;median per call&gt; p10=.. p90=.. texts_per_s=&lt;x&gt;
 * embed model=all-minilm-l6-v2 engine=&lt;e&gt; precision=&lt;p&gt; api=criteria batch=32 seq=128 ms=&lt;median&gt; p10=.. p90=.. seq_per_s=&lt;x&gt;
 * </pre>
 *
 * <p>Options: {@code --modes single,batch}, {@code --engines
 * tilewise-fp32,tilewise-int8,onnxruntime-fp32,onnxruntime-int8}, {@code --texts 400}, {@code
 * --block 50}, {@code --reps 20} (batch calls per engine), {@code --threads 2}, {@code
 * --pytorch-threads} (PyTorch's intra-op threads, default {@code --threads}). Run: {@code mvn -B -q
 * -pl integration-tests exec:exec@predict-bench}.
 */
public final class PredictBenchmark {

    private static final int BATCH = 32;
    private static final int SEQ = 128;

    private PredictBenchmark() {}

    /**
     * Runs the benchmark.
     *
     * @param args options, see the class comment
     * @throws Exception if a model fails to load or run
     */
    public static void main(String[] args) throws Exception {
        List<String> modes = Arrays.asList(option(args, "--modes", "single,batch").split(","));
        List<String> engines =
                Arrays.asList(
                        option(
                                        args,
                                        "--engines",
                                        "tilewise-fp32,tilewise-int8,onnxruntime-fp32,"
                                                + "onnxruntime-int8")
                                .split(","));
        int count = Integer.parseInt(option(args, "--texts", "400"));
        int block = Integer.parseInt(option(args, "--block", "50"));
        int reps = Integer.parseInt(option(args, "--reps", "20"));
        int threads = Integer.parseInt(option(args, "--threads", "2"));
        int pytorchThreads = Integer.parseInt(option(args, "--pytorch-threads", "" + threads));
        BenchmarkThreads.configure(threads, pytorchThreads);
        Path dir = RealModels.miniLm();
        for (String mode : modes) {
            // Single texts keep all their pieces (at most 512); the batch's texts are truncated
            // to 128 tokens.
            int maxLength = "batch".equals(mode) ? SEQ : 512;
            List<ZooModel<String, float[]>> models = new ArrayList<>();
            List<Predictor<String, float[]>> predictors = new ArrayList<>();
            try {
                for (String engine : engines) {
                    ZooModel<String, float[]> model = load(engine, dir, maxLength, threads);
                    models.add(model);
                    predictors.add(model.newPredictor());
                }
                if ("single".equals(mode)) {
                    single(engines, predictors, TribuoExtractBenchmark.texts(count, 7), block);
                } else if ("batch".equals(mode)) {
                    batch(engines, predictors, EmbeddingBenchmark.texts(BATCH, SEQ), reps);
                } else {
                    throw new IllegalArgumentException("unknown mode " + mode);
                }
            } finally {
                close(predictors, models);
            }
        }
    }

    private static void close(
            List<Predictor<String, float[]>> predictors, List<ZooModel<String, float[]>> models) {
        for (Predictor<String, float[]> p : predictors) {
            p.close();
        }
        for (ZooModel<String, float[]> m : models) {
            m.close();
        }
    }

    private static ZooModel<String, float[]> load(
            String engine, Path dir, int maxLength, int threads) throws Exception {
        boolean ort = engine.startsWith("onnxruntime");
        String precision = precision(engine);
        Criteria.Builder<String, float[]> builder =
                MiniLmCriteria.builder(ort, precision, dir, maxLength)
                        .optArgument("truncation", "true");
        if (ort) {
            builder.optOption("intraOpNumThreads", Integer.toString(threads))
                    .optOption("interOpNumThreads", "1");
        }
        return builder.build().loadModel();
    }

    private static String precision(String engine) {
        return engine.substring(engine.indexOf('-') + 1);
    }

    private static String engineName(String engine) {
        return engine.substring(0, engine.indexOf('-'));
    }

    /** One text per call, blocks of {@code block} calls per engine in turns. */
    private static void single(
            List<String> engines,
            List<Predictor<String, float[]>> predictors,
            List<String> texts,
            int block)
            throws Exception {
        int n = predictors.size();
        for (Predictor<String, float[]> p : predictors) {
            for (int i = 0; i < 20; i++) {
                p.predict(texts.get(i % texts.size()));
            }
        }
        double[][] ms = new double[n][texts.size()];
        double[] total = new double[n];
        for (int from = 0; from < texts.size(); from += block) {
            int to = Math.min(texts.size(), from + block);
            for (int e = 0; e < n; e++) {
                Predictor<String, float[]> p = predictors.get(e);
                for (int i = from; i < to; i++) {
                    long t0 = System.nanoTime();
                    p.predict(texts.get(i));
                    ms[e][i] = (System.nanoTime() - t0) / 1e6;
                    total[e] += ms[e][i];
                }
            }
        }
        for (int e = 0; e < n; e++) {
            double[] sorted = ms[e].clone();
            Arrays.sort(sorted);
            System.out.printf(
                    Locale.ROOT,
                    "predict model=all-minilm-l6-v2 engine=%s precision=%s mode=single texts=%d"
                            + " ms=%.2f p10=%.2f p90=%.2f texts_per_s=%.1f%n",
                    engineName(engines.get(e)),
                    precision(engines.get(e)),
                    texts.size(),
                    quantile(sorted, 0.5),
                    quantile(sorted, 0.1),
                    quantile(sorted, 0.9),
                    texts.size() * 1000.0 / total[e]);
        }
    }

    /** One batch of 32 × 128 per engine in turns. */
    private static void batch(
            List<String> engines,
            List<Predictor<String, float[]>> predictors,
            List<String> texts,
            int reps)
            throws Exception {
        int n = predictors.size();
        for (int i = 0; i < 3; i++) {
            for (Predictor<String, float[]> p : predictors) {
                p.batchPredict(texts);
            }
        }
        double[][] ms = new double[n][reps];
        double[][] faults = new double[n][reps];
        for (int r = 0; r < reps; r++) {
            for (int e = 0; e < n; e++) {
                long f0 = minorFaults();
                long t0 = System.nanoTime();
                predictors.get(e).batchPredict(texts);
                ms[e][r] = (System.nanoTime() - t0) / 1e6;
                faults[e][r] = minorFaults() - f0;
            }
        }
        for (int e = 0; e < n; e++) {
            double[] sorted = ms[e].clone();
            Arrays.sort(sorted);
            double median = quantile(sorted, 0.5);
            double[] sortedFaults = faults[e].clone();
            Arrays.sort(sortedFaults);
            System.out.printf(
                    Locale.ROOT,
                    "embed model=all-minilm-l6-v2 engine=%s precision=%s api=criteria batch=%d"
                            + " seq=%d ms=%.1f p10=%.1f p90=%.1f seq_per_s=%.1f"
                            + " page_faults=%.0f%n",
                    engineName(engines.get(e)),
                    precision(engines.get(e)),
                    BATCH,
                    SEQ,
                    median,
                    quantile(sorted, 0.1),
                    quantile(sorted, 0.9),
                    BATCH * 1000.0 / median,
                    quantile(sortedFaults, 0.5));
        }
    }

    /**
     * Minor page faults of this process so far (Linux {@code /proc/self/stat}), or 0 elsewhere: a
     * batch that page-faults on fresh memory in every layer shows it here.
     */
    private static long minorFaults() {
        try {
            String stat = new String(Files.readAllBytes(Path.of("/proc/self/stat")));
            // Fields after the parenthesised command name: state is field 3, minflt field 10.
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(fields[7]);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    private static double quantile(double[] sorted, double q) {
        double at = q * (sorted.length - 1);
        int lo = (int) Math.floor(at);
        int hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
    }

    private static String option(String[] args, String name, String fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return fallback;
    }
}
