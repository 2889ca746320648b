package io.github.tilewise.djl.encoder.checkpoint;

import static io.github.tilewise.djl.encoder.checkpoint.Hostile.assertMalformed;
import static io.github.tilewise.djl.encoder.checkpoint.TinyCheckpoints.floats;
import static io.github.tilewise.djl.encoder.checkpoint.TinyCheckpoints.model;
import static io.github.tilewise.djl.encoder.checkpoint.TinyCheckpoints.node;
import static io.github.tilewise.djl.encoder.checkpoint.TinyCheckpoints.tensor;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crafted ONNX files: each must fail fast with a {@code MalformedModelException} naming the file,
 * the tensor and the field, never allocate what the file merely claims, and never let another
 * exception escape. Run with a small heap (see the pom) so a claimed allocation shows as an error.
 */
class HostileOnnxTest {

    private static final String WORDS = "embeddings.word_embeddings.weight";

    @TempDir Path dir;

    private Path write(ModelProto model) throws Exception {
        Path file = dir.resolve("hostile.onnx");
        Files.write(file, model.toByteArray());
        return file;
    }

    /** A graph of one node and one initializer: the smallest file the reader maps. */
    private Path oneInitializer(TensorProto t) throws Exception {
        GraphProto g =
                GraphProto.newBuilder()
                        .addInitializer(t)
                        .addNode(node("Identity", List.of("x"), List.of("y")))
                        .build();
        return write(model(g));
    }

    private static TensorProto claimed(String name, long... dims) {
        return tensor(name, TensorProto.DataType.FLOAT, dims, new byte[0]);
    }

    @Test
    void tinyFileClaimingBillionsOfElementsFailsFast() throws Exception {
        Path file = oneInitializer(claimed(WORDS, 100_000, 100_000));
        assertTrue(Files.size(file) < 120, "a ~100-byte file: " + Files.size(file));
        assertMalformed(() -> OnnxCheckpointReader.read(file), "hostile.onnx", WORDS, "dims");
        // Just under the array limit, but still no data: refused before allocating.
        Path almost = oneInitializer(claimed(WORDS, 1 << 15, 1 << 15));
        assertMalformed(() -> OnnxCheckpointReader.read(almost), WORDS, "raw_data");
    }

    @Test
    void negativeDimsAreRefused() throws Exception {
        Path file = oneInitializer(claimed(WORDS, -1, 4));
        assertMalformed(() -> OnnxCheckpointReader.read(file), "hostile.onnx", WORDS, "dims");
        // Two negatives make a positive product that matches the data: still refused.
        Path pair = oneInitializer(floats(WORDS, new long[] {-2, -2}, new float[4]));
        assertMalformed(() -> OnnxCheckpointReader.read(pair), WORDS, "dims");
    }

    @Test
    void dimsWhoseProductOverflowsALongAreRefused() throws Exception {
        // 2^32 · 2^32 wraps to 0, which an empty raw_data would "match".
        Path file = oneInitializer(claimed(WORDS, 1L << 32, 1L << 32));
        assertMalformed(() -> OnnxCheckpointReader.read(file), "hostile.onnx", WORDS, "dims");
        Path rank = oneInitializer(claimed(WORDS, 1, 1, 1, 1, 1, 1, 1, 1, 1));
        assertMalformed(() -> OnnxCheckpointReader.read(rank), WORDS, "rank");
    }

    @Test
    void dataInconsistentWithDimsIsRefused() throws Exception {
        // 65 bytes for 16 floats: integer division would call it 16 values.
        TensorProto ragged =
                tensor(WORDS, TensorProto.DataType.FLOAT, new long[] {4, 4}, new byte[65]);
        Path file = oneInitializer(ragged);
        assertMalformed(() -> OnnxCheckpointReader.read(file), WORDS, "raw_data");
        TensorProto typed =
                TensorProto.newBuilder()
                        .setName(WORDS)
                        .setDataType(TensorProto.DataType.FLOAT_VALUE)
                        .addDims(2)
                        .addDims(2)
                        .addFloatData(1)
                        .build();
        Path short_ = oneInitializer(typed);
        assertMalformed(() -> OnnxCheckpointReader.read(short_), WORDS, "float_data");
        TensorProto half =
                tensor(WORDS, TensorProto.DataType.FLOAT16, new long[] {2, 2}, new byte[6]);
        Path halfFile = oneInitializer(half);
        assertMalformed(() -> OnnxCheckpointReader.read(halfFile), WORDS, "raw_data");
    }

    @Test
    void unknownAndUnsupportedDataTypesAreNamed() throws Exception {
        TensorProto unknown =
                TensorProto.newBuilder().setName(WORDS).setDataType(999).addDims(1).build();
        Path file = oneInitializer(unknown);
        assertMalformed(() -> OnnxCheckpointReader.read(file), WORDS, "data_type", "999");
        Path dbl =
                oneInitializer(
                        tensor(WORDS, TensorProto.DataType.DOUBLE, new long[] {1}, new byte[8]));
        assertMalformed(() -> OnnxCheckpointReader.read(dbl), WORDS, "data_type", "DOUBLE");
    }

    @Test
    void nodesMissingInputsOrOutputsAreMalformedNotIndexErrors() throws Exception {
        ModelProto seed = TinyCheckpoints.onnxEncoder(1);
        GraphProto.Builder g = seed.getGraph().toBuilder();
        // A Constant without an output, and every MatMul/Reshape/Div stripped of its inputs.
        g.addNode(
                NodeProto.newBuilder()
                        .setOpType("Constant")
                        .addAttribute(
                                TinyCheckpoints.floatAttr("value", 1).toBuilder()
                                        .setT(floats("c", new long[0], new float[] {1}))));
        for (int i = 0; i < g.getNodeCount(); i++) {
            String op = g.getNode(i).getOpType();
            if (op.equals("Reshape") || op.equals("Div") || op.equals("Softmax")) {
                g.setNode(i, g.getNode(i).toBuilder().clearInput().clearOutput());
            }
        }
        Path file = write(seed.toBuilder().setGraph(g).build());
        assertMalformed(() -> OnnxCheckpointReader.read(file), "hostile.onnx");
        // Every MatMul and Add without outputs: no layer can be identified.
        GraphProto.Builder h = seed.getGraph().toBuilder();
        for (int i = 0; i < h.getNodeCount(); i++) {
            h.setNode(i, h.getNode(i).toBuilder().clearOutput());
        }
        Path bare = write(seed.toBuilder().setGraph(h).build());
        assertMalformed(() -> OnnxCheckpointReader.read(bare), "hostile.onnx");
    }

    @Test
    void layerIndexBeyondAnIntIsIgnoredNotANumberFormatError() throws Exception {
        ModelProto seed = TinyCheckpoints.onnxEncoder(2);
        GraphProto g =
                seed.getGraph().toBuilder()
                        .addInitializer(
                                floats(
                                        "encoder.layer.99999999999.output.dense.bias",
                                        new long[] {1},
                                        new float[1]))
                        .build();
        Path file = write(seed.toBuilder().setGraph(g).build());
        // Not a layer of this model: ignored, the model reads as before.
        EncoderCheckpoint c = OnnxCheckpointReader.read(file);
        assertTrue(c.getConfig().getNumLayers() == TinyCheckpoints.LAYERS, c.toString());
    }

    @Test
    void absurdHeadCountInTheQueryReshapeIsNamed() throws Exception {
        ModelProto seed = TinyCheckpoints.onnxEncoder(3);
        GraphProto.Builder g = seed.getGraph().toBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals("heads_shape")) {
                java.nio.ByteBuffer b =
                        java.nio.ByteBuffer.allocate(32).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                b.putLong(0).putLong(0).putLong(1L << 33).putLong(2);
                g.setInitializer(
                        i,
                        g.getInitializer(i).toBuilder()
                                .setRawData(com.google.protobuf.ByteString.copyFrom(b.array())));
            }
        }
        Path file = write(seed.toBuilder().setGraph(g).build());
        assertMalformed(() -> OnnxCheckpointReader.read(file), "hostile.onnx", "head count");
    }
}
