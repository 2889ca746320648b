package io.github.tilewise.it.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.onnx.proto.OnnxMl;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import io.github.tilewise.it.bench.ModernBertOnnxGraph;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ONNX Runtime peer of the long-document benchmark: {@link ModernBertOnnxGraph} (standard ONNX
 * ops as the eager export computes, not a transformers export) of a random-weight ModernBERT, run
 * by ONNX Runtime with every graph optimisation and with none, gives the float64 reference's and
 * Tilewise's last hidden state within 1e-4 on 1,000- and 3,000-token inputs (global and sliding
 * window layers; without and with biases, other thetas). ONNX Runtime is thereby an engine
 * independent of Tilewise agreeing with the reference on the architecture. Tilewise's encoder here
 * is imported from that same ONNX file with its {@code config.json} beside it (the import route of
 * a dynamo export: named weights behind {@code Transpose}), and its tensors equal the safetensors
 * ones bit for bit.
 */
class ModernBertOnnxGraphTest {

    private static final double TOLERANCE = 1e-4;

    @TempDir Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"modernbert", "modernbert-bias"})
    void onnxRuntimeOnTheGraphMatchesFloat64AndTilewise(String variant) throws Exception {
        RandomHfCheckpoint random = RandomHfCheckpoint.create(variant, 16);
        Path hfDir = random.write(tmp.resolve(variant));
        EncoderCheckpoint checkpoint = EncoderCheckpoint.read(hfDir);
        // An export directory as transformers writes one: the graph and its config.json.
        Path exportDir = Files.createDirectories(tmp.resolve(variant + "-onnx"));
        Path onnx = exportDir.resolve("model.onnx");
        long size = ModernBertOnnxGraph.write(checkpoint, onnx);
        assertEquals(Files.size(onnx), size);
        Files.copy(hfDir.resolve("config.json"), exportDir.resolve("config.json"));

        // Tilewise imports the very file ONNX Runtime runs: the same tensors, bit for bit.
        EncoderCheckpoint imported = EncoderCheckpoint.read(exportDir);
        assertEquals(checkpoint.getTensors().keySet(), imported.getTensors().keySet());
        for (CheckpointTensor t : checkpoint.getTensors().values()) {
            CheckpointTensor i = imported.getTensor(t.getName());
            assertArrayEquals(t.getShape(), i.getShape(), t.getName());
            assertArrayEquals(t.getData(), i.getData(), t.getName());
        }
        assertEquals(checkpoint.getConfig().toString(), imported.getConfig().toString());

        OnnxMl.ModelProto model = OnnxMl.ModelProto.parseFrom(Files.readAllBytes(onnx));
        TreeSet<String> ops = new TreeSet<>();
        for (OnnxMl.NodeProto node : model.getGraph().getNodeList()) {
            assertEquals("", node.getDomain(), node.getOpType() + " is not a standard op");
            ops.add(node.getOpType());
        }
        assertTrue(
                ops.contains("Softmax") && ops.contains("Erf") && ops.contains("Where"),
                ops::toString);
        System.out.println("graph " + variant + ": " + size + " bytes, ops " + ops);

        Float64Encoder reference = random.reference();
        int hidden = checkpoint.getConfig().getHiddenSize();
        int vocab = checkpoint.getConfig().getVocabSize();
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                TransformerEncoder encoder = imported.createEncoder(manager);
                OrtSession.SessionOptions all = new OrtSession.SessionOptions();
                OrtSession.SessionOptions none = new OrtSession.SessionOptions()) {
            all.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            none.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
            try (OrtSession optimized = env.createSession(onnx.toString(), all);
                    OrtSession plain = env.createSession(onnx.toString(), none)) {
                for (int n : new int[] {1000, 3000}) {
                    // Ids above the padding id (3), so no engine may take a token for padding.
                    SplittableRandom r = new SplittableRandom(n);
                    long[] ids = new long[n];
                    int[] intIds = new int[n];
                    for (int i = 0; i < n; i++) {
                        intIds[i] = 4 + r.nextInt(vocab - 4);
                        ids[i] = intIds[i];
                    }
                    double[][] expected = reference.encode(new int[][] {intIds}, null)[0];
                    float[] tilewise;
                    try (NDManager scope = manager.newSubManager()) {
                        NDArray in = scope.create(ids).reshape(1, n);
                        NDList out = encoder.encode(in, null, null);
                        tilewise = out.get(0).toFloatArray();
                    }
                    float[] ortAll = run(env, optimized, checkpoint, ids);
                    float[] ortNone = run(env, plain, checkpoint, ids);
                    assertEquals((long) n * hidden, ortAll.length);
                    double ortVsRef = maxDiff(ortAll, expected, hidden);
                    double ortNoOptVsRef = maxDiff(ortNone, expected, hidden);
                    double tilewiseVsRef = maxDiff(tilewise, expected, hidden);
                    double ortVsTilewise = 0;
                    for (int i = 0; i < tilewise.length; i++) {
                        ortVsTilewise = Math.max(ortVsTilewise, Math.abs(ortAll[i] - tilewise[i]));
                    }
                    System.out.printf(
                            Locale.ROOT,
                            "graph %s tokens=%d max|ort-float64|=%.2e max|ort(no opt)-float64|=%.2e"
                                    + " max|tilewise-float64|=%.2e max|ort-tilewise|=%.2e%n",
                            variant,
                            n,
                            ortVsRef,
                            ortNoOptVsRef,
                            tilewiseVsRef,
                            ortVsTilewise);
                    assertTrue(ortVsRef <= TOLERANCE, variant + " " + n + ": ort " + ortVsRef);
                    assertTrue(
                            ortNoOptVsRef <= TOLERANCE,
                            variant + " " + n + ": ort without optimisation " + ortNoOptVsRef);
                    assertTrue(
                            tilewiseVsRef <= TOLERANCE,
                            variant + " " + n + ": tilewise " + tilewiseVsRef);
                    assertTrue(
                            ortVsTilewise <= TOLERANCE,
                            variant + " " + n + ": ort vs tilewise " + ortVsTilewise);
                }
            }
        }
    }

    private static float[] run(
            OrtEnvironment env, OrtSession session, EncoderCheckpoint checkpoint, long[] ids)
            throws Exception {
        Map<String, OnnxTensor> inputs =
                ModernBertOnnxGraph.inputs(env, checkpoint.getConfig(), ids);
        try (OrtSession.Result result = session.run(inputs)) {
            OnnxTensor out = (OnnxTensor) result.get(ModernBertOnnxGraph.OUTPUT).orElseThrow();
            long[] shape = out.getInfo().getShape();
            assertEquals(3, shape.length);
            assertEquals(1, shape[0]);
            assertEquals(ids.length, shape[1]);
            FloatBuffer buffer = out.getFloatBuffer();
            float[] values = new float[buffer.remaining()];
            buffer.get(values);
            return values;
        } finally {
            inputs.values().forEach(OnnxTensor::close);
        }
    }

    private static double maxDiff(float[] actual, double[][] expected, int hidden) {
        double max = 0;
        for (int t = 0; t < expected.length; t++) {
            for (int h = 0; h < hidden; h++) {
                max = Math.max(max, Math.abs(actual[t * hidden + h] - expected[t][h]));
            }
        }
        return max;
    }
}
