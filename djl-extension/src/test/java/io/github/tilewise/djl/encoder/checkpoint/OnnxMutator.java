package io.github.tilewise.djl.encoder.checkpoint;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import java.util.Random;

/**
 * Structure-aware mutations of an ONNX model, for the parser fuzzer: byte mutations rarely keep a
 * protobuf parseable, so these change one field of a valid model (a dim, a data type, the data's
 * length, a node's inputs, outputs or operator) and leave the rest intact.
 */
final class OnnxMutator {

    private static final String[] OPS = {
        "MatMul",
        "Add",
        "Gemm",
        "Reshape",
        "Softmax",
        "Div",
        "Mul",
        "Erf",
        "Constant",
        "Concat",
        "LayerNormalization",
        "MatMulInteger",
        "DequantizeLinear",
        "Gather",
        "Cast",
        "Tanh"
    };

    private final Random r;
    private final Mutator bytes;

    OnnxMutator(Random r) {
        this.r = r;
        this.bytes = new Mutator(r);
    }

    /** Applies one to three field mutations. */
    ModelProto mutate(ModelProto model) {
        GraphProto.Builder g = model.getGraph().toBuilder();
        for (int n = 1 + r.nextInt(3); n > 0; n--) {
            if (r.nextBoolean() && g.getInitializerCount() > 0) {
                int i = r.nextInt(g.getInitializerCount());
                g.setInitializer(i, tensor(g.getInitializer(i), g));
            } else if (g.getNodeCount() > 0) {
                int i = r.nextInt(g.getNodeCount());
                g.setNode(i, node(g.getNode(i), g));
            }
        }
        return model.toBuilder().setGraph(g).build();
    }

    private TensorProto tensor(TensorProto t, GraphProto.Builder g) {
        TensorProto.Builder b = t.toBuilder();
        switch (r.nextInt(7)) {
            case 0: // one dim set to an interesting value
                if (t.getDimsCount() > 0) {
                    b.setDims(r.nextInt(t.getDimsCount()), bytes.interesting());
                } else {
                    b.addDims(bytes.interesting());
                }
                break;
            case 1: // an extra or a missing dim
                if (r.nextBoolean() || t.getDimsCount() == 0) {
                    b.addDims(1 + r.nextInt(4));
                } else {
                    b.clearDims();
                }
                break;
            case 2: // any data type, defined or not
                b.setDataType(r.nextInt(4) == 0 ? (int) bytes.interesting() : r.nextInt(24));
                break;
            case 3: // raw data cut short or grown
                ByteString raw = t.getRawData();
                int cut = raw.isEmpty() ? 0 : r.nextInt(raw.size() + 1);
                b.setRawData(r.nextBoolean() ? raw.substring(0, cut) : raw.concat(raw));
                break;
            case 4: // typed data instead of raw
                b.clearRawData();
                for (int k = r.nextInt(5); k > 0; k--) {
                    b.addFloatData(r.nextFloat());
                    b.addInt32Data(r.nextInt());
                    b.addInt64Data(bytes.interesting());
                }
                break;
            case 5: // renamed to another tensor's or node's name
                b.setName(anyName(g));
                break;
            default: // external data
                b.setDataLocation(TensorProto.DataLocation.EXTERNAL);
                break;
        }
        return b.build();
    }

    private NodeProto node(NodeProto n, GraphProto.Builder g) {
        NodeProto.Builder b = n.toBuilder();
        switch (r.nextInt(5)) {
            case 0:
                b.clearInput();
                for (int k = r.nextInt(n.getInputCount() + 1); k > 0; k--) {
                    b.addInput(n.getInput(r.nextInt(n.getInputCount())));
                }
                break;
            case 1:
                b.clearOutput();
                if (r.nextBoolean() && n.getOutputCount() > 1) {
                    b.addOutput(n.getOutput(0));
                }
                break;
            case 2:
                b.setOpType(OPS[r.nextInt(OPS.length)]);
                break;
            case 3: // an input rewired to any name, or the empty name
                if (n.getInputCount() > 0) {
                    b.setInput(r.nextInt(n.getInputCount()), r.nextInt(4) == 0 ? "" : anyName(g));
                }
                break;
            default:
                b.setDomain(r.nextBoolean() ? "com.microsoft" : "ai.onnx");
                break;
        }
        return b.build();
    }

    private String anyName(GraphProto.Builder g) {
        if (r.nextBoolean() && g.getInitializerCount() > 0) {
            return g.getInitializer(r.nextInt(g.getInitializerCount())).getName();
        }
        NodeProto n = g.getNode(r.nextInt(g.getNodeCount()));
        return n.getOutputCount() > 0 ? n.getOutput(0) : "";
    }
}
