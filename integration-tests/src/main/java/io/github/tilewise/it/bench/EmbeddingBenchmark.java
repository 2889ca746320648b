package io.github.tilewise.it.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.linear.Fp32LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearOperators;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import io.github.tilewise.it.models.OrtEncoder;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * The encoder benchmark of issue 3: all-MiniLM-L6-v2 sentence embeddings (mean pooling, fp32),
 * Tilewise against ONNX Runtime in the same process on the same texts, end to end (tokenization
 * with the same Hugging Face tokenizer, forward, pooling). Every text is exactly {@code seq} tokens
 * long. The engines run in turns, one call each per round, so background load hits them alike; the
 * median of the rounds is reported. One line per engine:
 *
 * <pre>
 * embed model=&lt;m&gt; engine=&lt;e&gt; precision=&lt;p&gt; batch=&lt;b&gt; seq=&lt;s&gt; ms=&lt;median&gt; seq_per_s=&lt;x&gt;
 * </pre>
 *
 * <p>Options: {@code --batch 32}, {@code --seq 128}, {@code --threads 2} (Tilewise native and ONNX
 * Runtime intra-op threads), {@code --pytorch-threads} (PyTorch intra-op threads, default {@code
 * --threads}), {@code --reps 10}, {@code --warmup 3}, {@code --with-pytorch-linear} (adds a line
 * for Tilewise with PyTorch's BLAS in the linear layers), {@code --with-pytorch-threads-kept} (adds
 * a line for Tilewise with PyTorch's intra-op pool left at {@code --pytorch-threads} during
 * forwards instead of 1), {@code --profile} (also prints where Tilewise's time goes: linear layers,
 * attention, layer norms, tokenization, the rest).
 */
public final class EmbeddingBenchmark {

    private static final String MODEL = "all-MiniLM-L6-v2";

    private EmbeddingBenchmark() {}

    /**
     * Runs the benchmark.
     *
     * @param args options, see the class comment
     * @throws Exception if a model fails to load or run
     */
    public static void main(String[] args) throws Exception {
        int batch = intOption(args, "--batch", 32);
        int seq = intOption(args, "--seq", 128);
        int threads = intOption(args, "--threads", 2);
        int reps = intOption(args, "--reps", 10);
        int warmup = intOption(args, "--warmup", 3);
        int pytorchThreads = intOption(args, "--pytorch-threads", threads);
        boolean profile = Arrays.asList(args).contains("--profile");
        boolean pytorchLinear = Arrays.asList(args).contains("--with-pytorch-linear");
        boolean pytorchKeep = Arrays.asList(args).contains("--with-pytorch-threads-kept");
        BenchmarkThreads.configure(threads, pytorchThreads);
        Path dir = RealModels.miniLm();
        Path onnx = RealModels.onnxFile(dir);
        List<String> texts = texts(batch, seq);
        try (TextEncoder tilewise =
                        TextEncoder.builder()
                                .setModelPath(onnx)
                                .optPooling(Pooling.MEAN)
                                .optNormalize(true)
                                .optMaxLength(seq)
                                .build();
                OrtEncoder ort = new OrtEncoder(onnx, threads)) {
            TokenBatch tokens = tilewise.getTokenizer().encode(texts);
            if (tokens.getSequenceLength() != seq) {
                throw new IllegalStateException("texts tokenize to " + tokens.getSequenceLength());
            }
            System.out.printf(
                    Locale.ROOT,
                    "# threads=%d (tilewise native, onnxruntime intra-op) pytorch_threads=%d"
                            + " reps=%d warmup=%d linear=%s%n",
                    threads,
                    pytorchThreads,
                    reps,
                    warmup,
                    tilewise.getBlock().getLinearBlocks().get(0).getOperator().describe());
            List<String> engines = new ArrayList<>(List.of("tilewise", "onnxruntime"));
            List<Callable<?>> calls = new ArrayList<>();
            calls.add(() -> tilewise.embed(texts));
            calls.add(() -> ortEmbed(ort, tilewise, texts));
            if (pytorchLinear) {
                // The same blocks with PyTorch's BLAS in the linear layers: what the native kernel
                // buys. A second encoder, so the variants can be interleaved.
                TextEncoder viaPytorch =
                        TextEncoder.builder()
                                .setModelPath(onnx)
                                .optPooling(Pooling.MEAN)
                                .optNormalize(true)
                                .optMaxLength(seq)
                                .optLinearOperatorFactory(
                                        l ->
                                                new Fp32LinearOperator(
                                                        l.getWeight(),
                                                        l.getBias(),
                                                        l.getActivation()))
                                .build();
                closeLater = viaPytorch;
                engines.add("tilewise-pytorch-linear");
                calls.add(
                        () -> {
                            // PyTorch's BLAS needs its intra-op threads.
                            System.setProperty("tilewise.pytorch.threads", "keep");
                            try {
                                return viaPytorch.embed(texts);
                            } finally {
                                System.clearProperty("tilewise.pytorch.threads");
                            }
                        });
            }
            if (pytorchKeep) {
                // Tilewise again with PyTorch's intra-op pool left at --pytorch-threads during the
                // forward (tilewise.pytorch.threads=keep) instead of 1: the cost of OpenMP spinning
                // after PyTorch's ops (embeddings, LayerNorm) next to the native pool.
                engines.add("tilewise-pytorch-threads-kept");
                calls.add(
                        () -> {
                            System.setProperty("tilewise.pytorch.threads", "keep");
                            try {
                                return tilewise.embed(texts);
                            } finally {
                                System.clearProperty("tilewise.pytorch.threads");
                            }
                        });
            }
            double[] ms = interleavedMedians(warmup, reps, calls);
            for (int e = 0; e < engines.size(); e++) {
                report(engines.get(e), batch, seq, ms[e]);
            }
            if (profile) {
                profile(tilewise, texts, reps);
            }
        } finally {
            if (closeLater != null) {
                closeLater.close();
            }
        }
    }

    /** A second encoder opened by an option, closed at exit. */
    private static AutoCloseable closeLater;

    /**
     * Runs the calls in turns (a, b, c, a, b, c, ...) so that all of them see the same background
     * load, and returns each one's median time in ms.
     */
    private static double[] interleavedMedians(int warmup, int reps, List<Callable<?>> calls)
            throws Exception {
        for (int i = 0; i < warmup; i++) {
            for (Callable<?> c : calls) {
                c.call();
            }
        }
        double[][] ms = new double[calls.size()][reps];
        for (int i = 0; i < reps; i++) {
            for (int c = 0; c < calls.size(); c++) {
                long t0 = System.nanoTime();
                calls.get(c).call();
                ms[c][i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        double[] medians = new double[calls.size()];
        for (int c = 0; c < calls.size(); c++) {
            Arrays.sort(ms[c]);
            medians[c] =
                    reps % 2 == 1 ? ms[c][reps / 2] : (ms[c][reps / 2 - 1] + ms[c][reps / 2]) / 2;
        }
        return medians;
    }

    /** ONNX Runtime's end-to-end equivalent of {@code TextEncoder.embed}: tokenize, run, pool. */
    private static float[][] ortEmbed(OrtEncoder ort, TextEncoder tok, List<String> texts)
            throws Exception {
        TokenBatch batch = tok.getTokenizer().encode(texts);
        float[] hidden = ort.run(batch)[0];
        int h = tok.getConfig().getHiddenSize();
        int seq = batch.getSequenceLength();
        long[] mask = batch.getAttentionMask();
        float[][] out = new float[texts.size()][h];
        for (int b = 0; b < texts.size(); b++) {
            int count = 0;
            for (int t = 0; t < seq; t++) {
                if (mask[b * seq + t] != 0) {
                    count++;
                    for (int i = 0; i < h; i++) {
                        out[b][i] += hidden[(b * seq + t) * h + i];
                    }
                }
            }
            double norm = 0;
            for (int i = 0; i < h; i++) {
                out[b][i] /= count;
                norm += out[b][i] * out[b][i];
            }
            float inv = (float) (1 / Math.sqrt(norm));
            for (int i = 0; i < h; i++) {
                out[b][i] *= inv;
            }
        }
        return out;
    }

    /** Splits Tilewise's time: linear layers (timed per call), attention and layer norms alone. */
    private static void profile(TextEncoder encoder, List<String> texts, int reps) {
        EncoderConfig c = encoder.getConfig();
        long[] linearNanos = new long[1];
        List<LinearBlock> layers = encoder.getBlock().getLinearBlocks();
        for (LinearBlock l : layers) {
            LinearOperator inner =
                    LinearOperators.fp32(l.getWeight(), l.getBias(), l.getActivation());
            l.setOperator(new TimedOperator(inner, linearNanos));
        }
        String kind = layers.get(0).getOperator().describe();
        long start = System.nanoTime();
        for (int i = 0; i < reps; i++) {
            encoder.embed(texts);
        }
        double total = (System.nanoTime() - start) / 1e6 / reps;
        double linear = linearNanos[0] / 1e6 / reps;
        for (LinearBlock l : layers) {
            l.setOperator(null);
        }
        TokenBatch tokens = encoder.getTokenizer().encode(texts);
        int b = tokens.getBatchSize();
        int s = tokens.getSequenceLength();
        double attention;
        double norms;
        double tokenize;
        try (NDManager m = encoder.getManager().newSubManager()) {
            Shape heads = new Shape(b, s, c.getNumHeads(), c.getHeadSize());
            NDArray q = m.randomNormal(heads);
            NDArray k = m.randomNormal(heads);
            NDArray v = m.randomNormal(heads);
            int[] lengths = tokens.getLengths();
            AttentionOptions options =
                    AttentionOptions.builder()
                            .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                            .optKeyValidLengths(lengths)
                            .build();
            attention =
                    c.getNumLayers()
                            * timeMs(reps, () -> FusedAttention.forward(q, k, v, options).close());
            NDArray x = m.randomNormal(new Shape(b, s, c.getHiddenSize()));
            NDArray gamma = m.ones(new Shape(c.getHiddenSize()));
            NDArray beta = m.zeros(new Shape(c.getHiddenSize()));
            norms =
                    (2 * c.getNumLayers() + 1)
                            * timeMs(
                                    reps,
                                    () ->
                                            x.getNDArrayInternal()
                                                    .layerNorm(
                                                            x,
                                                            new Shape(c.getHiddenSize()),
                                                            gamma,
                                                            beta,
                                                            1e-12f)
                                                    .close());
            tokenize = timeMs(reps, () -> encoder.getTokenizer().encode(texts));
        }
        System.out.printf(
                Locale.ROOT,
                "# profile tilewise total_ms=%.1f linear_ms=%.1f attention_ms=%.1f"
                        + " layernorm_ms=%.1f tokenize_ms=%.1f rest_ms=%.1f%n",
                total,
                linear,
                attention,
                norms,
                tokenize,
                total - linear - attention - norms - tokenize);
        int m = b * s;
        double flops = 0;
        for (LinearBlock l : layers) {
            flops +=
                    2.0
                            * (l.getName().startsWith("pooler") ? b : m)
                            * l.getInFeatures()
                            * l.getOutFeatures();
        }
        System.out.printf(
                Locale.ROOT,
                "# profile linear_impl=%s linear_gflops=%.1f%n",
                kind,
                flops / (linear * 1e6));
    }

    /** Wraps an operator, adding its wall time to a counter. */
    private static final class TimedOperator implements LinearOperator {
        private final LinearOperator inner;
        private final long[] nanos;

        TimedOperator(LinearOperator inner, long[] nanos) {
            this.inner = inner;
            this.nanos = nanos;
        }

        @Override
        public void close() {
            inner.close();
        }

        @Override
        public NDArray forward(NDArray x, NDArray residual) {
            long t0 = System.nanoTime();
            NDArray y = inner.forward(x, residual);
            nanos[0] += System.nanoTime() - t0;
            return y;
        }

        @Override
        public String describe() {
            return "timed " + inner.describe();
        }
    }

    private static double timeMs(int reps, Runnable r) {
        r.run();
        long t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) {
            r.run();
        }
        return (System.nanoTime() - t0) / 1e6 / reps;
    }

    private static void report(String engine, int batch, int seq, double ms) {
        System.out.printf(
                Locale.ROOT,
                "embed model=%s engine=%s precision=fp32 batch=%d seq=%d ms=%.1f seq_per_s=%.1f%n",
                MODEL,
                engine,
                batch,
                seq,
                ms,
                batch * 1000.0 / ms);
    }

    /** Texts long enough to fill {@code seq} tokens once truncated. */
    static List<String> texts(int batch, int seq) {
        String[] words = {
            "the",
            "encoder",
            "reads",
            "long",
            "sentences",
            "about",
            "rivers",
            "banks",
            "money",
            "music",
            "science",
            "history",
            "cooking",
            "travel",
            "weather",
            "sports",
            "games"
        };
        Random random = new Random(42);
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < seq + 16; w++) {
                sb.append(words[random.nextInt(words.length)]).append(' ');
            }
            texts.add(sb.toString());
        }
        return texts;
    }

    private static int intOption(String[] args, String name, int fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return Integer.parseInt(args[i + 1]);
            }
        }
        return fallback;
    }
}
