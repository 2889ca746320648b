package io.github.tilewise.djl.lowp;

import static io.github.tilewise.djl.encoder.checkpoint.OnnxNodes.input;
import static io.github.tilewise.djl.encoder.checkpoint.OnnxNodes.output;

import ai.djl.MalformedModelException;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointLimits;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperatorFactory;
import io.github.tilewise.djl.encoder.linear.PackedLinear;
import io.github.tilewise.djl.encoder.linear.PackedWeights;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Imports ONNX Runtime's dynamically quantized export of a BERT-family encoder ({@code
 * quantize_dynamic}: {@code DynamicQuantizeLinear} on activations, {@code MatMulInteger} on int8
 * weights with per-channel or per-tensor scales, {@code Cast}, {@code Mul} by the two scales, the
 * bias {@code Add}; embedding tables as uint8 {@code Gather} + {@code DequantizeLinear}).
 *
 * <p>The int8 codes and scales of every linear layer are kept exactly as exported and packed into
 * the INT8 kernels ({@link #linearOperatorFactory()}); the rest of the graph is rewritten into the
 * equivalent float graph (dequantized embeddings, a float {@code MatMul} on the dequantized weights
 * {@code scale·code}), written to {@link #getFloatModel()}, so the encoder's own ONNX import builds
 * the blocks and reads the configuration. Anything that does not fit this pattern (asymmetric
 * weights, missing scales, wrong shapes, a corrupt file) is a {@link MalformedModelException}
 * naming the file and the node; dims and data lengths are checked by {@link CheckpointLimits}
 * before anything is allocated.
 */
public final class OrtQuantizedImport implements AutoCloseable {

    /** One layer's exported weights: {@code W[o, i] = scales[o]·codes[o·in + i]}. */
    static final class Int8Weights {
        final byte[] codes;
        final float[] scales;
        final int out;
        final int in;

        Int8Weights(byte[] codes, float[] scales, int out, int in) {
            this.codes = codes;
            this.scales = scales;
            this.out = out;
            this.in = in;
        }
    }

    private final Path source;
    private final Path floatModel;
    private final Map<String, Int8Weights> layers;

    private OrtQuantizedImport(Path source, Path floatModel, Map<String, Int8Weights> layers) {
        this.source = source;
        this.floatModel = floatModel;
        this.layers = layers;
    }

    /**
     * Reads a quantized export.
     *
     * @param onnx the {@code .onnx} file
     * @return the import (close it to delete the rewritten float model)
     * @throws IOException if the file cannot be read or written
     * @throws MalformedModelException if the file is not such an export
     */
    public static OrtQuantizedImport read(Path onnx) throws IOException, MalformedModelException {
        if (!Files.isRegularFile(onnx)) {
            throw new NoSuchFileException(onnx.toString(), null, "no such ONNX model file");
        }
        if (Files.size(onnx) >= Integer.MAX_VALUE) {
            throw new MalformedModelException(
                    onnx + ": ONNX files over 2 GB (external data) are not supported");
        }
        ModelProto model;
        try (InputStream is = Files.newInputStream(onnx)) {
            CodedInputStream in = CodedInputStream.newInstance(is);
            in.setSizeLimit(Integer.MAX_VALUE);
            model = ModelProto.parseFrom(in);
        } catch (InvalidProtocolBufferException e) {
            throw new MalformedModelException(
                    onnx + ": not a valid ONNX model (truncated or corrupt): " + e.getMessage(), e);
        }
        if (!model.hasGraph() || model.getGraph().getNodeCount() == 0) {
            throw new MalformedModelException(onnx + ": not a valid ONNX model (no graph)");
        }
        Rewriter r = new Rewriter(onnx, model.getGraph());
        GraphProto graph = r.rewrite();
        if (r.layers.isEmpty()) {
            throw new MalformedModelException(
                    onnx
                            + ": no MatMulInteger layers: not an ONNX Runtime dynamically quantized export");
        }
        Path out = Files.createTempFile("tilewise-dequantized-", ".onnx");
        try (OutputStream os = Files.newOutputStream(out)) {
            model.toBuilder().setGraph(graph).build().writeTo(os);
        }
        return new OrtQuantizedImport(onnx, out, r.layers);
    }

    /**
     * Returns the float graph equivalent to the export (dequantized weights), for the encoder's
     * ONNX import ({@code TextEncoder.builder().setModelPath(...)}).
     *
     * @return a temporary {@code .onnx} file, deleted by {@link #close()}
     */
    public Path getFloatModel() {
        return floatModel;
    }

    /**
     * Returns the names of the imported int8 layers.
     *
     * @return e.g. {@code encoder.layer.0.attention.self.query}
     */
    public Set<String> getLayerNames() {
        return layers.keySet();
    }

    /**
     * Returns a factory that gives each imported layer an {@link Precision#INT8} operator on the
     * exported codes and scales (unchanged), and leaves other layers as they are.
     *
     * @return the factory
     */
    public LinearOperatorFactory linearOperatorFactory() {
        return this::create;
    }

    private PackedLinear create(LinearBlock layer) {
        Int8Weights w = layers.get(layer.getName());
        if (w == null) {
            return null;
        }
        if (w.out != layer.getOutFeatures() || w.in != layer.getInFeatures()) {
            throw new IllegalArgumentException(
                    source
                            + ": int8 weights of "
                            + layer.getName()
                            + " are ["
                            + w.out
                            + ", "
                            + w.in
                            + "], the layer is ["
                            + layer.getOutFeatures()
                            + ", "
                            + layer.getInFeatures()
                            + "]");
        }
        return PackedLinear.builder()
                .setWeights(PackedWeights.fromInt8(w.codes, w.scales, w.out, w.in, Precision.INT8))
                .optBias(layer.getBiasAsFloats())
                .optActivation(layer.getActivation())
                .build();
    }

    /** Deletes the rewritten float model. */
    @Override
    public void close() throws IOException {
        Files.deleteIfExists(floatModel);
    }

    /** Turns the quantized graph into the float one, collecting the int8 layers. */
    private static final class Rewriter {
        final Path file;
        final GraphProto graph;
        final Map<String, TensorProto> initializers = new LinkedHashMap<>();
        final Map<String, NodeProto> producers = new HashMap<>();
        final Map<String, List<NodeProto>> consumers = new HashMap<>();
        final Map<String, Int8Weights> layers = new LinkedHashMap<>();
        final Set<NodeProto> removed = new HashSet<>();
        final Set<String> removedInitializers = new HashSet<>();
        final List<TensorProto> addedInitializers = new ArrayList<>();
        final Map<NodeProto, NodeProto> replaced = new HashMap<>();

        Rewriter(Path file, GraphProto graph) {
            this.file = file;
            this.graph = graph;
            for (TensorProto t : graph.getInitializerList()) {
                initializers.put(t.getName(), t);
            }
            for (NodeProto n : graph.getNodeList()) {
                n.getOutputList().forEach(o -> producers.put(o, n));
                n.getInputList()
                        .forEach(i -> consumers.computeIfAbsent(i, k -> new ArrayList<>()).add(n));
            }
        }

        GraphProto rewrite() throws MalformedModelException {
            for (NodeProto n : graph.getNodeList()) {
                if ("MatMulInteger".equals(n.getOpType())) {
                    linear(n);
                } else if ("DequantizeLinear".equals(n.getOpType())) {
                    embedding(n);
                } else if ("DynamicQuantizeLinear".equals(n.getOpType())) {
                    removed.add(n);
                }
            }
            GraphProto.Builder g = graph.toBuilder().clearNode().clearInitializer();
            for (NodeProto n : graph.getNodeList()) {
                if (replaced.containsKey(n)) {
                    g.addNode(replaced.get(n));
                } else if (!removed.contains(n)) {
                    g.addNode(n);
                }
            }
            for (TensorProto t : graph.getInitializerList()) {
                if (!removedInitializers.contains(t.getName())) {
                    g.addInitializer(t);
                }
            }
            addedInitializers.forEach(g::addInitializer);
            return g.build();
        }

        /** MatMulInteger(Xq, Wq, xz, wz) → Cast → Mul(·, xs·ws) → Add(bias): MatMul(X, s·Wq). */
        private void linear(NodeProto mm) throws MalformedModelException {
            NodeProto quantize = producers.get(input(mm, 0));
            TensorProto wq = initializers.get(input(mm, 1));
            if (quantize == null
                    || !"DynamicQuantizeLinear".equals(quantize.getOpType())
                    || input(quantize, 0).isEmpty()
                    || wq == null) {
                throw bad(
                        mm,
                        "expected DynamicQuantizeLinear activations times an int8 weight initializer");
            }
            if (wq.getDataType() != TensorProto.DataType.INT8.getNumber()
                    || wq.getDimsCount() != 2) {
                throw bad(mm, "weight " + wq.getName() + " is not a 2-D int8 tensor");
            }
            // bytes() checks the dims (non-negative, product within an array) before these casts.
            byte[] codesInOut = bytes(wq, mm);
            int in = (int) wq.getDims(0);
            int out = (int) wq.getDims(1);
            if (in == 0 || out == 0) {
                throw bad(mm, "weight " + wq.getName() + " has an empty dimension");
            }
            if (!input(mm, 3).isEmpty()) {
                TensorProto wz = initializers.get(input(mm, 3));
                if (wz == null) {
                    throw bad(mm, "weight zero point " + input(mm, 3) + " is not an initializer");
                }
                for (byte z : bytes(wz, mm)) {
                    if (z != 0) {
                        throw bad(
                                mm,
                                "asymmetric int8 weights (zero point "
                                        + z
                                        + ") are not supported; export with symmetric weights");
                    }
                }
            }
            NodeProto cast = single(output(mm, 0), "Cast", mm);
            NodeProto scale = single(output(cast, 0), "Mul", mm);
            String scalesValue =
                    input(scale, 0).equals(output(cast, 0)) ? input(scale, 1) : input(scale, 0);
            NodeProto scalesMul = producers.get(scalesValue);
            TensorProto ws = null;
            if (scalesMul != null && "Mul".equals(scalesMul.getOpType())) {
                for (String i : scalesMul.getInputList()) {
                    if (initializers.containsKey(i)) {
                        ws = initializers.get(i);
                    }
                }
            }
            if (ws == null) {
                throw bad(
                        mm,
                        "cannot find the weight scale (Mul of the activation scale and an initializer)");
            }
            float[] wScale = floats(ws, mm);
            if (wScale.length != 1 && wScale.length != out) {
                throw bad(
                        mm,
                        "weight scale has "
                                + wScale.length
                                + " values for "
                                + out
                                + " output channels");
            }
            String layer = null;
            for (NodeProto add : consumers.getOrDefault(output(scale, 0), List.of())) {
                if ("Add".equals(add.getOpType())) {
                    for (String i : add.getInputList()) {
                        if (i.endsWith(".bias") && initializers.containsKey(i)) {
                            layer = i.substring(0, i.length() - ".bias".length());
                        }
                    }
                }
            }
            if (layer == null) {
                throw bad(mm, "no Add of a named <layer>.bias follows it, so its layer is unknown");
            }
            // Codes as [out, in] (PyTorch layout) and the float weights as [in, out] (ONNX MatMul).
            byte[] codes = new byte[in * out];
            float[] scales = new float[out];
            float[] dequantized = new float[in * out];
            for (int o = 0; o < out; o++) {
                scales[o] = wScale.length == 1 ? wScale[0] : wScale[o];
                if (!(scales[o] >= 0) || Float.isInfinite(scales[o])) {
                    throw bad(
                            mm,
                            "weight scale "
                                    + scales[o]
                                    + " of channel "
                                    + o
                                    + " is not finite and non-negative");
                }
            }
            for (int i = 0; i < in; i++) {
                for (int o = 0; o < out; o++) {
                    byte c = codesInOut[i * out + o];
                    codes[o * in + i] = c;
                    dequantized[i * out + o] = scales[o] * c;
                }
            }
            layers.put(layer, new Int8Weights(codes, scales, out, in));
            String floatName = wq.getName() + "_dequantized";
            addedInitializers.add(floatTensor(floatName, new long[] {in, out}, dequantized));
            removedInitializers.add(wq.getName());
            removed.add(cast);
            removed.add(scale);
            removed.add(scalesMul);
            replaced.put(
                    mm,
                    NodeProto.newBuilder()
                            .setOpType("MatMul")
                            .setName(mm.getName() + "_dequantized")
                            .addInput(input(quantize, 0))
                            .addInput(floatName)
                            .addOutput(output(scale, 0))
                            .build());
        }

        /** Gather(uint8 table) → DequantizeLinear: Gather(float table). */
        private void embedding(NodeProto dq) throws MalformedModelException {
            NodeProto gather = producers.get(input(dq, 0));
            TensorProto table = gather == null ? null : initializers.get(input(gather, 0));
            if (gather == null
                    || !"Gather".equals(gather.getOpType())
                    || table == null
                    || gather.getOutputCount() != 1
                    || output(dq, 0).isEmpty()) {
                throw bad(dq, "expected DequantizeLinear of a Gather from a quantized table");
            }
            float[] scale = floats(require(input(dq, 1), dq), dq);
            TensorProto zp = input(dq, 2).isEmpty() ? null : require(input(dq, 2), dq);
            if (scale.length != 1) {
                throw bad(dq, "only per-tensor embedding quantization is supported");
            }
            byte[] q = bytes(table, dq);
            boolean unsigned = table.getDataType() == TensorProto.DataType.UINT8.getNumber();
            int zero = 0;
            if (zp != null) {
                byte[] zs = bytes(zp, dq);
                if (zs.length != 1) {
                    throw bad(dq, "zero point " + zp.getName() + " is not a single value");
                }
                byte z = zs[0];
                zero = unsigned ? (z & 0xff) : z;
            }
            float[] values = new float[q.length];
            for (int i = 0; i < q.length; i++) {
                int c = unsigned ? (q[i] & 0xff) : q[i];
                values[i] = scale[0] * (c - zero);
            }
            String name =
                    table.getName().endsWith("_quantized")
                            ? table.getName()
                                    .substring(0, table.getName().length() - "_quantized".length())
                            : table.getName() + "_dequantized";
            addedInitializers.add(floatTensor(name, dims(table), values));
            removedInitializers.add(table.getName());
            removed.add(dq);
            replaced.put(
                    gather,
                    gather.toBuilder().setInput(0, name).setOutput(0, output(dq, 0)).build());
        }

        private NodeProto single(String value, String op, NodeProto at)
                throws MalformedModelException {
            // "" is no value: an omitted output has no consumers.
            List<NodeProto> next =
                    value.isEmpty() ? List.of() : consumers.getOrDefault(value, List.of());
            if (next.size() != 1 || !op.equals(next.get(0).getOpType())) {
                throw bad(
                        at,
                        "expected one " + op + " after it, found " + next.size() + " consumers");
            }
            return next.get(0);
        }

        private TensorProto require(String name, NodeProto at) throws MalformedModelException {
            TensorProto t = initializers.get(name);
            if (t == null) {
                throw bad(at, "input " + name + " is not an initializer");
            }
            return t;
        }

        /** An int8/uint8 tensor's bytes, after checking they are what its dims claim. */
        private byte[] bytes(TensorProto t, NodeProto at) throws MalformedModelException {
            int type = t.getDataType();
            if (type != TensorProto.DataType.INT8.getNumber()
                    && type != TensorProto.DataType.UINT8.getNumber()) {
                throw bad(at, "tensor " + t.getName() + " is not int8 or uint8");
            }
            long count = CheckpointLimits.elementCount(file, t.getName(), "dims", dims(t));
            if (!t.getRawData().isEmpty()) {
                CheckpointLimits.checkStored(
                        file, t.getName(), "raw_data (bytes)", t.getRawData().size(), count);
                return t.getRawData().toByteArray();
            }
            CheckpointLimits.checkStored(
                    file, t.getName(), "int32_data", t.getInt32DataCount(), count);
            byte[] out = new byte[(int) count];
            for (int i = 0; i < out.length; i++) {
                out[i] = (byte) t.getInt32Data(i);
            }
            return out;
        }

        /** A float tensor's values, after checking they are what its dims claim. */
        private float[] floats(TensorProto t, NodeProto at) throws MalformedModelException {
            if (t.getDataType() != TensorProto.DataType.FLOAT.getNumber()) {
                throw bad(at, "tensor " + t.getName() + " is not float");
            }
            int count = (int) CheckpointLimits.elementCount(file, t.getName(), "dims", dims(t));
            boolean raw = !t.getRawData().isEmpty();
            CheckpointLimits.checkStored(
                    file,
                    t.getName(),
                    raw ? "raw_data (bytes)" : "float_data",
                    raw ? t.getRawData().size() : t.getFloatDataCount(),
                    raw ? 4L * count : count);
            float[] out = new float[count];
            if (raw) {
                t.getRawData()
                        .asReadOnlyByteBuffer()
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer()
                        .get(out);
            } else {
                for (int i = 0; i < count; i++) {
                    out[i] = t.getFloatData(i);
                }
            }
            return out;
        }

        private static long[] dims(TensorProto t) {
            return t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        }

        private static TensorProto floatTensor(String name, long[] dims, float[] values) {
            ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(values);
            TensorProto.Builder t =
                    TensorProto.newBuilder()
                            .setName(name)
                            .setDataType(TensorProto.DataType.FLOAT.getNumber())
                            .setRawData(ByteString.copyFrom(b.array()));
            for (long d : dims) {
                t.addDims(d);
            }
            return t.build();
        }

        private MalformedModelException bad(NodeProto n, String problem) {
            return new MalformedModelException(
                    file + ": node " + n.getName() + " (" + n.getOpType() + "): " + problem);
        }
    }
}
