package io.github.tilewise.it.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.onnxruntime.OrtException;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.attention.FusedAttention;
import io.github.tilewise.djl.attention.ReferenceAttention;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The attention benchmark of issue 2: Tilewise's fused attention (fp32 data, and bf16 compute on
 * fp32 data) against DJL's naive composition ({@link ReferenceAttention}) and ONNX Runtime's {@code
 * com.microsoft.MultiHeadAttention}, in one process, on the same inputs. One line per case:
 *
 * <pre>
 * attention impl=&lt;name&gt; dtype=&lt;t&gt; B=&lt;b&gt; H=&lt;h&gt; Nq=&lt;n&gt; Nk=&lt;n&gt; D=&lt;d&gt; causal=&lt;0|1&gt; ms=&lt;median&gt; gflops=&lt;x&gt; extra_mb=&lt;peak extra memory&gt;
 * </pre>
 *
 * <p>{@code dtype=bf16} is fp32 arrays with {@link ComputePrecision#BF16}. Lines with {@code B=4}
 * are the padded case (valid lengths N, N/2, N/4, N/8 with a key-padding mask; flops count the
 * valid keys only). A case that would not fit in memory prints {@code ms=skipped} and the reason.
 * {@code extra_mb} is measured by {@link PeakMemory} on the first call of a case; {@code ms} is the
 * median of the calls after it, as many as fit in the time budget. The run starts and ends with the
 * CPU's instruction peaks ({@link InstructionPeaks}: {@code peak instr=... gops=...}), so that
 * percentages of peak come from the same run.
 *
 * <p>Options (all optional): {@code --n 512,2048,8192,32768}, {@code --cases plain,causal,padded},
 * {@code --impls tilewise,tilewise-out,ort,djl-naive} ({@code tilewise-out}: one reused output
 * array), {@code --dtypes fp32,bf16} (of tilewise; {@code fp16} is also accepted), {@code --heads
 * 8}, {@code --dim 64}, {@code --threads 2}, {@code --budget-s 5} (seconds of timed calls per
 * line), {@code --max-reps 15}.
 */
public final class AttentionBenchmark {

    /** Share of the available memory a skipped peer would have needed before we call it a skip. */
    private static final double MEMORY_HEADROOM = 0.7;

    private final Options options;

    private AttentionBenchmark(Options options) {
        this.options = options;
    }

    /**
     * Runs the benchmark.
     *
     * @param args options, see the class comment
     * @throws Exception if ONNX Runtime or DJL fail
     */
    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        // PyTorch reads its thread count when the engine starts.
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(options.threads));
        System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        new AttentionBenchmark(options).run();
    }

    private void run() throws Exception {
        if (Tilewise.isNativeAvailable()) {
            Tilewise.setNumThreads(options.threads);
        }
        System.out.println("# " + Tilewise.describe());
        System.out.println(
                "# threads="
                        + options.threads
                        + " budget_s="
                        + options.budgetSeconds
                        + " peak-memory="
                        + (PeakMemory.isSupported() ? "VmHWM" : "unsupported")
                        + " available_mb="
                        + PeakMemory.availableBytes() / (1 << 20));
        InstructionPeaks.print(options.threads);
        for (int n : options.lengths) {
            for (String variant : options.cases) {
                AttentionCase c =
                        variant.equals("padded")
                                ? AttentionCase.padded(options.heads, n, options.headDim)
                                : AttentionCase.single(
                                        options.heads,
                                        n,
                                        options.headDim,
                                        variant.equals("causal"));
                try (NDManager manager = NDManager.newBaseManager()) {
                    runCase(c, manager);
                }
            }
        }
        InstructionPeaks.print(options.threads); // again: the machine's speed drifts
    }

    private void runCase(AttentionCase c, NDManager manager) throws Exception {
        Shape shape = new Shape(c.batch, c.qLen, c.heads, c.headDim);
        NDArray q = manager.randomNormal(shape);
        NDArray k = manager.randomNormal(shape);
        NDArray v = manager.randomNormal(shape);
        AttentionOptions.Builder builder =
                AttentionOptions.builder()
                        .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                        .optCausal(c.causal);
        IntBuffer ortMask = null;
        if (c.isPadded()) {
            boolean[] keep = new boolean[c.batch * c.kvLen];
            ortMask =
                    ByteBuffer.allocateDirect(4 * c.batch * c.kvLen)
                            .order(ByteOrder.nativeOrder())
                            .asIntBuffer();
            int[] lengths = c.validLengths();
            for (int b = 0; b < c.batch; ++b) {
                for (int j = 0; j < c.kvLen; ++j) {
                    keep[b * c.kvLen + j] = j < lengths[b];
                    ortMask.put(b * c.kvLen + j, j < lengths[b] ? 1 : 0);
                }
            }
            builder.optKeyPaddingMask(manager.create(keep, new Shape(c.batch, c.kvLen)));
        }
        AttentionOptions fp32Options = builder.build();

        for (String impl : options.impls) {
            switch (impl) {
                case "tilewise":
                case "tilewise-out":
                    for (String dtype : options.dtypes) {
                        runTilewise(c, impl, dtype, q, k, v, builder);
                    }
                    break;
                case "djl-naive":
                    runNaive(c, q, k, v, fp32Options);
                    break;
                case "ort":
                    runOrt(c, q, k, v, ortMask);
                    break;
                default:
                    throw new IllegalArgumentException("unknown impl " + impl);
            }
            Thread.sleep(300); // let the previous peer's spinning worker threads go idle
        }
    }

    /**
     * Times Tilewise: {@code impl} "tilewise" allocates the output on every call (the plain API),
     * "tilewise-out" writes into one caller-owned array reused from call to call, as the encoder's
     * layers do (at N = 8,192 a new 32 MiB output page-faults on every call; ONNX Runtime's arena
     * keeps its outputs' memory).
     */
    private void runTilewise(
            AttentionCase c,
            String impl,
            String dtype,
            NDArray q,
            NDArray k,
            NDArray v,
            AttentionOptions.Builder builder) {
        if (!Tilewise.isNativeAvailable()) {
            skip(impl, dtype, c, "native_library_not_loaded");
            return;
        }
        NDArray q2 = q;
        NDArray k2 = k;
        NDArray v2 = v;
        AttentionOptions opts;
        switch (dtype) {
            case "fp32":
                opts = builder.optComputePrecision(ComputePrecision.DATA).build();
                break;
            case "bf16":
                opts = builder.optComputePrecision(ComputePrecision.BF16).build();
                break;
            case "fp16":
                q2 = q.toType(DataType.FLOAT16, false);
                k2 = k.toType(DataType.FLOAT16, false);
                v2 = v.toType(DataType.FLOAT16, false);
                opts = builder.optComputePrecision(ComputePrecision.DATA).build();
                break;
            default:
                throw new IllegalArgumentException("unknown dtype " + dtype);
        }
        NDArray qq = q2;
        NDArray kk = k2;
        NDArray vv = v2;
        if (impl.equals("tilewise-out")) {
            try (NDArray out = qq.getManager().create(qq.getShape(), qq.getDataType())) {
                report(impl, dtype, c, () -> FusedAttention.forward(qq, kk, vv, opts, out));
            }
        } else {
            report(impl, dtype, c, () -> FusedAttention.forward(qq, kk, vv, opts).close());
        }
        if (q2 != q) {
            q2.close();
            k2.close();
            v2.close();
        }
    }

    private void runNaive(AttentionCase c, NDArray q, NDArray k, NDArray v, AttentionOptions opts) {
        // Scores, their exponentials and a transient copy are alive at once.
        double needed = 2.5 * c.scoreBytes();
        if (needed > MEMORY_HEADROOM * PeakMemory.availableBytes()) {
            skip("djl-naive", "fp32", c, String.format(Locale.ROOT, "needs_~%.1fGB", needed / 1e9));
            return;
        }
        report("djl-naive", "fp32", c, () -> ReferenceAttention.forward(q, k, v, opts).close());
    }

    private void runOrt(AttentionCase c, NDArray q, NDArray k, NDArray v, IntBuffer mask)
            throws OrtException {
        // Causal and masked attention leave ONNX Runtime's flash kernel for the unfused path,
        // which materialises the scores and their softmax.
        if (c.causal || c.isPadded()) {
            double needed = 2 * c.scoreBytes();
            if (needed > MEMORY_HEADROOM * PeakMemory.availableBytes()) {
                skip("ort", "fp32", c, String.format(Locale.ROOT, "needs_~%.1fGB", needed / 1e9));
                return;
            }
        }
        FloatBuffer qf = q.toByteBuffer(true).asFloatBuffer();
        FloatBuffer kf = k.toByteBuffer(true).asFloatBuffer();
        FloatBuffer vf = v.toByteBuffer(true).asFloatBuffer();
        try (OrtMultiHeadAttention ort =
                new OrtMultiHeadAttention(c, c.causal, qf, kf, vf, mask, options.threads)) {
            report(
                    "ort",
                    "fp32",
                    c,
                    () -> {
                        try {
                            ort.run();
                        } catch (OrtException e) {
                            throw new IllegalStateException(e);
                        }
                    });
        }
    }

    /** Measures one implementation on one case and prints its line. */
    private void report(String impl, String dtype, AttentionCase c, Runnable call) {
        long[] first = new long[1];
        long extraBytes =
                PeakMemory.measure(
                        () -> {
                            long start = System.nanoTime();
                            call.run();
                            first[0] = System.nanoTime() - start;
                        });
        double firstMs = first[0] / 1e6;
        List<Double> samples = new ArrayList<>();
        double budgetMs = options.budgetSeconds * 1000;
        if (firstMs >= budgetMs / 2) {
            samples.add(firstMs); // too slow to repeat: the first call is the measurement
        } else {
            // Short calls are warmed up for a quarter of the budget (at most 200 calls) first: the
            // JIT compiles the Java side of a call only after it has run many times, and a fast
            // native kernel would otherwise be timed behind interpreted argument checking.
            long warmUntil = System.nanoTime() + (long) (budgetMs / 4 * 1e6);
            for (int i = 0; i < 200 && System.nanoTime() < warmUntil; ++i) {
                call.run();
            }
            int reps = (int) Math.max(2, Math.min(options.maxReps, budgetMs / firstMs));
            for (int i = 0; i < reps; ++i) {
                long start = System.nanoTime();
                call.run();
                samples.add((System.nanoTime() - start) / 1e6);
            }
        }
        double ms = median(samples);
        System.out.println(
                prefix(impl, dtype, c)
                        + String.format(
                                Locale.ROOT,
                                " ms=%.3f gflops=%.1f extra_mb=%.1f",
                                ms,
                                c.flops() / (ms * 1e6),
                                extraBytes < 0 ? -1.0 : extraBytes / (1024.0 * 1024.0)));
    }

    private static void skip(String impl, String dtype, AttentionCase c, String reason) {
        System.out.println(
                prefix(impl, dtype, c) + " ms=skipped gflops=- extra_mb=- reason=" + reason);
    }

    private static String prefix(String impl, String dtype, AttentionCase c) {
        return String.format(
                Locale.ROOT,
                "attention impl=%s dtype=%s B=%d H=%d Nq=%d Nk=%d D=%d causal=%d",
                impl,
                dtype,
                c.batch,
                c.heads,
                c.qLen,
                c.kvLen,
                c.headDim,
                c.causal ? 1 : 0);
    }

    private static double median(List<Double> samples) {
        double[] sorted = samples.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int mid = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /** Command-line options. */
    private static final class Options {
        List<Integer> lengths = List.of(512, 2048, 8192, 32768);
        List<String> cases = List.of("plain", "causal", "padded");
        List<String> impls = List.of("tilewise", "tilewise-out", "ort", "djl-naive");
        List<String> dtypes = List.of("fp32", "bf16");
        int heads = 8;
        int headDim = 64;
        int threads = 2;
        double budgetSeconds = 5;
        int maxReps = 15;

        static Options parse(String[] args) {
            Options o = new Options();
            for (int i = 0; i < args.length; ++i) {
                String name = args[i];
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(name + " needs a value");
                }
                String value = args[++i];
                switch (name) {
                    case "--n":
                        o.lengths = Arrays.stream(value.split(",")).map(Integer::valueOf).toList();
                        break;
                    case "--cases":
                        o.cases = checked(value, "plain", "causal", "padded");
                        break;
                    case "--impls":
                        o.impls = checked(value, "tilewise", "tilewise-out", "ort", "djl-naive");
                        break;
                    case "--dtypes":
                        o.dtypes = checked(value, "fp32", "bf16", "fp16");
                        break;
                    case "--heads":
                        o.heads = Integer.parseInt(value);
                        break;
                    case "--dim":
                        o.headDim = Integer.parseInt(value);
                        break;
                    case "--threads":
                        o.threads = Integer.parseInt(value);
                        break;
                    case "--budget-s":
                        o.budgetSeconds = Double.parseDouble(value);
                        break;
                    case "--max-reps":
                        o.maxReps = Integer.parseInt(value);
                        break;
                    default:
                        throw new IllegalArgumentException(
                                "unknown option "
                                        + name
                                        + "; known: --n --cases --impls --dtypes --heads --dim"
                                        + " --threads --budget-s --max-reps");
                }
            }
            return o;
        }

        private static List<String> checked(String value, String... allowed) {
            List<String> items = Arrays.asList(value.split(","));
            for (String item : items) {
                if (!Arrays.asList(allowed).contains(item)) {
                    throw new IllegalArgumentException(
                            "unknown value '" + item + "'; expected " + String.join(",", allowed));
                }
            }
            return items;
        }
    }
}
