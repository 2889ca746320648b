package io.github.tilewise.it.reference;

import ai.onnx.proto.OnnxMl;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.TextFormat;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.it.reference.SeededCheckpoint.TensorSpec;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Transformers' ONNX export of a seeded checkpoint without its weights, so that no model file lives
 * in git: {@link #strip} empties every initializer that is one of the checkpoint's tensors (after
 * checking that its bytes are exactly the seeded values) and {@link #fill} puts them back from the
 * seed. The graph, its names, constants and every other initializer stay as the exporter wrote
 * them.
 *
 * <p>{@link #main} makes the committed {@code model-skeleton.onnx.txtpb} (protobuf text format: the
 * graph only, readable) from the file {@code make_reference_models.py} exports, or a whole seeded
 * directory with its export.
 */
final class OnnxSkeleton {

    /** The file name of a skeleton next to an architecture's reference files. */
    static final String FILE = "model-skeleton.onnx.txtpb";

    /** The {@code doc_string} of an emptied initializer: this, then the tensor's name. */
    private static final String TAG = "tilewise-seeded:";

    /** After the name: the initializer holds the tensor transposed. */
    private static final String TRANSPOSED = ":T";

    private OnnxSkeleton() {}

    /**
     * Strips an export ({@code ARCH export.onnx skeleton.onnx}), or writes an architecture's seeded
     * directory with its refilled export ({@code fill ARCH DIR}: {@code model.safetensors}, {@code
     * model.onnx}, {@code config.json}, the tokenizer), e.g. for the long-document benchmark's
     * {@code model=DIR onnx=DIR/model.onnx}.
     *
     * @param args see above
     * @throws IOException if reading or writing fails
     */
    public static void main(String[] args) throws IOException {
        if (args.length == 3 && args[0].equals("fill")) {
            SeededCheckpoint seeded = SeededCheckpoint.load(args[1]);
            Path dir = seeded.writeDirectory(Path.of(args[2]));
            fill(seeded, dir);
            System.out.println(dir + ": model.safetensors, model.onnx, config.json");
            return;
        }
        SeededCheckpoint checkpoint = SeededCheckpoint.load(args[0]);
        OnnxMl.ModelProto model = parse(Files.newInputStream(Path.of(args[1])));
        OnnxMl.ModelProto skeleton = strip(model, checkpoint);
        Files.writeString(Path.of(args[2]), TextFormat.printer().printToString(skeleton));
        System.out.println(args[2] + ": " + skeleton.getSerializedSize() + " bytes");
    }

    /**
     * Empties every initializer whose bytes are one of the checkpoint's tensors, as stored or
     * transposed (exporters fold a linear layer's transpose into an anonymous initializer), and
     * records which in its {@code doc_string}; fails unless every tensor is found.
     */
    static OnnxMl.ModelProto strip(OnnxMl.ModelProto model, SeededCheckpoint checkpoint) {
        Map<String, String> byContent = new HashMap<>();
        for (TensorSpec spec : specs(checkpoint).values()) {
            float[] values = checkpoint.values(spec);
            byContent.put(SeededCheckpoint.sha256(values), spec.getName());
            long[] shape = spec.getShape();
            if (shape.length == 2) {
                byContent.put(
                        SeededCheckpoint.sha256(transpose(values, shape)),
                        spec.getName() + TRANSPOSED);
            }
        }
        OnnxMl.GraphProto.Builder graph = model.getGraph().toBuilder();
        Set<String> found = new TreeSet<>();
        for (int i = 0; i < graph.getInitializerCount(); i++) {
            OnnxMl.TensorProto t = graph.getInitializer(i);
            if (t.getDataType() != OnnxMl.TensorProto.DataType.FLOAT.getNumber()) {
                continue;
            }
            float[] values = new float[t.getRawData().size() / 4];
            t.getRawData()
                    .asReadOnlyByteBuffer()
                    .order(ByteOrder.LITTLE_ENDIAN)
                    .asFloatBuffer()
                    .get(values);
            String tensor = byContent.get(SeededCheckpoint.sha256(values));
            if (tensor != null) {
                graph.setInitializer(i, t.toBuilder().clearRawData().setDocString(TAG + tensor));
                found.add(tensor.replace(TRANSPOSED, ""));
            }
        }
        // A base model's export computes only last_hidden_state: the pooler is pruned.
        Set<String> missing = new TreeSet<>(specs(checkpoint).keySet());
        missing.removeAll(found);
        missing.removeIf(name -> name.startsWith("pooler."));
        if (!missing.isEmpty()) {
            throw new IllegalStateException("not in the export: " + missing);
        }
        // The exporter's per-node stack traces and metadata are not the model.
        for (int i = 0; i < graph.getNodeCount(); i++) {
            graph.setNode(i, graph.getNode(i).toBuilder().clearDocString().clearMetadataProps());
        }
        return model.toBuilder().setGraph(graph).build();
    }

    /**
     * Writes the architecture's skeleton with its weights back in place, and {@code config.json},
     * to an export directory.
     *
     * @param checkpoint the seeded checkpoint
     * @param dir the directory (created)
     * @return {@code dir}
     * @throws IOException if writing fails
     */
    static Path fill(SeededCheckpoint checkpoint, Path dir) throws IOException {
        String arch = checkpoint.getArch();
        OnnxMl.ModelProto skeleton;
        try (InputStream in =
                OnnxSkeleton.class.getResourceAsStream(
                        SeededCheckpoint.RESOURCE_ROOT + arch + "/" + FILE)) {
            if (in == null) {
                throw new IOException("no " + FILE + " for " + arch);
            }
            OnnxMl.ModelProto.Builder b = OnnxMl.ModelProto.newBuilder();
            TextFormat.merge(new InputStreamReader(in, StandardCharsets.UTF_8), b);
            skeleton = b.build();
        }
        Map<String, TensorSpec> specs = specs(checkpoint);
        OnnxMl.GraphProto.Builder graph = skeleton.getGraph().toBuilder();
        for (int i = 0; i < graph.getInitializerCount(); i++) {
            OnnxMl.TensorProto t = graph.getInitializer(i);
            if (!t.getDocString().startsWith(TAG)) {
                continue;
            }
            String tensor = t.getDocString().substring(TAG.length());
            boolean transposed = tensor.endsWith(TRANSPOSED);
            TensorSpec spec = specs.get(tensor.replace(TRANSPOSED, ""));
            if (spec == null) {
                throw new IOException(arch + ": the skeleton names an unknown tensor " + tensor);
            }
            float[] values = checkpoint.values(spec);
            if (transposed) {
                values = transpose(values, spec.getShape());
            }
            byte[] bytes = SeededCheckpoint.toBytes(values);
            graph.setInitializer(
                    i, t.toBuilder().clearDocString().setRawData(ByteString.copyFrom(bytes)));
        }
        Files.createDirectories(dir);
        Files.write(
                dir.resolve("model.onnx"),
                skeleton.toBuilder().setGraph(graph).build().toByteArray());
        Files.write(
                dir.resolve("config.json"), SeededCheckpoint.readResource(arch + "/config.json"));
        return dir;
    }

    private static Map<String, TensorSpec> specs(SeededCheckpoint checkpoint) {
        Map<String, TensorSpec> specs = new HashMap<>();
        for (TensorSpec t : checkpoint.getTensors()) {
            if (t.isWritten()) {
                specs.put(t.getName(), t);
            }
        }
        return specs;
    }

    private static float[] transpose(float[] data, long[] shape) {
        return new CheckpointTensor("", shape, data).transpose("").getData();
    }

    private static OnnxMl.ModelProto parse(InputStream in) throws IOException {
        CodedInputStream coded = CodedInputStream.newInstance(in);
        coded.setSizeLimit(Integer.MAX_VALUE);
        return OnnxMl.ModelProto.parseFrom(coded);
    }
}
