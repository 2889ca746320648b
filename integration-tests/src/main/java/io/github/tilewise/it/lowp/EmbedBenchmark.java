package io.github.tilewise.it.lowp;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import io.github.tilewise.djl.lowp.Calibration;
import io.github.tilewise.djl.lowp.CalibrationTexts;
import io.github.tilewise.djl.lowp.ConversionReport;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import io.github.tilewise.it.models.OrtEncoder;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Sentence-embedding throughput of all-MiniLM-L6-v2, batch 32 x 128 tokens, per precision, with
 * ONNX Runtime in the same run on the fp32 export and on ONNX Runtime's own dynamically quantized
 * export:
 *
 * <pre>
 * embed model=all-minilm-l6-v2 engine=&lt;tilewise|onnxruntime&gt; precision=&lt;p&gt; batch=32 seq=128 ms=&lt;median&gt; seq_per_s=&lt;x&gt;
 * </pre>
 *
 * <p>Both engines get the same token batch (tokenization is not timed) and 2 intra-op threads. All
 * seven engine/precision pairs are loaded first, then timed in two rounds of blocks (see {@link
 * #interleavedMedians}), so that a noisy stretch does not fall on one engine alone. Arguments:
 * {@code [reps] [padded]} (default 10; {@code padded} runs Tilewise with {@code
 * tilewise.packed=false}).
 */
public final class EmbedBenchmark {

    private static final int BATCH = 32;
    private static final int SEQ = 128;
    private static final int WARM_UP_CALLS = 6;

    private EmbedBenchmark() {}

    /**
     * Runs the benchmark.
     *
     * @param args {@code [reps]}
     * @throws Exception if a model cannot be loaded
     */
    public static void main(String[] args) throws Exception {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        if (args.length > 1 && "padded".equals(args[1])) {
            // The padded computation, to compare with the default packed one on the same batch.
            System.setProperty("tilewise.packed", "false");
        }
        System.out.println("# " + Tilewise.describe());
        Path onnx = RealModels.onnxFile(RealModels.miniLm());
        Path quantized = RealModels.miniLmQuantizedOnnx();
        List<String> texts = longTexts();
        Precision[] precisions = {
            Precision.FP32,
            Precision.INT8,
            Precision.BF16,
            Precision.FP16,
            Precision.INT8_WEIGHT_ONLY
        };
        List<TextEncoder> encoders = new ArrayList<>();
        try (OrtEncoder ortFp32 = new OrtEncoder(onnx, 2);
                OrtEncoder ortInt8 = new OrtEncoder(quantized, 2)) {
            Calibration calibration = null;
            TokenBatch batch = null;
            for (Precision p : precisions) {
                TextEncoder encoder =
                        TextEncoder.builder()
                                .setModelPath(onnx)
                                .optPooling(Pooling.MEAN)
                                .optMaxLength(SEQ)
                                .optTruncation(true)
                                .build();
                encoders.add(encoder);
                if (batch == null) {
                    batch = encoder.getTokenizer().encode(texts);
                    if (batch.getSequenceLength() != SEQ) {
                        throw new IllegalStateException(
                                "batch has "
                                        + batch.getSequenceLength()
                                        + " tokens, expected "
                                        + SEQ);
                    }
                    calibration = Calibration.collect(encoder, CalibrationTexts.defaults(), 16);
                }
                if (p == Precision.FP32) {
                    continue;
                }
                LowPrecisionConverter.Builder b = LowPrecisionConverter.builder().setPrecision(p);
                if (p == Precision.INT8) {
                    b.optCalibration(calibration).optSmoothQuant(0.5f);
                }
                ConversionReport report = b.build().convert(encoder.getBlock());
                System.out.printf(
                        Locale.ROOT,
                        "# %s linear weights %.1f MiB (fp32 %.1f MiB), kernels %s, attention %s%n",
                        p.label(),
                        report.getResidentBytes() / 1048576.0,
                        report.getFp32Bytes() / 1048576.0,
                        report.kernelCounts(),
                        encoder.getBlock().getEncoder().getAttentionPrecision());
            }
            TokenBatch tokens = batch;
            List<String> names = new ArrayList<>();
            List<Step> steps = new ArrayList<>();
            names.add("onnxruntime fp32");
            steps.add(() -> ortFp32.run(tokens));
            names.add("onnxruntime int8");
            steps.add(() -> ortInt8.run(tokens));
            for (int i = 0; i < precisions.length; i++) {
                TextEncoder encoder = encoders.get(i);
                names.add("tilewise " + precisions[i].label());
                steps.add(() -> tilewise(encoder, tokens));
            }
            double[] medians = interleavedMedians(reps, steps);
            for (int i = 0; i < steps.size(); i++) {
                String[] engineAndPrecision = names.get(i).split(" ");
                print(engineAndPrecision[0], engineAndPrecision[1], medians[i]);
            }
        } finally {
            for (TextEncoder encoder : encoders) {
                encoder.close();
            }
        }
    }

    private static void tilewise(TextEncoder encoder, TokenBatch batch) {
        try (NDManager scope = encoder.getManager().newSubManager()) {
            NDList in = batch.toNDList(scope);
            encoder.getBlock().run(in.get(0), in.get(1), in.get(2)).get(1).toFloatArray();
        }
    }

    /** 32 texts, each well over 128 tokens, so the batch is exactly 32 x 128 after truncation. */
    static List<String> longTexts() {
        List<String> all = AccuracyTexts.all();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < BATCH; i++) {
            StringBuilder sb = new StringBuilder();
            for (int j = 0; sb.length() < 1200; j++) {
                sb.append(all.get((i * 7 + j * 13) % all.size())).append(' ');
            }
            out.add(sb.toString());
        }
        return out;
    }

    private static void print(String engine, String precision, double ms) {
        System.out.printf(
                Locale.ROOT,
                "embed model=%s engine=%s precision=%s batch=%d seq=%d ms=%.1f seq_per_s=%.1f%n",
                RealModels.MINILM,
                engine,
                precision,
                BATCH,
                SEQ,
                ms,
                BATCH * 1000.0 / ms);
    }

    /** Something timed. */
    interface Step {
        void run() throws Exception;
    }

    /**
     * Medians in ms over {@code reps} timed calls per step, taken in two rounds of blocks: per
     * round, each step gets its warm-up calls ({@value #WARM_UP_CALLS} in the first round, one in
     * the second) and half of its timed calls in a row, then a pause. Blocks rather than single
     * interleaved calls, because every engine's pool keeps spinning for a while after a call and
     * would slow whatever runs right after it; two rounds, so that a noisy stretch of the machine
     * does not fall on one engine alone.
     */
    private static double[] interleavedMedians(int reps, List<Step> steps) throws Exception {
        double[][] t = new double[steps.size()][reps];
        int[] filled = new int[steps.size()];
        for (int round = 0; round < 2; round++) {
            int calls = round == 0 ? reps / 2 : reps - reps / 2;
            for (int i = 0; i < steps.size(); i++) {
                Step step = steps.get(i);
                // Warm-up: a few calls in the first round (the JIT compiles the Java side of a
                // forward only after it has run many times), one in the second.
                int warmUp = round == 0 ? WARM_UP_CALLS : 1;
                for (int w = 0; w < warmUp; w++) {
                    step.run();
                }
                for (int r = 0; r < calls; r++) {
                    long t0 = System.nanoTime();
                    step.run();
                    t[i][filled[i]++] = (System.nanoTime() - t0) / 1e6;
                }
                Thread.sleep(300);
            }
        }
        double[] medians = new double[steps.size()];
        for (int i = 0; i < steps.size(); i++) {
            Arrays.sort(t[i]);
            medians[i] = t[i][reps / 2];
        }
        return medians;
    }
}
