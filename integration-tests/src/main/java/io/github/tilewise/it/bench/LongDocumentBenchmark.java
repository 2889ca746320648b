package io.github.tilewise.it.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.encoder.CheckpointParameter;
import io.github.tilewise.djl.encoder.EncoderArchitecture;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.LongBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Issue 16's long-document benchmark: seconds per document and peak extra memory at 512, 2,048 and
 * 8,192 tokens, for Tilewise in fp32, INT8 and BF16, DJL's own path (the same blocks with {@code
 * -Dtilewise.native=false}: PyTorch linear layers, attention with a materialised score matrix), and
 * ONNX Runtime on the same model; plus the cost of one sliding-window attention against one global
 * attention at 8,192 tokens.
 *
 * <p>Each measurement runs in a fresh JVM, so one case's allocations do not hide another's peak.
 * The model is {@code base} (a ModernBERT-base-shaped encoder: 22 layers, hidden 768, 12 heads,
 * GeGLU 1,152, window ±64, random weights from a seed) or a Hugging Face directory.
 *
 * <p>ONNX Runtime (all graph optimisations, one intra-op thread per core) runs either an {@code
 * onnx=} file (engine {@code onnxruntime}; a transformers export of the same model as {@code
 * model=}, made elsewhere) or, without one, for ModernBERT, {@link ModernBertOnnxGraph} (engine
 * {@code onnxruntime-graph}): <b>a graph of standard ONNX ops equivalent to the eager export, built
 * by the benchmark; not a transformers export</b>. It is written once from the same checkpoint (the
 * same seeded weights for {@code base}) to a temporary file that every token count's worker loads,
 * and fed the same ids. Its attention materialises the {@code [heads, N, N]} score matrix in every
 * layer, as the eager export does; a case whose estimated score memory ({@link #graphScoreBytes})
 * exceeds {@code MemAvailable} is skipped ({@code longdoc-skipped}), and one that runs out of
 * memory prints {@code longdoc-failed ... oom}.
 *
 * <p>Arguments ({@code key=value}): {@code model=base|DIR}, {@code tokens=512,2048,8192}, {@code
 * precisions=fp32,int8,bf16}, {@code engines=tilewise,djl,ort}, {@code onnx=FILE}, {@code
 * repeats=3}, {@code djlMaxTokens=8192}. Lines: {@code longdoc model=... engine=... precision=...
 * tokens=... s=... s_min=... s_max=... peak_extra_mb=...} and {@code longdoc-attention ...}.
 */
public final class LongDocumentBenchmark {

    private LongDocumentBenchmark() {}

    /**
     * Runs the benchmark (or, with {@code worker} first, one measurement).
     *
     * @param args see the class comment
     * @throws Exception on failure
     */
    public static void main(String[] args) throws Exception {
        Map<String, String> a = parse(args);
        if (a.containsKey("worker")) {
            worker(a);
            return;
        }
        String model = a.getOrDefault("model", "base");
        List<Integer> tokens = ints(a.getOrDefault("tokens", "512,2048,8192"));
        List<String> precisions =
                List.of(a.getOrDefault("precisions", "fp32,int8,bf16").split(","));
        List<String> engines = List.of(a.getOrDefault("engines", "tilewise,djl,ort").split(","));
        int djlMax = Integer.parseInt(a.getOrDefault("djlMaxTokens", "8192"));
        String repeats = a.getOrDefault("repeats", "3");
        System.out.println(
                "# cpu: " + cpuModel() + ", cores " + Runtime.getRuntime().availableProcessors());
        spawn(List.of("worker=attention", "tokens=8192", "repeats=" + repeats), false);
        Path graph = null;
        if (engines.contains("ort") && !a.containsKey("onnx")) {
            graph = Files.createTempFile("tilewise-modernbert-graph", ".onnx");
            spawn(List.of("worker=ortgraph", "model=" + model, "out=" + graph), false);
            if (Files.size(graph) == 0) {
                System.out.println(
                        "longdoc-failed engine=onnxruntime-graph model="
                                + model
                                + " the graph was not written");
                Files.deleteIfExists(graph);
                graph = null;
            }
        }
        try {
            measureAll(a, model, tokens, precisions, engines, djlMax, repeats, graph);
        } finally {
            if (graph != null) {
                Files.deleteIfExists(graph);
            }
        }
    }

    private static void measureAll(
            Map<String, String> a,
            String model,
            List<Integer> tokens,
            List<String> precisions,
            List<String> engines,
            int djlMax,
            String repeats,
            Path graph)
            throws IOException, InterruptedException {
        for (int n : tokens) {
            if (engines.contains("tilewise")) {
                for (String p : precisions) {
                    spawn(
                            List.of(
                                    "worker=tilewise",
                                    "model=" + model,
                                    "precision=" + p,
                                    "tokens=" + n,
                                    "repeats=" + repeats),
                            false);
                }
            }
            if (engines.contains("djl") && n <= djlMax) {
                spawn(
                        List.of(
                                "worker=tilewise",
                                "model=" + model,
                                "precision=fp32",
                                "tokens=" + n,
                                "repeats=1",
                                "engine=djl"),
                        true);
            }
            if (engines.contains("ort") && a.containsKey("onnx")) {
                spawn(
                        List.of(
                                "worker=ort",
                                "model=" + model,
                                "onnx=" + a.get("onnx"),
                                "tokens=" + n,
                                "repeats=" + repeats),
                        false);
            }
            if (engines.contains("ort") && graph != null) {
                spawn(
                        List.of(
                                "worker=ort",
                                "model=" + model,
                                "graph=" + graph,
                                "tokens=" + n,
                                "repeats=" + repeats),
                        false);
            }
        }
    }

    /** Runs one measurement in a new JVM and prints its lines (or why it failed). */
    private static void spawn(List<String> args, boolean withoutNative)
            throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx4g");
        cmd.add("-Dai.djl.offline=true");
        if (withoutNative) {
            cmd.add("-Dtilewise.native=false");
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(LongDocumentBenchmark.class.getName());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
        Process p = pb.start();
        List<String> tail = new ArrayList<>();
        try (BufferedReader r =
                new BufferedReader(
                        new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith("longdoc")) {
                    System.out.println(line);
                } else {
                    tail.add(line);
                    if (tail.size() > 5) {
                        tail.remove(0);
                    }
                }
            }
        }
        int rc = p.waitFor();
        if (rc != 0) {
            System.out.println(
                    "longdoc-failed "
                            + String.join(" ", args)
                            + " rc="
                            + rc
                            + " tail="
                            + String.join(" | ", tail));
        }
    }

    private static void worker(Map<String, String> a) throws Exception {
        if ("ortgraph".equals(a.get("worker"))) {
            writeGraph(a);
            return;
        }
        int n = Integer.parseInt(a.get("tokens"));
        int repeats = Integer.parseInt(a.getOrDefault("repeats", "3"));
        switch (a.get("worker")) {
            case "attention":
                attention(n, repeats);
                break;
            case "ort":
                if (a.containsKey("graph")) {
                    ortGraph(a, n, repeats);
                } else {
                    ort(a, n, repeats);
                }
                break;
            default:
                encoder(a, n, repeats);
        }
    }

    /** One Tilewise (or, without the native library, DJL reference) measurement. */
    private static void encoder(Map<String, String> a, int n, int repeats) throws Exception {
        String model = a.get("model");
        String precision = a.get("precision");
        String engine = a.getOrDefault("engine", "tilewise");
        EncoderCheckpoint checkpoint =
                "base".equals(model) ? baseCheckpoint() : EncoderCheckpoint.read(Paths.get(model));
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                TransformerEncoder encoder = checkpoint.createEncoder(manager)) {
            if (!"fp32".equals(precision)) {
                LowPrecisionConverter.builder()
                        .setPrecision(Precision.fromName(precision))
                        .build()
                        .convert(encoder);
            }
            checkpoint = null; // the fp32 tensors are no longer needed
            System.gc();
            int vocab = encoder.getConfig().getVocabSize();
            run(encoder, manager, ids(Math.min(n, 128), vocab)); // warm-up
            long[] doc = ids(n, vocab);
            double[] first = new double[1];
            long peak = PeakMemory.measure(() -> first[0] = run(encoder, manager, doc));
            List<Double> s = new ArrayList<>();
            s.add(first[0]);
            for (int i = 1; i < repeats; i++) {
                s.add(run(encoder, manager, doc));
            }
            print(label(model), engine, precision, n, s, peak);
        }
    }

    private static double run(TransformerEncoder encoder, NDManager manager, long[] doc) {
        try (NDManager scope = manager.newSubManager()) {
            NDArray ids = scope.create(doc).reshape(1, doc.length);
            long t0 = System.nanoTime();
            NDList out = encoder.encode(ids, null, null);
            out.get(0).toFloatArray();
            return (System.nanoTime() - t0) / 1e9;
        }
    }

    /** ONNX Runtime on the export: all threads, all graph optimisations. */
    private static void ort(Map<String, String> a, int n, int repeats) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            options.setIntraOpNumThreads(Runtime.getRuntime().availableProcessors());
            try (OrtSession session = env.createSession(a.get("onnx"), options)) {
                int vocab =
                        "base".equals(a.get("model"))
                                ? 50368
                                : EncoderCheckpoint.read(Paths.get(a.get("model")))
                                        .getConfig()
                                        .getVocabSize();
                long[] doc = ids(n, vocab);
                runOrt(env, session, ids(Math.min(n, 128), vocab));
                double[] first = new double[1];
                long peak = PeakMemory.measure(() -> first[0] = runOrt(env, session, doc));
                List<Double> s = new ArrayList<>();
                s.add(first[0]);
                for (int i = 1; i < repeats; i++) {
                    s.add(runOrt(env, session, doc));
                }
                print(label(a.get("model")), "onnxruntime", "fp32", n, s, peak);
            }
        }
    }

    /** Writes {@link ModernBertOnnxGraph} of the model to {@code out=}. */
    private static void writeGraph(Map<String, String> a) throws Exception {
        String model = a.get("model");
        EncoderCheckpoint checkpoint =
                "base".equals(model) ? baseCheckpoint() : EncoderCheckpoint.read(Paths.get(model));
        long t0 = System.nanoTime();
        long bytes = ModernBertOnnxGraph.write(checkpoint, Paths.get(a.get("out")));
        System.out.printf(
                "longdoc-graph model=%s bytes=%d write_s=%.1f%n",
                label(model), bytes, (System.nanoTime() - t0) / 1e9);
    }

    /**
     * The estimated memory of {@link ModernBertOnnxGraph}'s attention at {@code n} tokens: one
     * layer at a time (layers do not overlap), the scores, their scaled and masked copies and the
     * softmax output, {@code 3 · heads · n² · 4} bytes, plus the window mask's int64 distances
     * (two), its boolean and its fp32 {@code [n, n]}.
     *
     * @param config the model's configuration
     * @param n tokens
     * @return bytes
     */
    public static long graphScoreBytes(EncoderConfig config, long n) {
        long scores = 3L * config.getNumHeads() * n * n * 4;
        long mask = ModernBertOnnxGraph.hasLocalLayers(config) ? n * n * (8 + 8 + 1 + 4) : 0;
        return scores + mask;
    }

    /** ONNX Runtime on {@link ModernBertOnnxGraph}: all threads, all graph optimisations. */
    private static void ortGraph(Map<String, String> a, int n, int repeats) throws Exception {
        String model = a.get("model");
        String engine = "onnxruntime-graph";
        EncoderConfig config =
                "base".equals(model)
                        ? baseConfig()
                        : EncoderCheckpoint.read(Paths.get(model)).getConfig();
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            options.setIntraOpNumThreads(Runtime.getRuntime().availableProcessors());
            try (OrtSession session = env.createSession(a.get("graph"), options)) {
                long need = graphScoreBytes(config, n);
                long available = PeakMemory.availableBytes();
                if (need > available) {
                    System.out.printf(
                            "longdoc-skipped model=%s engine=%s precision=fp32 tokens=%d"
                                    + " estimated_scores_mb=%.0f mem_available_mb=%.0f%n",
                            label(model), engine, n, need / 1048576.0, available / 1048576.0);
                    return;
                }
                int vocab = config.getVocabSize();
                long[] doc = ids(n, vocab);
                runGraph(env, session, config, ids(Math.min(n, 128), vocab));
                double[] first = new double[1];
                List<Double> s = new ArrayList<>();
                long peak;
                try {
                    peak = PeakMemory.measure(() -> first[0] = runGraph(env, session, config, doc));
                    s.add(first[0]);
                    for (int i = 1; i < repeats; i++) {
                        s.add(runGraph(env, session, config, doc));
                    }
                } catch (IllegalStateException | OutOfMemoryError e) {
                    Throwable cause = e.getCause() == null ? e : e.getCause();
                    String message = String.valueOf(cause.getMessage());
                    boolean oom =
                            cause instanceof OutOfMemoryError
                                    || message.contains("bad_alloc")
                                    || message.toLowerCase(java.util.Locale.ROOT)
                                            .contains("allocate");
                    System.out.printf(
                            "longdoc-failed model=%s engine=%s precision=fp32 tokens=%d %s%n",
                            label(model),
                            engine,
                            n,
                            oom ? "oom " + message.replace('\n', ' ') : "error " + message);
                    return;
                }
                print(label(model), engine, "fp32", n, s, peak);
            }
        }
    }

    /** One run of the graph, the rotary tables included (the export computes them inside). */
    private static double runGraph(
            OrtEnvironment env, OrtSession session, EncoderConfig config, long[] doc) {
        long t0 = System.nanoTime();
        Map<String, OnnxTensor> inputs = null;
        try {
            inputs = ModernBertOnnxGraph.inputs(env, config, doc);
            try (OrtSession.Result r = session.run(inputs)) {
                return (System.nanoTime() - t0) / 1e9;
            }
        } catch (ai.onnxruntime.OrtException e) {
            throw new IllegalStateException(e);
        } finally {
            if (inputs != null) {
                inputs.values().forEach(OnnxTensor::close);
            }
        }
    }

    private static double runOrt(OrtEnvironment env, OrtSession session, long[] doc) {
        long[] shape = {1, doc.length};
        long[] mask = new long[doc.length];
        Arrays.fill(mask, 1);
        Map<String, OnnxTensor> inputs = new LinkedHashMap<>();
        try {
            for (String name : session.getInputNames()) {
                long[] values =
                        name.contains("mask")
                                ? mask
                                : name.contains("type") ? new long[doc.length] : doc;
                inputs.put(name, OnnxTensor.createTensor(env, LongBuffer.wrap(values), shape));
            }
            long t0 = System.nanoTime();
            try (OrtSession.Result r = session.run(inputs)) {
                return (System.nanoTime() - t0) / 1e9;
            }
        } catch (ai.onnxruntime.OrtException e) {
            throw new IllegalStateException(e);
        } finally {
            inputs.values().forEach(OnnxTensor::close);
        }
    }

    /** One global and one sliding-window (±64) self-attention at ModernBERT-base's width. */
    private static void attention(int n, int repeats) {
        int heads = 12;
        int dim = 64;
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            NDArray qkv =
                    manager.randomUniform(
                            -1f, 1f, new ai.djl.ndarray.types.Shape(n, 3 * heads * dim));
            int[] offsets = {0, n};
            AttentionOptions global = AttentionOptions.builder().build();
            AttentionOptions local = AttentionOptions.builder().optSlidingWindow(64, 64).build();
            List<Double> g = new ArrayList<>();
            List<Double> l = new ArrayList<>();
            // The first calls of a process pay for page faults on fresh 25 MB outputs (measured:
            // 67 ms for the local call before the allocator reuses memory, 27 ms after).
            for (int i = 0; i < 3; i++) {
                FusedAttention.forwardPackedQkv(qkv, heads, offsets, global).close();
                FusedAttention.forwardPackedQkv(qkv, heads, offsets, local).close();
            }
            for (int i = 0; i < Math.max(5, repeats); i++) {
                long t0 = System.nanoTime();
                FusedAttention.forwardPackedQkv(qkv, heads, offsets, global).close();
                long t1 = System.nanoTime();
                FusedAttention.forwardPackedQkv(qkv, heads, offsets, local).close();
                long t2 = System.nanoTime();
                g.add((t1 - t0) / 1e9);
                l.add((t2 - t1) / 1e9);
            }
            System.out.printf(
                    "longdoc-attention tokens=%d heads=%d dim=%d window=64 global_s=%.4f local_s=%.4f ratio=%.1f%n",
                    n, heads, dim, median(g), median(l), median(g) / median(l));
        }
    }

    /**
     * The configuration of {@link #baseCheckpoint}: ModernBERT-base's shape (22 layers, hidden 768,
     * 12 heads, GeGLU 1,152, window ±64 in two layers of three, vocabulary 50,368).
     *
     * @return the configuration
     */
    public static EncoderConfig baseConfig() {
        int layers = 22;
        boolean[] local = new boolean[layers];
        for (int i = 0; i < layers; i++) {
            local[i] = i % 3 != 0;
        }
        return EncoderConfig.builder()
                .optArchitecture(EncoderArchitecture.MODERNBERT)
                .setHiddenSize(768)
                .setNumHeads(12)
                .setNumLayers(layers)
                .setIntermediateSize(1152)
                .setMaxPositions(8192)
                .setVocabSize(50368)
                .optPadTokenId(50283)
                .optLayerNormEps(1e-5f)
                .optBiases(false, false)
                .optRotary(160_000f, 10_000f, 64, local)
                .build();
    }

    /**
     * A ModernBERT-base-shaped checkpoint with random weights from a fixed seed: uniform values of
     * the published model's scale (linear layers ±0.035, norms 1 ± 0.1, embeddings ±0.1).
     *
     * @return the checkpoint, in memory
     */
    public static EncoderCheckpoint baseCheckpoint() {
        EncoderConfig config = baseConfig();
        SplittableRandom random = new SplittableRandom(16);
        Map<String, CheckpointTensor> tensors = new LinkedHashMap<>();
        for (CheckpointParameter p : TransformerEncoder.create(config).getCheckpointParameters()) {
            long[] shape = p.getShape().getShape();
            float[] values = new float[Math.toIntExact(p.getShape().size())];
            boolean norm = shape.length == 1;
            float scale = norm ? 0.1f : p.getName().contains("embeddings") ? 0.1f : 0.035f;
            for (int i = 0; i < values.length; i++) {
                values[i] = (norm ? 1f : 0f) + scale * (float) (2 * random.nextDouble() - 1);
            }
            tensors.put(p.getName(), new CheckpointTensor(p.getName(), shape, values));
        }
        return new EncoderCheckpoint(
                Paths.get("modernbert-base-random"), config, tensors, "built in");
    }

    private static long[] ids(int n, int vocab) {
        SplittableRandom random = new SplittableRandom(n);
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
            ids[i] = random.nextInt(Math.min(vocab, 50000));
        }
        return ids;
    }

    private static void print(
            String model, String engine, String precision, int n, List<Double> s, long peak) {
        List<Double> sorted = new ArrayList<>(s);
        Collections.sort(sorted);
        System.out.printf(
                "longdoc model=%s engine=%s precision=%s tokens=%d s=%.3f s_min=%.3f s_max=%.3f runs=%d peak_extra_mb=%.1f%n",
                model,
                engine,
                precision,
                n,
                median(s),
                sorted.get(0),
                sorted.get(sorted.size() - 1),
                s.size(),
                peak / 1048576.0);
    }

    private static String label(String model) {
        return "base".equals(model)
                ? "modernbert-base-random"
                : Paths.get(model).getFileName().toString();
    }

    private static double median(List<Double> samples) {
        List<Double> s = new ArrayList<>(samples);
        Collections.sort(s);
        int m = s.size() / 2;
        return s.size() % 2 == 1 ? s.get(m) : (s.get(m - 1) + s.get(m)) / 2;
    }

    private static String cpuModel() {
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException e) {
            // unknown
        }
        return "unknown";
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> map = new LinkedHashMap<>();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq > 0) {
                map.put(arg.substring(0, eq), arg.substring(eq + 1));
            }
        }
        return map;
    }

    private static List<Integer> ints(String csv) {
        List<Integer> out = new ArrayList<>();
        for (String s : csv.split(",")) {
            out.add(Integer.parseInt(s.trim()));
        }
        return out;
    }
}
