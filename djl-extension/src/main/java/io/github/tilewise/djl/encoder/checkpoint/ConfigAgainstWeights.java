package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import io.github.tilewise.djl.encoder.EncoderArchitecture;
import io.github.tilewise.djl.encoder.EncoderConfig;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checks a {@code config.json} against the tensors its weights file actually holds, field by field,
 * before any layer is built: a 150-byte configuration claiming a thousand layers or a million-word
 * vocabulary next to a small weights file fails here, naming the field, instead of building layers
 * for a minute.
 */
final class ConfigAgainstWeights {

    private static final Pattern LAYER = Pattern.compile("^encoder\\.layer\\.(\\d{1,9})\\.");

    private static final Pattern MODERN_LAYER = Pattern.compile("^layers\\.(\\d{1,9})\\.");

    private ConfigAgainstWeights() {}

    /**
     * Checks the sizes of a configuration against the weights.
     *
     * @param configFile the configuration's file, for messages
     * @param weightsFile the weights' file, for messages
     * @param config the configuration read from {@code configFile}
     * @param tensors the tensors read from {@code weightsFile}, by Hugging Face name
     * @throws MalformedModelException naming the configuration field that the weights contradict
     */
    static void check(
            Path configFile,
            Path weightsFile,
            EncoderConfig config,
            Map<String, CheckpointTensor> tensors)
            throws MalformedModelException {
        long hidden = config.getHiddenSize();
        Context c = new Context(configFile, weightsFile, tensors);
        boolean modern = config.getArchitecture() == EncoderArchitecture.MODERNBERT;
        Pattern layerPattern = modern ? MODERN_LAYER : LAYER;
        if (modern) {
            c.dim("embeddings.tok_embeddings.weight", 0, "vocab_size", config.getVocabSize());
            c.dim("embeddings.tok_embeddings.weight", 1, "hidden_size", hidden);
            c.dim("layers.0.mlp.Wo.weight", 1, "intermediate_size", config.getIntermediateSize());
        } else {
            c.dim("embeddings.word_embeddings.weight", 0, "vocab_size", config.getVocabSize());
            c.dim("embeddings.word_embeddings.weight", 1, "hidden_size", hidden);
            c.dim(
                    "embeddings.position_embeddings.weight",
                    0,
                    "max_position_embeddings",
                    config.getMaxPositions());
            if (config.getTypeVocabSize() > 0) {
                c.dim(
                        "embeddings.token_type_embeddings.weight",
                        0,
                        "type_vocab_size",
                        config.getTypeVocabSize());
            }
            c.dim(
                    "encoder.layer.0.intermediate.dense.weight",
                    0,
                    "intermediate_size",
                    config.getIntermediateSize());
        }
        TreeSet<Integer> layers = new TreeSet<>();
        for (String name : tensors.keySet()) {
            Matcher m = layerPattern.matcher(name);
            if (m.find()) {
                layers.add(Integer.parseInt(m.group(1)));
            }
        }
        if (layers.size() != config.getNumLayers()
                || (!layers.isEmpty() && layers.last() != layers.size() - 1)) {
            throw c.contradiction(
                    "num_hidden_layers = "
                            + config.getNumLayers()
                            + ", but "
                            + weightsFile.getFileName()
                            + " holds "
                            + layers.size()
                            + " layers "
                            + CheckpointLimits.abbreviate(layers));
        }
        // The backstop for every other field: the configuration may not need more values than
        // the file holds (each tensor's element count was checked against its bytes).
        long present = 0;
        for (CheckpointTensor t : tensors.values()) {
            present += t.getData().length;
        }
        if (config.parameterCount() > present) {
            throw c.contradiction(
                    config
                            + " implies "
                            + config.parameterCount()
                            + " weights, but "
                            + weightsFile.getFileName()
                            + " holds "
                            + present);
        }
    }

    /** The files and tensors being compared, for short checks and messages. */
    private static final class Context {
        final Path configFile;
        final Path weightsFile;
        final Map<String, CheckpointTensor> tensors;

        Context(Path configFile, Path weightsFile, Map<String, CheckpointTensor> tensors) {
            this.configFile = configFile;
            this.weightsFile = weightsFile;
            this.tensors = tensors;
        }

        /** Checks that dimension {@code axis} of matrix {@code tensor} is {@code field}'s value. */
        void dim(String tensor, int axis, String field, long value) throws MalformedModelException {
            CheckpointTensor t = tensors.get(tensor);
            if (t == null) {
                throw new MalformedModelException(
                        weightsFile
                                + ": missing tensor "
                                + tensor
                                + " (it carries "
                                + field
                                + " of "
                                + configFile.getFileName()
                                + ")");
            }
            long[] shape = t.getShape();
            if (shape.length != 2 || shape[axis] != value) {
                throw contradiction(
                        field
                                + " = "
                                + value
                                + ", but tensor "
                                + tensor
                                + " in "
                                + weightsFile.getFileName()
                                + " has shape "
                                + Arrays.toString(shape));
            }
        }

        MalformedModelException contradiction(String problem) {
            return new MalformedModelException(
                    configFile + ": contradicts the weights: " + problem);
        }
    }
}
