package io.github.tilewise.it.reliability;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import io.github.tilewise.it.bench.PeakMemory;
import io.github.tilewise.it.models.RealModels;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Long runs that must keep a flat memory profile: {@code forwards} single-text predictions of one
 * loaded model, and {@code reloads} load-predict-close cycles of the same model, each after a
 * warm-up (as many forwards again, half as many reloads). Native resident memory (the process's
 * {@code VmRSS} less the JVM's heap, code and metadata pools) is sampled after a full GC at every
 * tenth of the measured run and printed as machine-readable lines:
 *
 * <pre>
 * soak model=... precision=... forwards=N native_mb_warm=... native_mb_end=... growth_pct=...
 * soak-reload model=... precision=... reloads=N native_mb_warm=... native_mb_end=... growth_pct=...
 * </pre>
 *
 * <p>Run: {@code mvn -B -q -pl integration-tests exec:exec@soak -Dbench.args="minilm 10000 200"}
 * (model {@code minilm} or {@code tinybert}, forwards, reloads).
 */
public final class Soak {

    private static final List<String> TEXTS =
            List.of(
                    "a short text",
                    "the quick brown fox jumps over the lazy dog, again and again",
                    "memory must stay flat over a long run of the same model",
                    "x");

    private Soak() {}

    /**
     * One soak's resident memory, sampled (after a full GC) at every tenth of the measured run. The
     * JVM's compilers take and give back tens of MiB at a time, so each end of the run is the least
     * of three samples: transients only add, while a leak raises the floor.
     */
    public static final class Result {
        /** Resident MiB at the start of the measured run (least of its first three samples). */
        public final double warmMb;

        /** Resident MiB at the end (least of the last three samples). */
        public final double endMb;

        Result(double[] samples) {
            this.warmMb = Math.min(samples[0], Math.min(samples[1], samples[2]));
            int n = samples.length;
            this.endMb = Math.min(samples[n - 3], Math.min(samples[n - 2], samples[n - 1]));
        }

        /**
         * Returns the growth from the start of the measured run to its end.
         *
         * @return percent
         */
        public double growthPercent() {
            return 100.0 * (endMb - warmMb) / warmMb;
        }
    }

    /**
     * Runs the soaks for fp32 and int8 and prints their lines.
     *
     * @param args {@code [model] [forwards] [reloads]}
     * @throws Exception if a model fails
     */
    public static void main(String[] args) throws Exception {
        String model = args.length > 0 ? args[0] : "minilm";
        int forwards = args.length > 1 ? Integer.parseInt(args[1]) : 10_000;
        int reloads = args.length > 2 ? Integer.parseInt(args[2]) : 200;
        Path file =
                RealModels.onnxFile(
                        "tinybert".equals(model) ? RealModels.tinyBert() : RealModels.miniLm());
        for (String precision : new String[] {"fp32", "int8"}) {
            print(
                    "soak",
                    model,
                    precision,
                    "forwards",
                    forwards,
                    forwards(file, precision, forwards));
            print(
                    "soak-reload",
                    model,
                    precision,
                    "reloads",
                    reloads,
                    reloads(file, precision, reloads));
        }
    }

    /**
     * Predicts {@code count} single texts with one loaded model, after as many to warm up.
     *
     * @param model the model file
     * @param precision {@code fp32} or {@code int8}
     * @param count forwards
     * @return memory over the measured run
     * @throws Exception if the model fails
     */
    public static Result forwards(Path model, String precision, int count) throws Exception {
        try (ZooModel<String, float[]> zoo = criteria(model, precision).loadModel();
                Predictor<String, float[]> predictor = zoo.newPredictor()) {
            for (int i = 0; i < count; i++) {
                predictor.predict(TEXTS.get(i % TEXTS.size()));
            }
            double[] samples = new double[11];
            samples[0] = residentMb();
            for (int i = 0; i < count; i++) {
                predictor.predict(TEXTS.get(i % TEXTS.size()));
                sample(samples, i, count);
            }
            return new Result(samples);
        }
    }

    /**
     * Loads, predicts one text with, and closes the model {@code count} times, after half as many
     * to warm up.
     *
     * @param model the model file
     * @param precision {@code fp32} or {@code int8}
     * @param count reloads
     * @return memory over the measured run
     * @throws Exception if the model fails
     */
    public static Result reloads(Path model, String precision, int count) throws Exception {
        for (int i = 0; i < count / 2; i++) {
            reload(model, precision, i);
        }
        double[] samples = new double[11];
        samples[0] = residentMb();
        for (int i = 0; i < count; i++) {
            reload(model, precision, i);
            sample(samples, i, count);
        }
        return new Result(samples);
    }

    private static void reload(Path model, String precision, int i) throws Exception {
        try (ZooModel<String, float[]> zoo = criteria(model, precision).loadModel();
                Predictor<String, float[]> predictor = zoo.newPredictor()) {
            predictor.predict(TEXTS.get(i % TEXTS.size()));
        }
    }

    /** Takes sample 1..10 at each tenth of the run; with -Dsoak.trace=true prints it. */
    private static void sample(double[] samples, int i, int count) {
        int tenth = Math.max(1, count / 10);
        if ((i + 1) % tenth != 0 || (i + 1) / tenth > 10) {
            return;
        }
        double rss = residentMb();
        samples[(i + 1) / tenth] = rss;
        if (Boolean.getBoolean("soak.trace")) {
            System.out.println(
                    String.format(
                            Locale.ROOT,
                            "soak-trace call=%d native_mb=%.1f rss_mb=%.1f threads=%d",
                            i + 1,
                            rss,
                            PeakMemory.residentBytes() / 1048576.0,
                            Thread.activeCount()));
        }
    }

    private static Criteria<String, float[]> criteria(Path model, String precision) {
        return Criteria.builder()
                .setTypes(String.class, float[].class)
                .optEngine("Tilewise")
                .optModelPath(model)
                .optTranslatorFactory(new EncoderTranslatorFactory())
                .optArgument("pooling", "mean")
                .optArgument("precision", precision)
                .build();
    }

    /**
     * Resident MiB outside the JVM's own pools (heap, compiled code, class metadata), after a full
     * GC and after the C allocator gave its free memory back: the memory of the models and their
     * native libraries (Tilewise, PyTorch, the tokenizers), which is what a leak would grow. The
     * JIT keeps compiling for the first thousands of calls, so whole-process RSS rises for a while
     * without anything leaking.
     */
    private static double residentMb() {
        System.gc();
        System.runFinalization();
        System.gc();
        Tilewise.releaseFreedMemory();
        long jvm = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            jvm += pool.getUsage().getCommitted();
        }
        return (PeakMemory.residentBytes() - jvm) / (1024.0 * 1024.0);
    }

    private static void print(
            String kind, String model, String precision, String what, int count, Result r) {
        System.out.println(
                String.format(
                        Locale.ROOT,
                        "%s model=%s precision=%s %s=%d native_mb_warm=%.1f native_mb_end=%.1f"
                                + " growth_pct=%.2f",
                        kind,
                        model,
                        precision,
                        what,
                        count,
                        r.warmMb,
                        r.endMb,
                        r.growthPercent()));
    }
}
