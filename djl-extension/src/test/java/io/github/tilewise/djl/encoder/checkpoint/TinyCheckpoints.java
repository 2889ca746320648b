package io.github.tilewise.djl.encoder.checkpoint;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.gson.JsonObject;
import com.google.protobuf.ByteString;
import io.github.tilewise.djl.encoder.CheckpointParameter;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Byte-stream builders for small checkpoints, valid or hostile: a BERT-shaped ONNX graph, an ONNX
 * Runtime quantized graph, raw safetensors files and {@code config.json} objects.
 */
final class TinyCheckpoints {

    static final int HIDDEN = 4;
    static final int HEADS = 2;
    static final int LAYERS = 2;
    static final int INTERMEDIATE = 8;
    static final int VOCAB = 12;
    static final int POSITIONS = 8;
    static final int TYPES = 2;

    private TinyCheckpoints() {}

    /** The configuration of every tiny checkpoint here. */
    static EncoderConfig config() {
        return EncoderConfig.builder()
                .setHiddenSize(HIDDEN)
                .setNumHeads(HEADS)
                .setNumLayers(LAYERS)
                .setIntermediateSize(INTERMEDIATE)
                .setMaxPositions(POSITIONS)
                .setVocabSize(VOCAB)
                .optTypeVocabSize(TYPES)
                .build();
    }

    /** {@code config.json} of the tiny encoder, as Hugging Face writes it. */
    static JsonObject configJson() {
        JsonObject o = new JsonObject();
        o.addProperty("model_type", "bert");
        o.addProperty("hidden_size", HIDDEN);
        o.addProperty("num_attention_heads", HEADS);
        o.addProperty("num_hidden_layers", LAYERS);
        o.addProperty("intermediate_size", INTERMEDIATE);
        o.addProperty("max_position_embeddings", POSITIONS);
        o.addProperty("vocab_size", VOCAB);
        o.addProperty("type_vocab_size", TYPES);
        o.addProperty("layer_norm_eps", 1e-12);
        o.addProperty("hidden_act", "gelu");
        return o;
    }

    /** Every tensor the tiny encoder needs, under its Hugging Face name, with random values. */
    static List<CheckpointTensor> tensors(long seed) {
        Random r = new Random(seed);
        List<CheckpointTensor> out = new ArrayList<>();
        for (CheckpointParameter p :
                new TextEncoderBlock(config(), Pooling.CLS, false).getCheckpointParameters()) {
            long[] shape = p.getShape().getShape();
            float[] data = new float[(int) p.getShape().size()];
            for (int i = 0; i < data.length; i++) {
                data[i] = (float) r.nextGaussian();
            }
            out.add(new CheckpointTensor(p.getName(), shape, data));
        }
        return out;
    }

    /**
     * A raw safetensors file: the 8-byte little-endian length, the header text as given, the data.
     */
    static byte[] safetensors(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + data.length)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(h.length)
                .put(h)
                .put(data)
                .array();
    }

    /** A safetensors header entry. */
    static String entry(String name, String dtype, String shape, long begin, long end) {
        return "\""
                + name
                + "\":{\"dtype\":\""
                + dtype
                + "\",\"shape\":"
                + shape
                + ",\"data_offsets\":["
                + begin
                + ","
                + end
                + "]}";
    }

    // ---- ONNX ----

    /** A model around a graph (opset 14). */
    static ModelProto model(GraphProto graph) {
        return ModelProto.newBuilder()
                .setIrVersion(8)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setVersion(14))
                .setGraph(graph)
                .build();
    }

    /** A float tensor with its values as raw little-endian data. */
    static TensorProto floats(String name, long[] dims, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return tensor(name, TensorProto.DataType.FLOAT, dims, b.array());
    }

    /** A tensor of any type with raw data. */
    static TensorProto tensor(String name, TensorProto.DataType type, long[] dims, byte[] raw) {
        TensorProto.Builder t =
                TensorProto.newBuilder()
                        .setName(name)
                        .setDataType(type.getNumber())
                        .setRawData(ByteString.copyFrom(raw));
        for (long d : dims) {
            t.addDims(d);
        }
        return t.build();
    }

    static NodeProto node(String op, List<String> inputs, List<String> outputs) {
        return NodeProto.newBuilder()
                .setOpType(op)
                .setName(op + "_" + outputs)
                .addAllInput(inputs)
                .addAllOutput(outputs)
                .build();
    }

    static AttributeProto floatAttr(String name, float v) {
        return AttributeProto.newBuilder()
                .setName(name)
                .setType(AttributeProto.AttributeType.FLOAT)
                .setF(v)
                .build();
    }

    /**
     * The tiny encoder as {@code torch.onnx} exports it: named embeddings, biases and layer norms,
     * anonymous {@code [in, out]} MatMul weights followed by their bias Add, a query Reshape into
     * heads, the score scale, LayerNormalization nodes and an Erf (GELU) feed-forward.
     */
    static ModelProto onnxEncoder(long seed) {
        Random r = new Random(seed);
        OnnxGraph g = new OnnxGraph(r);
        g.init(floats("embeddings.word_embeddings.weight", VOCAB, HIDDEN, r));
        g.init(floats("embeddings.position_embeddings.weight", POSITIONS, HIDDEN, r));
        g.init(floats("embeddings.token_type_embeddings.weight", TYPES, HIDDEN, r));
        g.op("Gather", "embeddings.word_embeddings.weight", "input_ids", "emb");
        String x = g.layerNorm("emb", "embeddings.LayerNorm");
        int headDim = HIDDEN / HEADS;
        ByteBuffer shape = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        shape.putLong(0).putLong(0).putLong(HEADS).putLong(headDim);
        g.init(tensor("heads_shape", TensorProto.DataType.INT64, new long[] {4}, shape.array()));
        g.init(floats("scale", new long[0], new float[] {(float) Math.sqrt(headDim)}));
        for (int l = 0; l < LAYERS; l++) {
            String p = "encoder.layer." + l + ".";
            String q = g.linear(x, p + "attention.self.query", HIDDEN, HIDDEN);
            String k = g.linear(x, p + "attention.self.key", HIDDEN, HIDDEN);
            String v = g.linear(x, p + "attention.self.value", HIDDEN, HIDDEN);
            g.op("Reshape", q, "heads_shape", p + "qh");
            g.op("MatMul", p + "qh", k, p + "scores");
            g.op("Div", p + "scores", "scale", p + "scaled");
            g.op("Softmax", p + "scaled", null, p + "probs");
            g.op("MatMul", p + "probs", v, p + "context");
            String a = g.linear(p + "context", p + "attention.output.dense", HIDDEN, HIDDEN);
            g.op("Add", a, x, p + "res1");
            String x1 = g.layerNorm(p + "res1", p + "attention.output.LayerNorm");
            String i = g.linear(x1, p + "intermediate.dense", HIDDEN, INTERMEDIATE);
            g.op("Erf", i, null, p + "gelu");
            String o = g.linear(p + "gelu", p + "output.dense", INTERMEDIATE, HIDDEN);
            g.op("Add", o, x1, p + "res2");
            x = g.layerNorm(p + "res2", p + "output.LayerNorm");
        }
        return model(g.graph.build());
    }

    /**
     * ONNX Runtime's dynamic quantization of one linear layer ({@code layer}) and one embedding
     * table, as {@code quantize_dynamic} writes them.
     */
    static ModelProto ortQuantized(long seed) {
        Random r = new Random(seed);
        OnnxGraph g = new OnnxGraph(r);
        int in = 4;
        int out = 3;
        byte[] codes = new byte[in * out];
        r.nextBytes(codes);
        g.init(tensor("w_quantized", TensorProto.DataType.INT8, new long[] {in, out}, codes));
        g.init(tensor("w_zero_point", TensorProto.DataType.INT8, new long[0], new byte[1]));
        g.init(floats("w_scale", new long[] {out}, new float[] {0.1f, 0.2f, 0.3f}));
        g.init(floats("layer.bias", new long[] {out}, new float[] {1, 2, 3}));
        g.graph.addNode(node("DynamicQuantizeLinear", List.of("x"), List.of("xq", "xs", "xz")));
        g.graph.addNode(
                node(
                        "MatMulInteger",
                        List.of("xq", "w_quantized", "xz", "w_zero_point"),
                        List.of("mm")));
        g.graph.addNode(node("Cast", List.of("mm"), List.of("mmf")));
        g.op("Mul", "xs", "w_scale", "s");
        g.op("Mul", "mmf", "s", "scaled");
        g.op("Add", "scaled", "layer.bias", "y");
        byte[] table = new byte[5 * in];
        r.nextBytes(table);
        g.init(tensor("table_quantized", TensorProto.DataType.UINT8, new long[] {5, in}, table));
        g.init(floats("table_scale", new long[0], new float[] {0.05f}));
        g.init(tensor("table_zero_point", TensorProto.DataType.UINT8, new long[0], new byte[] {7}));
        g.op("Gather", "table_quantized", "ids", "gq");
        g.graph.addNode(
                node(
                        "DequantizeLinear",
                        List.of("gq", "table_scale", "table_zero_point"),
                        List.of("emb")));
        return model(g.graph.build());
    }

    private static TensorProto floats(String name, int rows, int cols, Random r) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return floats(name, new long[] {rows, cols}, v);
    }

    /** Graph-building steps shared by the ONNX builders. */
    private static final class OnnxGraph {
        final GraphProto.Builder graph = GraphProto.newBuilder().setName("tiny");
        final Random r;
        int anonymous;

        OnnxGraph(Random r) {
            this.r = r;
        }

        void init(TensorProto t) {
            graph.addInitializer(t);
        }

        void op(String op, String a, String b, String out) {
            graph.addNode(
                    TinyCheckpoints.node(op, b == null ? List.of(a) : List.of(a, b), List.of(out)));
        }

        /** MatMul by an anonymous {@code [in, out]} weight, then Add of {@code layer.bias}. */
        String linear(String x, String layer, int in, int out) {
            String w = "onnx::MatMul_" + anonymous++;
            init(floats(w, in, out, r));
            init(floats(layer + ".bias", 1, out, r).toBuilder().clearDims().addDims(out).build());
            op("MatMul", x, w, w + "_out");
            op("Add", w + "_out", layer + ".bias", layer + "_out");
            return layer + "_out";
        }

        String layerNorm(String x, String name) {
            init(
                    floats(name + ".weight", 1, HIDDEN, r).toBuilder()
                            .clearDims()
                            .addDims(HIDDEN)
                            .build());
            init(
                    floats(name + ".bias", 1, HIDDEN, r).toBuilder()
                            .clearDims()
                            .addDims(HIDDEN)
                            .build());
            graph.addNode(
                    TinyCheckpoints.node(
                                    "LayerNormalization",
                                    List.of(x, name + ".weight", name + ".bias"),
                                    List.of(name + "_out"))
                            .toBuilder()
                            .addAttribute(floatAttr("epsilon", 1e-12f)));
            return name + "_out";
        }
    }
}
