package io.github.tilewise.it.bench;

import ai.onnx.proto.OnnxMl;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * ONNX Runtime's own CPU attention, the peer of the benchmarks: a one-node ONNX graph holding the
 * {@code com.microsoft} {@code MultiHeadAttention} contrib operator, built here with the ONNX
 * protobuf classes. Q, K and V are {@code [batch, seq, heads·headDim]} fp32 (the {@code [B, N, H,
 * D]} layout), the optional key-padding mask is int32 {@code [batch, kvSeq]} with 0 for padding,
 * and {@code unidirectional=1} asks for causal attention.
 */
public final class OrtMultiHeadAttention implements AutoCloseable {

    private final OrtSession session;
    private final Map<String, OnnxTensor> inputs = new HashMap<>();

    /**
     * Builds the graph and the session and wraps the inputs without copying them.
     *
     * @param shape batch, heads, lengths and head dim
     * @param causal whether to set {@code unidirectional=1}
     * @param q queries {@code [B, Nq, H·D]}, a direct buffer
     * @param k keys {@code [B, Nk, H·D]}, a direct buffer
     * @param v values {@code [B, Nk, H·D]}, a direct buffer
     * @param keyPaddingMask int32 {@code [B, Nk]} (0 = padding) or null
     * @param threads intra-op threads
     * @throws OrtException if ONNX Runtime rejects the graph
     */
    public OrtMultiHeadAttention(
            AttentionCase shape,
            boolean causal,
            FloatBuffer q,
            FloatBuffer k,
            FloatBuffer v,
            IntBuffer keyPaddingMask,
            int threads)
            throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        long hidden = (long) shape.heads * shape.headDim;
        byte[] model = model(shape, causal, keyPaddingMask != null);
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(threads);
            options.setInterOpNumThreads(1);
            session = env.createSession(model, options);
        }
        inputs.put(
                "query",
                OnnxTensor.createTensor(env, q, new long[] {shape.batch, shape.qLen, hidden}));
        inputs.put(
                "key",
                OnnxTensor.createTensor(env, k, new long[] {shape.batch, shape.kvLen, hidden}));
        inputs.put(
                "value",
                OnnxTensor.createTensor(env, v, new long[] {shape.batch, shape.kvLen, hidden}));
        if (keyPaddingMask != null) {
            inputs.put(
                    "key_padding_mask",
                    OnnxTensor.createTensor(
                            env, keyPaddingMask, new long[] {shape.batch, shape.kvLen}));
        }
    }

    /**
     * Runs the graph once and frees its output.
     *
     * @throws OrtException if the run fails
     */
    public void run() throws OrtException {
        try (OrtSession.Result result = session.run(inputs)) {
            if (result.size() != 1) {
                throw new IllegalStateException("expected one output, got " + result.size());
            }
        }
    }

    /**
     * Runs the graph once and returns the output {@code [B, Nq, H·D]} flattened.
     *
     * @return the output values
     * @throws OrtException if the run fails
     */
    public float[] runAndRead() throws OrtException {
        try (OrtSession.Result result = session.run(inputs)) {
            FloatBuffer out = ((OnnxTensor) result.get(0)).getFloatBuffer();
            float[] values = new float[out.remaining()];
            out.get(values);
            return values;
        }
    }

    /** {@inheritDoc} */
    @Override
    public void close() throws OrtException {
        for (OnnxTensor tensor : inputs.values()) {
            tensor.close();
        }
        session.close();
    }

    /** The serialized one-node model. */
    static byte[] model(AttentionCase shape, boolean causal, boolean masked) {
        long hidden = (long) shape.heads * shape.headDim;
        OnnxMl.NodeProto.Builder node =
                OnnxMl.NodeProto.newBuilder()
                        .setName("attention")
                        .setOpType("MultiHeadAttention")
                        .setDomain("com.microsoft")
                        .addInput("query")
                        .addInput("key")
                        .addInput("value")
                        .addOutput("output")
                        .addAttribute(intAttribute("num_heads", shape.heads))
                        .addAttribute(intAttribute("unidirectional", causal ? 1 : 0));
        OnnxMl.GraphProto.Builder graph =
                OnnxMl.GraphProto.newBuilder()
                        .setName("multi_head_attention")
                        .addInput(
                                OnnxValueInfo.of(
                                        "query",
                                        OnnxMl.TensorProto.DataType.FLOAT,
                                        shape.batch,
                                        shape.qLen,
                                        hidden))
                        .addInput(
                                OnnxValueInfo.of(
                                        "key",
                                        OnnxMl.TensorProto.DataType.FLOAT,
                                        shape.batch,
                                        shape.kvLen,
                                        hidden))
                        .addInput(
                                OnnxValueInfo.of(
                                        "value",
                                        OnnxMl.TensorProto.DataType.FLOAT,
                                        shape.batch,
                                        shape.kvLen,
                                        hidden))
                        .addOutput(
                                OnnxValueInfo.of(
                                        "output",
                                        OnnxMl.TensorProto.DataType.FLOAT,
                                        shape.batch,
                                        shape.qLen,
                                        hidden));
        if (masked) {
            node.addInput(""); // no projection bias
            node.addInput("key_padding_mask");
            graph.addInput(
                    OnnxValueInfo.of(
                            "key_padding_mask",
                            OnnxMl.TensorProto.DataType.INT32,
                            shape.batch,
                            shape.kvLen));
        }
        graph.addNode(node);
        return OnnxMl.ModelProto.newBuilder()
                .setIrVersion(8)
                .setProducerName("tilewise-benchmark")
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
                .addOpsetImport(
                        OnnxMl.OperatorSetIdProto.newBuilder()
                                .setDomain("com.microsoft")
                                .setVersion(1))
                .setGraph(graph)
                .build()
                .toByteArray();
    }

    private static OnnxMl.AttributeProto intAttribute(String name, long value) {
        return OnnxMl.AttributeProto.newBuilder()
                .setName(name)
                .setType(OnnxMl.AttributeProto.AttributeType.INT)
                .setI(value)
                .build();
    }
}
