package io.github.tilewise.it.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import io.github.tilewise.djl.lowp.LowPrecisionConverter;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every architecture against Hugging Face transformers' own outputs: the seeded checkpoint is
 * written as transformers saved it (one {@code model.safetensors}, or three shards with an index)
 * or as transformers exported it to ONNX, read by Tilewise's reader, and run on the recorded inputs
 * — short texts, a right-padded batch, and long texts (thousands of tokens for ModernBERT and
 * XLM-RoBERTa). fp32 must be within 1e-4 of transformers' fp32 last hidden state at every recorded
 * real-token row; INT8 and BF16 mean-pooled vectors within the cosine bounds used for MiniLM (INT8
 * min 0.99, BF16 min 0.999).
 */
class ArchitectureParityTest {

    @TempDir Path tmp;

    static List<String> architectures() {
        return SeededCheckpoint.ARCHITECTURES;
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void fp32MatchesTransformers(String arch) throws Exception {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        Path dir = SeededCheckpoint.load(arch).writeDirectory(tmp.resolve(arch));
        double worst = compare(arch, EncoderCheckpoint.read(dir), null);
        System.out.printf(
                "parity arch=%s route=safetensors precision=fp32 max_abs=%.3g%n", arch, worst);
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void shardedCheckpointLoadsTheSameModel(String arch) throws Exception {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        Path dir = SeededCheckpoint.load(arch).writeShardedDirectory(tmp.resolve(arch), 3);
        double worst = compare(arch, EncoderCheckpoint.read(dir), null);
        System.out.printf(
                "parity arch=%s route=sharded precision=fp32 max_abs=%.3g%n", arch, worst);
    }

    /**
     * The ONNX route: transformers' own export (torch.onnx, dynamo; committed without its weights
     * as {@code model-skeleton.onnx.txtpb}, refilled from the seed) with its {@code config.json}.
     * ONNX Runtime running the refilled file reproduces transformers' outputs (so it is the export
     * transformers made), and Tilewise, importing the same file, matches transformers within 1e-4.
     */
    @ParameterizedTest
    @MethodSource("architectures")
    void onnxExportLoadsTheSameModel(String arch) throws Exception {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        Path dir = OnnxSkeleton.fill(SeededCheckpoint.load(arch), tmp.resolve(arch + "-onnx"));
        double ort = onnxRuntimeWorst(arch, dir.resolve("model.onnx"));
        System.out.printf("parity arch=%s route=onnx engine=onnxruntime max_abs=%.3g%n", arch, ort);
        assertTrue(ort <= 1e-4, arch + ": ONNX Runtime on the refilled export " + ort);
        double worst = compare(arch, EncoderCheckpoint.read(dir), null);
        System.out.printf("parity arch=%s route=onnx precision=fp32 max_abs=%.3g%n", arch, worst);
    }

    /** ONNX Runtime on the recorded inputs: the worst difference to transformers' fp32 rows. */
    private static double onnxRuntimeWorst(String arch, Path onnx) throws Exception {
        double worst = 0;
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(onnx.toString())) {
            for (ReferenceOutputs.Case c : ReferenceOutputs.load(arch).getCases()) {
                long[][] ids = c.getInputIds();
                int batch = ids.length;
                int seq = c.getSeqLen();
                long[] shape = {batch, seq};
                try (OnnxTensor idTensor =
                                OnnxTensor.createTensor(env, LongBuffer.wrap(flatten(ids)), shape);
                        OnnxTensor maskTensor =
                                OnnxTensor.createTensor(
                                        env,
                                        LongBuffer.wrap(flatten(c.getAttentionMask())),
                                        shape);
                        OrtSession.Result result =
                                session.run(
                                        Map.of(
                                                "input_ids",
                                                idTensor,
                                                "attention_mask",
                                                maskTensor))) {
                    FloatBuffer out =
                            ((OnnxTensor) result.get("last_hidden_state").orElseThrow())
                                    .getFloatBuffer();
                    float[] hidden = new float[out.remaining()];
                    out.get(hidden);
                    worst = Math.max(worst, worstRow(c, hidden, batch, seq));
                }
            }
        }
        return worst;
    }

    /** The largest difference at the recorded real-token rows of transformers' fp32 output. */
    private static double worstRow(ReferenceOutputs.Case c, float[] hidden, int batch, int seq) {
        double[][][] expected = c.getLastHiddenState("fp32");
        int[] rows = c.getRows();
        int[] lengths = c.getLengths();
        int h = (int) (hidden.length / ((long) batch * seq));
        double worst = 0;
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows.length; r++) {
                if (rows[r] >= lengths[b]) {
                    continue;
                }
                int base = (b * seq + rows[r]) * h;
                for (int k = 0; k < h; k++) {
                    worst = Math.max(worst, Math.abs(hidden[base + k] - expected[b][r][k]));
                }
            }
        }
        return worst;
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void lowPrecisionStaysWithinTheCosineBounds(String arch) throws Exception {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        Path dir = SeededCheckpoint.load(arch).writeDirectory(tmp.resolve(arch));
        EncoderCheckpoint checkpoint = EncoderCheckpoint.read(dir);
        for (Precision p : List.of(Precision.INT8, Precision.BF16)) {
            double minCos = compare(arch, checkpoint, p);
            System.out.printf(
                    "parity arch=%s route=safetensors precision=%s min_cos=%.6f%n",
                    arch, p, minCos);
            assertTrue(
                    minCos >= (p == Precision.INT8 ? 0.99 : 0.999), arch + " " + p + " " + minCos);
        }
    }

    @ParameterizedTest
    @MethodSource("architectures")
    void tokenizerGivesTransformersIds(String arch) throws Exception {
        assumeTrue(SeededCheckpoint.isAvailable(arch), "no reference files for " + arch);
        Path dir = SeededCheckpoint.load(arch).writeDirectory(tmp.resolve(arch));
        EncoderCheckpoint checkpoint = EncoderCheckpoint.read(dir);
        int longest = checkpoint.getConfig().getMaxSequenceLength();
        try (EncoderTokenizer tokenizer =
                EncoderTokenizer.load(dir.resolve("tokenizer.json"), longest, false)) {
            for (ReferenceOutputs.Case c : ReferenceOutputs.load(arch).getCases()) {
                long[][] expected = c.getInputIds();
                int[] lengths = c.getLengths();
                List<String> texts = c.getTexts();
                for (int b = 0; b < texts.size(); b++) {
                    TokenBatch batch = tokenizer.encode(List.of(texts.get(b)));
                    long[] want = java.util.Arrays.copyOf(expected[b], lengths[b]);
                    assertArrayEquals(
                            want, batch.getInputIds(), arch + " " + c.getName() + " row " + b);
                }
            }
        }
    }

    /**
     * Runs every case; fp32 ({@code precision} null): asserts and returns the worst absolute
     * difference; else returns the smallest cosine of mean-pooled vectors against fp32's.
     */
    private static double compare(String arch, EncoderCheckpoint checkpoint, Precision precision)
            throws Exception {
        double worst = precision == null ? 0 : 1;
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                TransformerEncoder encoder = checkpoint.createEncoder(manager)) {
            if (precision != null) {
                LowPrecisionConverter.builder().setPrecision(precision).build().convert(encoder);
            }
            for (ReferenceOutputs.Case c : ReferenceOutputs.load(arch).getCases()) {
                String what = arch + " " + c.getName();
                long[][] ids = c.getInputIds();
                long[][] mask = c.getAttentionMask();
                int batch = ids.length;
                int seq = c.getSeqLen();
                int[] rows = c.getRows();
                int[] lengths = c.getLengths();
                double[][][] expected = c.getLastHiddenState("fp32");
                double[][] pooled = c.getMeanPooled("fp32");
                try (NDManager scope = manager.newSubManager()) {
                    NDArray idArray = scope.create(flatten(ids)).reshape(batch, seq);
                    NDArray maskArray = scope.create(flatten(mask)).reshape(batch, seq);
                    NDList out = encoder.encode(idArray, maskArray, null);
                    float[] hidden = out.get(TransformerEncoder.LAST_HIDDEN_STATE).toFloatArray();
                    int h = (int) (hidden.length / ((long) batch * seq));
                    for (int b = 0; b < batch; b++) {
                        if (precision == null) {
                            for (int r = 0; r < rows.length; r++) {
                                if (rows[r] >= lengths[b]) {
                                    continue;
                                }
                                int base = (b * seq + rows[r]) * h;
                                for (int k = 0; k < h; k++) {
                                    double d = Math.abs(hidden[base + k] - expected[b][r][k]);
                                    worst = Math.max(worst, d);
                                    if (d > 1e-4) {
                                        assertEquals(
                                                expected[b][r][k],
                                                hidden[base + k],
                                                1e-4,
                                                what + " row " + b + " token " + rows[r] + " dim "
                                                        + k);
                                    }
                                }
                            }
                            double[] mean = mean(hidden, b, seq, h, lengths[b]);
                            for (int k = 0; k < h; k++) {
                                assertEquals(pooled[b][k], mean[k], 1e-4, what + " mean, dim " + k);
                            }
                        } else {
                            worst =
                                    Math.min(
                                            worst,
                                            Float64ParityTest.cosine(
                                                    mean(hidden, b, seq, h, lengths[b]),
                                                    pooled[b]));
                        }
                    }
                }
            }
        }
        return worst;
    }

    private static long[] flatten(long[][] m) {
        long[] out = new long[m.length * m[0].length];
        for (int i = 0; i < m.length; i++) {
            System.arraycopy(m[i], 0, out, i * m[0].length, m[0].length);
        }
        return out;
    }

    private static double[] mean(float[] hidden, int b, int seq, int h, int length) {
        double[] m = new double[h];
        for (int t = 0; t < length; t++) {
            for (int k = 0; k < h; k++) {
                m[k] += hidden[(b * seq + t) * h + k];
            }
        }
        for (int k = 0; k < h; k++) {
            m[k] /= length;
        }
        return m;
    }
}
