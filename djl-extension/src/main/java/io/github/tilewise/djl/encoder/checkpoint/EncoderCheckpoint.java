package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.encoder.CheckpointParameter;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.ParameterValues;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import io.github.tilewise.djl.encoder.TransformerEncoder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A BERT-family checkpoint read into memory: its configuration and its fp32 tensors under Hugging
 * Face names ({@code embeddings.word_embeddings.weight}, {@code encoder.layer.0...}, linear weights
 * {@code [out, in]}), whatever the file format it came from.
 *
 * <p>{@link #read(Path)} accepts an ONNX file, a directory holding one ({@code model.onnx}), or a
 * Hugging Face directory ({@code config.json} + {@code model.safetensors}).
 */
public final class EncoderCheckpoint {

    private final Path source;
    private final EncoderConfig config;
    private final Map<String, CheckpointTensor> tensors;
    private final String configOrigin;

    /**
     * Creates a checkpoint.
     *
     * @param source the file or directory it was read from (for messages)
     * @param config its configuration
     * @param tensors its tensors by Hugging Face name
     * @param configOrigin where the configuration came from, for messages (e.g. {@code
     *     config.json})
     */
    public EncoderCheckpoint(
            Path source,
            EncoderConfig config,
            Map<String, CheckpointTensor> tensors,
            String configOrigin) {
        this.source = source;
        this.configOrigin = configOrigin;
        this.config = config;
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }

    /**
     * Reads a checkpoint, choosing the reader from what the path holds.
     *
     * @param path an {@code .onnx} file, a directory with {@code config.json} and {@code
     *     model.safetensors}, or a directory with one {@code .onnx} file
     * @return the checkpoint
     * @throws IOException if a file is missing or unreadable
     * @throws MalformedModelException naming the file and the problem if the content cannot be
     *     mapped onto a BERT-family encoder
     */
    public static EncoderCheckpoint read(Path path) throws IOException, MalformedModelException {
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "no such model file or directory");
        }
        if (Files.isRegularFile(path)) {
            if (path.getFileName().toString().endsWith(".safetensors")) {
                // Absolute: a bare "model.safetensors" has no parent.
                return HuggingFaceCheckpointReader.read(path.toAbsolutePath().getParent());
            }
            return OnnxCheckpointReader.read(path);
        }
        if (Files.isRegularFile(path.resolve("config.json"))
                && (Files.isRegularFile(path.resolve(SafetensorsFile.DEFAULT_NAME))
                        || !Files.isRegularFile(path.resolve("model.onnx")))) {
            return HuggingFaceCheckpointReader.read(path);
        }
        Path onnx = OnnxCheckpointReader.findOnnxFile(path);
        return OnnxCheckpointReader.read(onnx);
    }

    /**
     * Returns where the checkpoint was read from.
     *
     * @return the file or directory
     */
    public Path getSource() {
        return source;
    }

    /**
     * Returns the configuration.
     *
     * @return the configuration
     */
    public EncoderConfig getConfig() {
        return config;
    }

    /**
     * Returns the tensors by Hugging Face name.
     *
     * @return an unmodifiable map
     */
    public Map<String, CheckpointTensor> getTensors() {
        return tensors;
    }

    /**
     * Returns one tensor.
     *
     * @param name its Hugging Face name
     * @return the tensor
     * @throws MalformedModelException naming the checkpoint if it has no such tensor
     */
    public CheckpointTensor getTensor(String name) throws MalformedModelException {
        CheckpointTensor t = tensors.get(name);
        if (t == null) {
            throw new MalformedModelException(source + ": the checkpoint has no tensor " + name);
        }
        return t;
    }

    /**
     * Builds the model block holding this checkpoint's weights, ready to run.
     *
     * @param manager owns the weights (the model's manager)
     * @param pooling how token vectors become one text vector
     * @param normalize whether text vectors are L2-normalised
     * @return the block
     * @throws MalformedModelException naming the file, tensor and shapes if a tensor is missing or
     *     contradicts the configuration
     */
    public TextEncoderBlock createBlock(NDManager manager, Pooling pooling, boolean normalize)
            throws MalformedModelException {
        TextEncoderBlock block = new TextEncoderBlock(config, pooling, normalize);
        loadInto(block.getCheckpointParameters(), manager);
        block.resetLinearOperators();
        block.initialize(manager, DataType.FLOAT32, new Shape(1, 1));
        return block;
    }

    /**
     * Builds an encoder (no heads) holding this checkpoint's weights, ready to run.
     *
     * @param manager owns the weights
     * @return the encoder
     * @throws MalformedModelException naming the file, tensor and shapes if a tensor is missing or
     *     contradicts the configuration
     */
    public TransformerEncoder createEncoder(NDManager manager) throws MalformedModelException {
        TransformerEncoder encoder = TransformerEncoder.create(config);
        loadInto(encoder.getCheckpointParameters(), manager);
        encoder.resetLinearOperators();
        encoder.initialize(manager, DataType.FLOAT32, new Shape(1, 1));
        return encoder;
    }

    /**
     * Copies this checkpoint's tensors into block parameters.
     *
     * @param parameters the parameters with their checkpoint names and shapes
     * @param manager owns the new weight arrays
     * @throws MalformedModelException naming the file, tensor and shapes if a tensor is missing or
     *     has the wrong shape
     */
    public void loadInto(List<CheckpointParameter> parameters, NDManager manager)
            throws MalformedModelException {
        checkShapes(parameters);
        for (CheckpointParameter p : parameters) {
            CheckpointTensor t = tensors.get(p.getName());
            NDArray array = manager.create(t.getData(), p.getShape());
            array.setName(p.getName());
            ParameterValues.replace("", p.getParameter(), array, p.getShape());
        }
    }

    /**
     * Checks that every parameter has a tensor of its shape, before anything is allocated.
     *
     * @param parameters the parameters with their checkpoint names and shapes
     * @throws MalformedModelException naming the file, the tensor and both shapes otherwise
     */
    public void checkShapes(List<CheckpointParameter> parameters) throws MalformedModelException {
        for (CheckpointParameter p : parameters) {
            CheckpointTensor t = tensors.get(p.getName());
            if (t == null) {
                throw new MalformedModelException(
                        source
                                + ": missing tensor "
                                + p.getName()
                                + " (expected shape "
                                + p.getShape()
                                + ")");
            }
            if (!new Shape(t.getShape()).equals(p.getShape())) {
                throw new MalformedModelException(
                        source
                                + ": "
                                + configOrigin
                                + " contradicts the weights: tensor "
                                + p.getName()
                                + " has shape "
                                + Arrays.toString(t.getShape())
                                + " but "
                                + config
                                + " needs "
                                + p.getShape());
            }
        }
    }

    @Override
    public String toString() {
        return "EncoderCheckpoint{" + source + ", " + config + ", " + tensors.size() + " tensors}";
    }
}
