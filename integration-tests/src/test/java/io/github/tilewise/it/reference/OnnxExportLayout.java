package io.github.tilewise.it.reference;

import ai.onnx.proto.OnnxMl;
import com.google.protobuf.ByteString;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Writes a {@link RandomHfCheckpoint}'s weights as the initializers of an ONNX export directory
 * ({@code model.onnx} + {@code config.json}), laid out as {@code torch.onnx} lays out an encoder's
 * linear layers, to test the ONNX import route of every family without {@code torch}:
 *
 * <ul>
 *   <li>{@link Style#TORCHSCRIPT}: each linear weight an anonymous initializer ({@code
 *       onnx::MatMul_k}) stored transposed {@code [in, out]}, the input of a {@code MatMul}
 *       followed by the {@code Add} of its named bias; every other tensor under its own name; and a
 *       {@code CumSum} node, as RoBERTa-style exports number positions from the padding.
 *   <li>{@link Style#DYNAMO}: every tensor under its own name, each linear weight behind a {@code
 *       Transpose} into its {@code MatMul} (the dynamo exporter's {@code aten.linear}).
 * </ul>
 *
 * <p>The nodes carry only the linear layers' pattern, which is all the importer reads; the graph is
 * not meant to run (ModernBERT's runnable graph is {@code ModernBertOnnxGraph}, imported by {@code
 * ModernBertOnnxGraphTest}). Transformers' own exports are checked by {@code
 * ArchitectureParityTest} once its reference files exist.
 */
final class OnnxExportLayout {

    /** How the linear layers are written. */
    enum Style {
        TORCHSCRIPT,
        DYNAMO
    }

    private OnnxExportLayout() {}

    /**
     * Writes {@code dir/model.onnx} and {@code dir/config.json}.
     *
     * @param checkpoint the weights and configuration
     * @param dir the export directory (created)
     * @param style the layout
     * @param withConfig whether to write {@code config.json}
     * @return {@code dir}
     * @throws IOException if writing fails
     * @throws IllegalArgumentException for {@link Style#TORCHSCRIPT} with a linear layer without
     *     bias (such exports cannot name it)
     */
    static Path write(RandomHfCheckpoint checkpoint, Path dir, Style style, boolean withConfig)
            throws IOException {
        Files.createDirectories(dir);
        if (withConfig) {
            checkpoint.write(dir);
            Files.delete(dir.resolve("model.safetensors"));
        }
        OnnxMl.GraphProto.Builder graph = OnnxMl.GraphProto.newBuilder().setName("export");
        graph.addInput(
                OnnxMl.ValueInfoProto.newBuilder()
                        .setName("x")
                        .setType(
                                OnnxMl.TypeProto.newBuilder()
                                        .setTensorType(
                                                OnnxMl.TypeProto.Tensor.newBuilder()
                                                        .setElemType(
                                                                OnnxMl.TensorProto.DataType.FLOAT
                                                                        .getNumber()))));
        Map<String, float[]> values = checkpoint.getValues();
        Map<String, long[]> shapes = checkpoint.getShapes();
        int k = 0;
        for (String name : values.keySet()) {
            long[] shape = shapes.get(name);
            if (!isLinearWeight(name, shape)) {
                graph.addInitializer(tensor(name, shape, values.get(name)));
                continue;
            }
            String bias = name.substring(0, name.length() - "weight".length()) + "bias";
            boolean hasBias = values.containsKey(bias);
            String weightInput;
            if (style == Style.TORCHSCRIPT) {
                if (!hasBias) {
                    throw new IllegalArgumentException(name + " has no bias");
                }
                weightInput = "onnx::MatMul_" + (1000 + k);
                graph.addInitializer(
                        tensor(
                                weightInput,
                                new long[] {shape[1], shape[0]},
                                transpose(values.get(name), shape)));
            } else {
                graph.addInitializer(tensor(name, shape, values.get(name)));
                weightInput = "t_" + k;
                graph.addNode(
                        node("Transpose", List.of(name), weightInput)
                                .addAttribute(
                                        OnnxMl.AttributeProto.newBuilder()
                                                .setName("perm")
                                                .setType(OnnxMl.AttributeProto.AttributeType.INTS)
                                                .addInts(1)
                                                .addInts(0)));
            }
            graph.addNode(node("MatMul", List.of("x", weightInput), "mm_" + k));
            if (hasBias) {
                graph.addNode(node("Add", List.of("mm_" + k, bias), "linear_" + k));
            }
            k++;
        }
        if (style == Style.TORCHSCRIPT) {
            graph.addNode(node("CumSum", List.of("x", "axis"), "positions"));
        }
        OnnxMl.ModelProto model =
                OnnxMl.ModelProto.newBuilder()
                        .setIrVersion(8)
                        .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setVersion(17))
                        .setGraph(graph)
                        .build();
        Files.write(dir.resolve("model.onnx"), model.toByteArray());
        return dir;
    }

    /** A 2-D weight other than an embedding table: the weight of a linear layer. */
    private static boolean isLinearWeight(String name, long[] shape) {
        return shape.length == 2
                && name.endsWith(".weight")
                && !name.contains("embeddings")
                && !name.contains("relative_attention_bias");
    }

    private static OnnxMl.NodeProto.Builder node(String op, List<String> inputs, String output) {
        return OnnxMl.NodeProto.newBuilder()
                .setName(op + "_" + output)
                .setOpType(op)
                .addAllInput(inputs)
                .addOutput(output);
    }

    private static OnnxMl.TensorProto tensor(String name, long[] shape, float[] data) {
        ByteBuffer bytes = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(data);
        OnnxMl.TensorProto.Builder t =
                OnnxMl.TensorProto.newBuilder()
                        .setName(name)
                        .setDataType(OnnxMl.TensorProto.DataType.FLOAT.getNumber())
                        .setRawData(ByteString.copyFrom(bytes.array()));
        for (long d : shape) {
            t.addDims(d);
        }
        return t.build();
    }

    private static float[] transpose(float[] data, long[] shape) {
        return new CheckpointTensor("", shape, data).transpose("").getData();
    }
}
