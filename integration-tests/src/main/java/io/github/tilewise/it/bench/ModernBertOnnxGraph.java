package io.github.tilewise.it.bench;

import ai.onnx.proto.OnnxMl;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.github.tilewise.djl.encoder.EncoderArchitecture;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.HiddenActivation;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A ModernBERT encoder as an ONNX model, for ONNX Runtime as the peer of the long-document
 * benchmark: <b>a graph of standard ONNX ops equivalent to the eager export, built by the
 * benchmark; not a transformers export</b> (no {@code torch} here to make one). It is written from
 * an {@link EncoderCheckpoint} (fp32 tensors under Hugging Face's ModernBERT names) node by node as
 * transformers' eager {@code ModernBertModel} computes and as {@code torch.onnx} exports that
 * computation, opset 17 (ONNX Runtime 1.22 runs it; no contrib ops):
 *
 * <ul>
 *   <li>embeddings: {@code Gather(tok_embeddings, input_ids)}, {@code LayerNormalization} (a zero
 *       bias where the checkpoint has none, as {@code nn.LayerNorm(bias=False)} exports);
 *   <li>per layer: pre-norm (none in layer 0); {@code MatMul} with the transposed {@code Wqkv}
 *       (plus its bias, if any); {@code Reshape [1, S, 3, H, D]}, {@code Transpose}, {@code Split},
 *       {@code Squeeze} into q, k, v {@code [1, H, S, D]}; rotary {@code x·cos +
 *       rotate_half(x)·sin} ({@code Slice}, {@code Neg}, {@code Concat}) with cos and sin graph
 *       inputs {@code [S, D]} per theta; scores {@code MatMul(q, Transpose(k))·D^-0.5}, on local
 *       layers plus the additive window mask, {@code Softmax}, {@code MatMul(·, v)}: the full
 *       {@code [1, H, S, S]} score matrix is materialised, as in the eager export; {@code
 *       Transpose}, {@code Reshape}, {@code Wo}, residual {@code Add}; pre-norm, {@code Wi}, {@code
 *       Split} into input and gate, exact GELU as torch exports it ({@code 0.5·x·(1 + Erf(x/√2))})
 *       times the gate, {@code Wo}, residual {@code Add};
 *   <li>the final {@code LayerNormalization}.
 * </ul>
 *
 * <p>The window mask is computed in the graph as transformers 4.x's {@code _update_attention_mask}
 * does and exports: {@code distance = Abs(Range(S) - Range(S)ᵀ)} (int64), {@code Where(distance <=
 * local_attention / 2, 0, finfo(float32).min)}, {@code [S, S]}. Global layers add no mask (one
 * unpadded sequence, where the padding mask is zero). Inputs: {@code input_ids [1, S]} int64 and,
 * for the layer types present, {@code rope_global_cos}, {@code rope_global_sin}, {@code
 * rope_local_cos}, {@code rope_local_sin} {@code [S, D]} fp32, which {@link #inputs} computes as
 * {@code ModernBertRotaryEmbedding} does (see {@link #rotaryTable}). Output: {@code
 * last_hidden_state [1, S, hidden]}.
 *
 * <p>The serialized protobuf must stay under 2 GB (ModernBERT-base in fp32 is about 600 MB); larger
 * checkpoints are refused (external data is not written).
 */
public final class ModernBertOnnxGraph {

    /** The opset of the default domain. */
    public static final int OPSET = 17;

    /** The token ids input, int64 {@code [1, S]}. */
    public static final String INPUT_IDS = "input_ids";

    /** The output, fp32 {@code [1, S, hidden]}. */
    public static final String OUTPUT = "last_hidden_state";

    /** Cosines of the global layers' rotary angles, fp32 {@code [S, D]}. */
    public static final String GLOBAL_COS = "rope_global_cos";

    /** Sines of the global layers' rotary angles, fp32 {@code [S, D]}. */
    public static final String GLOBAL_SIN = "rope_global_sin";

    /** Cosines of the local layers' rotary angles, fp32 {@code [S, D]}. */
    public static final String LOCAL_COS = "rope_local_cos";

    /** Sines of the local layers' rotary angles, fp32 {@code [S, D]}. */
    public static final String LOCAL_SIN = "rope_local_sin";

    private static final long MAX_PROTO_BYTES = (1L << 31) - (64L << 20);

    private final EncoderConfig config;
    private final Map<String, CheckpointTensor> tensors;
    private final OnnxMl.GraphProto.Builder graph = OnnxMl.GraphProto.newBuilder();
    private final Map<String, String> constants = new LinkedHashMap<>();
    private long weightBytes;
    private int counter;

    private ModernBertOnnxGraph(EncoderCheckpoint checkpoint) {
        this.config = checkpoint.getConfig();
        this.tensors = checkpoint.getTensors();
        if (config.getArchitecture() != EncoderArchitecture.MODERNBERT) {
            throw new IllegalArgumentException(
                    "not a ModernBERT checkpoint: " + config.getArchitecture());
        }
        if (config.getActivation() != HiddenActivation.GELU) {
            throw new IllegalArgumentException(
                    "only ModernBERT's exact GELU is built, not " + config.getActivation());
        }
    }

    /**
     * Writes the model of a checkpoint to a file.
     *
     * @param checkpoint a ModernBERT checkpoint (exact GELU)
     * @param file the {@code .onnx} file to write
     * @return the file's size in bytes
     * @throws IOException if writing fails
     * @throws IllegalArgumentException if the checkpoint is not ModernBERT, lacks a tensor, or
     *     would not fit one protobuf
     */
    public static long write(EncoderCheckpoint checkpoint, Path file) throws IOException {
        OnnxMl.ModelProto model = build(checkpoint);
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            model.writeTo(out);
        }
        return Files.size(file);
    }

    /**
     * Builds the model of a checkpoint in memory (weights are wrapped, not copied again).
     *
     * @param checkpoint a ModernBERT checkpoint (exact GELU)
     * @return the model
     * @throws IllegalArgumentException if the checkpoint is not ModernBERT, lacks a tensor, or
     *     would not fit one protobuf
     */
    public static OnnxMl.ModelProto build(EncoderCheckpoint checkpoint) {
        ModernBertOnnxGraph b = new ModernBertOnnxGraph(checkpoint);
        b.buildGraph();
        return OnnxMl.ModelProto.newBuilder()
                .setIrVersion(8)
                .setProducerName("tilewise-benchmark")
                .setDocString(
                        "ModernBERT as a graph of standard ONNX ops equivalent to the eager export,"
                                + " built by Tilewise's benchmark; not a transformers export")
                .addOpsetImport(
                        OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
                .setGraph(b.graph)
                .build();
    }

    /**
     * Whether any layer of the configuration attends globally.
     *
     * @param config the configuration
     * @return true if the graph takes {@link #GLOBAL_COS} and {@link #GLOBAL_SIN}
     */
    public static boolean hasGlobalLayers(EncoderConfig config) {
        for (int l = 0; l < config.getNumLayers(); l++) {
            if (!config.isLocalLayer(l)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether any layer of the configuration attends within a window.
     *
     * @param config the configuration
     * @return true if the graph takes {@link #LOCAL_COS} and {@link #LOCAL_SIN}
     */
    public static boolean hasLocalLayers(EncoderConfig config) {
        for (int l = 0; l < config.getNumLayers(); l++) {
            if (config.isLocalLayer(l)) {
                return true;
            }
        }
        return false;
    }

    /**
     * {@code ModernBertRotaryEmbedding}'s cos and sin at positions {@code 0..seq-1}, each {@code
     * [seq, d]} row-major: {@code inv_freq = 1 / theta^(arange(0, d, 2) / d)} in float32, angles
     * {@code inv_freq · t} in float32, their cosine and sine rounded to float32, duplicated over
     * both halves ({@code cat(freqs, freqs)}).
     *
     * @param theta the rotary base
     * @param d the head size (even)
     * @param seq the number of positions
     * @return {@code {cos, sin}}
     */
    public static float[][] rotaryTable(float theta, int d, int seq) {
        int half = d / 2;
        float[] invFreq = new float[half];
        for (int i = 0; i < half; i++) {
            float exponent = (float) (2 * i) / (float) d;
            float power = (float) Math.pow(theta, exponent);
            invFreq[i] = 1.0f / power;
        }
        float[] cos = new float[seq * d];
        float[] sin = new float[seq * d];
        for (int t = 0; t < seq; t++) {
            for (int i = 0; i < half; i++) {
                float angle = invFreq[i] * (float) t;
                float c = (float) Math.cos(angle);
                float s = (float) Math.sin(angle);
                cos[t * d + i] = c;
                cos[t * d + i + half] = c;
                sin[t * d + i] = s;
                sin[t * d + i + half] = s;
            }
        }
        return new float[][] {cos, sin};
    }

    /**
     * The graph's inputs for one unpadded sequence: the ids and the rotary tables of the layer
     * types present. The caller closes the tensors.
     *
     * @param env the ONNX Runtime environment
     * @param config the configuration the graph was built from
     * @param ids the token ids
     * @return the inputs by name
     * @throws OrtException if ONNX Runtime cannot make a tensor
     */
    public static Map<String, OnnxTensor> inputs(
            OrtEnvironment env, EncoderConfig config, long[] ids) throws OrtException {
        int seq = ids.length;
        int d = config.getHeadSize();
        Map<String, OnnxTensor> inputs = new LinkedHashMap<>();
        try {
            inputs.put(
                    INPUT_IDS,
                    OnnxTensor.createTensor(env, LongBuffer.wrap(ids), new long[] {1, seq}));
            long[] shape = {seq, d};
            if (hasGlobalLayers(config)) {
                float[][] t = rotaryTable(config.getRopeTheta(), d, seq);
                inputs.put(GLOBAL_COS, OnnxTensor.createTensor(env, FloatBuffer.wrap(t[0]), shape));
                inputs.put(GLOBAL_SIN, OnnxTensor.createTensor(env, FloatBuffer.wrap(t[1]), shape));
            }
            if (hasLocalLayers(config)) {
                float[][] t = rotaryTable(config.getLocalRopeTheta(), d, seq);
                inputs.put(LOCAL_COS, OnnxTensor.createTensor(env, FloatBuffer.wrap(t[0]), shape));
                inputs.put(LOCAL_SIN, OnnxTensor.createTensor(env, FloatBuffer.wrap(t[1]), shape));
            }
            return inputs;
        } catch (OrtException | RuntimeException e) {
            inputs.values().forEach(OnnxTensor::close);
            throw e;
        }
    }

    // ---------------------------------------------------------------- the graph

    private void buildGraph() {
        int h = config.getHiddenSize();
        int heads = config.getNumHeads();
        int d = config.getHeadSize();
        int ff = config.getIntermediateSize();
        graph.setName("modernbert");
        graph.addInput(OnnxValueInfo.of(INPUT_IDS, OnnxMl.TensorProto.DataType.INT64, 1, "S"));
        boolean global = hasGlobalLayers(config);
        boolean local = hasLocalLayers(config);
        if (global) {
            graph.addInput(OnnxValueInfo.of(GLOBAL_COS, OnnxMl.TensorProto.DataType.FLOAT, "S", d));
            graph.addInput(OnnxValueInfo.of(GLOBAL_SIN, OnnxMl.TensorProto.DataType.FLOAT, "S", d));
        }
        if (local) {
            graph.addInput(OnnxValueInfo.of(LOCAL_COS, OnnxMl.TensorProto.DataType.FLOAT, "S", d));
            graph.addInput(OnnxValueInfo.of(LOCAL_SIN, OnnxMl.TensorProto.DataType.FLOAT, "S", d));
        }

        String x =
                node(
                        "Gather",
                        List.of(weight("embeddings.tok_embeddings.weight", false), INPUT_IDS),
                        List.of(intAttr("axis", 0)));
        x = layerNorm(x, "embeddings.norm");
        String windowMask = local ? windowMask() : null;

        for (int l = 0; l < config.getNumLayers(); l++) {
            String p = "layers." + l + ".";
            boolean isLocal = config.isLocalLayer(l);
            checkShape(p + "attn.Wqkv.weight", 3L * h, h);
            checkShape(p + "attn.Wo.weight", h, h);
            checkShape(p + "mlp.Wi.weight", 2L * ff, h);
            checkShape(p + "mlp.Wo.weight", h, ff);
            String normed = l == 0 ? x : layerNorm(x, p + "attn_norm");
            String qkv = linear(normed, p + "attn.Wqkv");
            // qkv.view(bs, -1, 3, heads, d).transpose(3, 1).unbind(dim=2), as [3, 1, H, S, D].
            String view = node("Reshape", List.of(qkv, int64s(1, -1, 3, heads, d)), List.of());
            String perm =
                    node("Transpose", List.of(view), List.of(intsAttr("perm", 2, 0, 3, 1, 4)));
            List<String> parts = nodeN("Split", List.of(perm), List.of(intAttr("axis", 0)), 3);
            String axis0 = int64s(0);
            String q = node("Squeeze", List.of(parts.get(0), axis0), List.of());
            String k = node("Squeeze", List.of(parts.get(1), axis0), List.of());
            String v = node("Squeeze", List.of(parts.get(2), axis0), List.of());
            String cos = isLocal ? LOCAL_COS : GLOBAL_COS;
            String sin = isLocal ? LOCAL_SIN : GLOBAL_SIN;
            q = rotary(q, cos, sin, d);
            k = rotary(k, cos, sin, d);
            String kt = node("Transpose", List.of(k), List.of(intsAttr("perm", 0, 1, 3, 2)));
            String scores = node("MatMul", List.of(q, kt), List.of());
            scores = node("Mul", List.of(scores, float32((float) Math.pow(d, -0.5))), List.of());
            if (isLocal) {
                scores = node("Add", List.of(scores, windowMask), List.of());
            }
            String probs = node("Softmax", List.of(scores), List.of(intAttr("axis", -1)));
            String context = node("MatMul", List.of(probs, v), List.of());
            context = node("Transpose", List.of(context), List.of(intsAttr("perm", 0, 2, 1, 3)));
            context = node("Reshape", List.of(context, int64s(1, -1, h)), List.of());
            x = node("Add", List.of(x, linear(context, p + "attn.Wo")), List.of());

            String wi = linear(layerNorm(x, p + "mlp_norm"), p + "mlp.Wi");
            List<String> halves = nodeN("Split", List.of(wi), List.of(intAttr("axis", -1)), 2);
            String in = halves.get(0);
            String erf =
                    node(
                            "Erf",
                            List.of(
                                    node(
                                            "Div",
                                            List.of(in, float32((float) Math.sqrt(2.0))),
                                            List.of())),
                            List.of());
            String gelu =
                    node(
                            "Mul",
                            List.of(
                                    node(
                                            "Mul",
                                            List.of(
                                                    in,
                                                    node(
                                                            "Add",
                                                            List.of(erf, float32(1f)),
                                                            List.of())),
                                            List.of()),
                                    float32(0.5f)),
                            List.of());
            String glu = node("Mul", List.of(gelu, halves.get(1)), List.of());
            x = node("Add", List.of(x, linear(glu, p + "mlp.Wo")), List.of());
        }
        String out = layerNorm(x, "final_norm");
        graph.addNode(
                OnnxMl.NodeProto.newBuilder()
                        .setName("output")
                        .setOpType("Identity")
                        .addInput(out)
                        .addOutput(OUTPUT));
        graph.addOutput(OnnxValueInfo.of(OUTPUT, OnnxMl.TensorProto.DataType.FLOAT, 1, "S", h));
        if (weightBytes > MAX_PROTO_BYTES) {
            throw new IllegalArgumentException(
                    "the weights take "
                            + weightBytes
                            + " bytes: more than one ONNX protobuf holds (2 GB); external data"
                            + " is not written");
        }
    }

    /**
     * The additive window mask {@code [S, S]}: 0 where {@code |i - j| <= local_attention / 2}, else
     * {@code finfo(float32).min}, from the sequence length of {@code input_ids}.
     */
    private String windowMask() {
        String shape = node("Shape", List.of(INPUT_IDS), List.of());
        String seq = node("Gather", List.of(shape, int64Scalar(1)), List.of(intAttr("axis", 0)));
        String rows = node("Range", List.of(int64Scalar(0), seq, int64Scalar(1)), List.of());
        String column = node("Unsqueeze", List.of(rows, int64s(1)), List.of());
        String row = node("Unsqueeze", List.of(rows, int64s(0)), List.of());
        String distance =
                node("Abs", List.of(node("Sub", List.of(row, column), List.of())), List.of());
        String inside =
                node(
                        "LessOrEqual",
                        List.of(distance, int64Scalar(config.getLocalWindow())),
                        List.of());
        return node("Where", List.of(inside, float32(0f), float32(-Float.MAX_VALUE)), List.of());
    }

    /** {@code x·cos + rotate_half(x)·sin} on {@code [1, H, S, D]}, {@code cos, sin [S, D]}. */
    private String rotary(String x, String cos, String sin, int d) {
        String axis = int64s(3);
        String x1 = node("Slice", List.of(x, int64s(0), int64s(d / 2), axis), List.of());
        String x2 = node("Slice", List.of(x, int64s(d / 2), int64s(d), axis), List.of());
        String rotated =
                node(
                        "Concat",
                        List.of(node("Neg", List.of(x2), List.of()), x1),
                        List.of(intAttr("axis", -1)));
        return node(
                "Add",
                List.of(
                        node("Mul", List.of(x, cos), List.of()),
                        node("Mul", List.of(rotated, sin), List.of())),
                List.of());
    }

    /** {@code x Wᵀ (+ b)} with the transposed weight as an initializer. */
    private String linear(String x, String name) {
        String y = node("MatMul", List.of(x, weight(name + ".weight", true)), List.of());
        if (config.hasBias()) {
            y = node("Add", List.of(y, weight(name + ".bias", false)), List.of());
        }
        return y;
    }

    private String layerNorm(String x, String name) {
        int h = config.getHiddenSize();
        String scale = weight(name + ".weight", false);
        String bias =
                config.hasNormBias() ? weight(name + ".bias", false) : constant("zeros", h, null);
        return node(
                "LayerNormalization",
                List.of(x, scale, bias),
                List.of(
                        intAttr("axis", -1),
                        OnnxMl.AttributeProto.newBuilder()
                                .setName("epsilon")
                                .setType(OnnxMl.AttributeProto.AttributeType.FLOAT)
                                .setF(config.getLayerNormEps())
                                .build()));
    }

    private void checkShape(String name, long rows, long columns) {
        long[] shape = tensor(name).getShape();
        if (shape.length != 2 || shape[0] != rows || shape[1] != columns) {
            throw new IllegalArgumentException(
                    name
                            + " is "
                            + Arrays.toString(shape)
                            + ", not ["
                            + rows
                            + ", "
                            + columns
                            + "]");
        }
    }

    private CheckpointTensor tensor(String name) {
        CheckpointTensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException("the checkpoint lacks " + name);
        }
        return t;
    }

    /**
     * A checkpoint tensor as an initializer under its own name and {@code [out, in]} layout; with
     * {@code transpose}, the output of a {@code Transpose} of it, as the dynamo exporter writes a
     * linear layer (ONNX Runtime folds the transpose when it loads the model).
     */
    private String weight(String name, boolean transpose) {
        String key = name + (transpose ? ".T" : "");
        if (constants.containsKey(key)) {
            return constants.get(key);
        }
        if (transpose) {
            if (tensor(name).getShape().length != 2) {
                throw new IllegalArgumentException(name + " is not a matrix");
            }
            String transposed =
                    node(
                            "Transpose",
                            List.of(weight(name, false)),
                            List.of(intsAttr("perm", 1, 0)));
            constants.put(key, transposed);
            return transposed;
        }
        CheckpointTensor t = tensor(name);
        long[] dims = t.getShape();
        float[] data = t.getData();
        ByteBuffer bytes = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(data);
        weightBytes += bytes.capacity();
        addInitializer(key, OnnxMl.TensorProto.DataType.FLOAT, dims, bytes.array());
        constants.put(key, key);
        return key;
    }

    /** A shared fp32 constant of {@code n} zeros ({@code values == null}) or the given values. */
    private String constant(String prefix, int n, float[] values) {
        String key = prefix + "_" + n;
        if (!constants.containsKey(key)) {
            ByteBuffer bytes = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
            if (values != null) {
                bytes.asFloatBuffer().put(values);
            }
            addInitializer(key, OnnxMl.TensorProto.DataType.FLOAT, new long[] {n}, bytes.array());
            constants.put(key, key);
        }
        return constants.get(key);
    }

    private String float32(float value) {
        String key = "f32_" + Float.floatToIntBits(value);
        if (!constants.containsKey(key)) {
            ByteBuffer bytes = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            bytes.putFloat(0, value);
            addInitializer(key, OnnxMl.TensorProto.DataType.FLOAT, new long[0], bytes.array());
            constants.put(key, key);
        }
        return constants.get(key);
    }

    private String int64Scalar(long value) {
        return int64(new long[0], value);
    }

    private String int64s(long... values) {
        return int64(new long[] {values.length}, values);
    }

    private String int64(long[] dims, long... values) {
        StringBuilder key = new StringBuilder(dims.length == 0 ? "i64" : "i64v");
        for (long v : values) {
            key.append('_').append(v < 0 ? "m" + -v : Long.toString(v));
        }
        String k = key.toString();
        if (!constants.containsKey(k)) {
            ByteBuffer bytes =
                    ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < values.length; i++) {
                bytes.putLong(8 * i, values[i]);
            }
            addInitializer(k, OnnxMl.TensorProto.DataType.INT64, dims, bytes.array());
            constants.put(k, k);
        }
        return constants.get(k);
    }

    private void addInitializer(
            String name, OnnxMl.TensorProto.DataType type, long[] dims, byte[] raw) {
        OnnxMl.TensorProto.Builder t =
                OnnxMl.TensorProto.newBuilder().setName(name).setDataType(type.getNumber());
        for (long dim : dims) {
            t.addDims(dim);
        }
        ByteString data = UnsafeByteOperations.unsafeWrap(raw);
        graph.addInitializer(t.setRawData(data));
    }

    private String node(String op, List<String> inputs, List<OnnxMl.AttributeProto> attributes) {
        return nodeN(op, inputs, attributes, 1).get(0);
    }

    private List<String> nodeN(
            String op, List<String> inputs, List<OnnxMl.AttributeProto> attributes, int outputs) {
        String name = op + "_" + counter++;
        OnnxMl.NodeProto.Builder node =
                OnnxMl.NodeProto.newBuilder().setName(name).setOpType(op).addAllInput(inputs);
        node.addAllAttribute(attributes);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < outputs; i++) {
            String out = name + (outputs == 1 ? "" : "_" + i);
            node.addOutput(out);
            names.add(out);
        }
        graph.addNode(node);
        return names;
    }

    private static OnnxMl.AttributeProto intAttr(String name, long value) {
        return OnnxMl.AttributeProto.newBuilder()
                .setName(name)
                .setType(OnnxMl.AttributeProto.AttributeType.INT)
                .setI(value)
                .build();
    }

    private static OnnxMl.AttributeProto intsAttr(String name, long... values) {
        OnnxMl.AttributeProto.Builder a =
                OnnxMl.AttributeProto.newBuilder()
                        .setName(name)
                        .setType(OnnxMl.AttributeProto.AttributeType.INTS);
        for (long v : values) {
            a.addInts(v);
        }
        return a.build();
    }
}
