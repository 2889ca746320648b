package io.github.tilewise.djl.encoder.checkpoint;

import static io.github.tilewise.djl.encoder.checkpoint.Hostile.assertMalformed;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import io.github.tilewise.djl.lowp.OrtQuantizedImport;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crafted ONNX Runtime quantized exports: negative, overflowing or data-less weight dims and nodes
 * missing inputs or outputs must be a {@code MalformedModelException} naming the file, never a
 * {@code NegativeArraySizeException}, {@code ArithmeticException} or index error.
 */
class HostileOrtImportTest {

    @TempDir Path dir;

    private Path write(ModelProto model) throws Exception {
        Path file = dir.resolve("quantized.onnx");
        Files.write(file, model.toByteArray());
        return file;
    }

    /** The seed with one initializer replaced. */
    private Path withInitializer(String name, UnaryOperator<TensorProto> change) throws Exception {
        GraphProto.Builder g = TinyCheckpoints.ortQuantized(1).getGraph().toBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals(name)) {
                g.setInitializer(i, change.apply(g.getInitializer(i)));
            }
        }
        return write(TinyCheckpoints.model(g.build()));
    }

    /** The seed with every node of one operator replaced. */
    private Path withNodes(String op, UnaryOperator<NodeProto> change) throws Exception {
        GraphProto.Builder g = TinyCheckpoints.ortQuantized(1).getGraph().toBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            if (g.getNode(i).getOpType().equals(op)) {
                g.setNode(i, change.apply(g.getNode(i)));
            }
        }
        return write(TinyCheckpoints.model(g.build()));
    }

    private static UnaryOperator<TensorProto> dims(long... dims) {
        return t -> {
            TensorProto.Builder b = t.toBuilder().clearDims();
            for (long d : dims) {
                b.addDims(d);
            }
            return b.build();
        };
    }

    @Test
    void theSeedImports() throws Exception {
        try (OrtQuantizedImport imp =
                OrtQuantizedImport.read(write(TinyCheckpoints.ortQuantized(1)))) {
            assertEquals(Set.of("layer"), imp.getLayerNames());
        }
    }

    @Test
    void negativeWeightDimsAreMalformed() throws Exception {
        // (-3)·(-4) = 12 matches the 12 stored codes; new float[-4] used to follow.
        Path file = withInitializer("w_quantized", dims(-3, -4));
        assertMalformed(
                () -> OrtQuantizedImport.read(file), "quantized.onnx", "w_quantized", "dims");
    }

    @Test
    void overflowingOrDataLessWeightDimsAreMalformed() throws Exception {
        // Beyond an int: Math.toIntExact used to throw ArithmeticException.
        Path big = withInitializer("w_quantized", dims(1L << 31, 1));
        assertMalformed(
                () -> OrtQuantizedImport.read(big), "quantized.onnx", "w_quantized", "dims");
        Path noData = withInitializer("w_quantized", dims(1 << 30, 1));
        assertMalformed(() -> OrtQuantizedImport.read(noData), "w_quantized", "raw_data");
        Path wrap = withInitializer("w_quantized", dims(1L << 32, 1L << 32));
        assertMalformed(() -> OrtQuantizedImport.read(wrap), "w_quantized", "dims");
        Path table = withInitializer("table_quantized", dims(1L << 32, 1L << 32));
        assertMalformed(() -> OrtQuantizedImport.read(table), "table_quantized", "dims");
        Path scale = withInitializer("w_scale", dims(1 << 30));
        assertMalformed(() -> OrtQuantizedImport.read(scale), "w_scale", "raw_data");
    }

    @Test
    void nodesMissingInputsOrOutputsAreMalformed() throws Exception {
        for (String op :
                new String[] {
                    "MatMulInteger",
                    "DequantizeLinear",
                    "Gather",
                    "Cast",
                    "Mul",
                    "DynamicQuantizeLinear"
                }) {
            Path noOutputs = withNodes(op, n -> n.toBuilder().clearOutput().build());
            assertMalformed(() -> OrtQuantizedImport.read(noOutputs), "quantized.onnx");
            Path noInputs = withNodes(op, n -> n.toBuilder().clearInput().build());
            assertMalformed(() -> OrtQuantizedImport.read(noInputs), "quantized.onnx");
        }
    }

    @Test
    void wrongTensorTypesAreMalformed() throws Exception {
        Path table =
                withInitializer(
                        "table_quantized",
                        t -> t.toBuilder().setDataType(TensorProto.DataType.FLOAT_VALUE).build());
        assertMalformed(() -> OrtQuantizedImport.read(table), "table_quantized", "int8");
    }
}
