package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.HiddenActivation;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Reads a Hugging Face model directory: {@code config.json} (the configuration) and {@code
 * model.safetensors} (the weights). Tensor names may carry the {@code bert.} prefix of task models
 * ({@code BertForSequenceClassification}); the configuration is checked against the tensors'
 * shapes.
 */
public final class HuggingFaceCheckpointReader {

    /** {@code model_type} values whose checkpoints have BERT's layout. */
    private static final Set<String> SUPPORTED_TYPES = Set.of("bert");

    private HuggingFaceCheckpointReader() {}

    /**
     * Reads a directory.
     *
     * @param dir the directory
     * @return the checkpoint
     * @throws IOException if {@code config.json} or {@code model.safetensors} is missing or
     *     unreadable
     * @throws MalformedModelException naming the file and the problem for an unknown architecture,
     *     a malformed file, or a configuration contradicting the weights
     */
    public static EncoderCheckpoint read(Path dir) throws IOException, MalformedModelException {
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new NoSuchFileException(
                    configFile.toString(),
                    null,
                    "a Hugging Face model directory needs config.json");
        }
        JsonObject json = parseJson(configFile);
        Path weightsFile = dir.resolve(SafetensorsFile.DEFAULT_NAME);
        if (!Files.isRegularFile(weightsFile)) {
            String hint =
                    Files.isRegularFile(dir.resolve("pytorch_model.bin"))
                            ? ": pytorch_model.bin (pickle) is not supported, save the model with"
                                    + " safe_serialization=True"
                            : "";
            throw new NoSuchFileException(
                    weightsFile.toString(), null, "no model.safetensors in " + dir + hint);
        }
        String modelType = string(json, "model_type", null);
        if (modelType == null) {
            throw new MalformedModelException(configFile + ": no model_type: unknown architecture");
        }
        if (!SUPPORTED_TYPES.contains(modelType.toLowerCase(Locale.ROOT))) {
            throw new MalformedModelException(
                    configFile
                            + ": unknown architecture model_type='"
                            + modelType
                            + "': supported are "
                            + SUPPORTED_TYPES);
        }
        String positionType = string(json, "position_embedding_type", "absolute");
        if (!"absolute".equals(positionType)) {
            throw new MalformedModelException(
                    configFile
                            + ": position_embedding_type='"
                            + positionType
                            + "' is not supported (only absolute)");
        }
        Map<String, CheckpointTensor> raw = SafetensorsFile.read(weightsFile);
        Map<String, CheckpointTensor> tensors = new LinkedHashMap<>();
        for (CheckpointTensor t : raw.values()) {
            String name = t.getName().startsWith("bert.") ? t.getName().substring(5) : t.getName();
            tensors.put(name, t.rename(name));
        }
        EncoderConfig config = configFrom(configFile, json, tensors, weightsFile);
        EncoderCheckpoint checkpoint = new EncoderCheckpoint(dir, config, tensors, "config.json");
        // Fail here, naming both files, rather than at load time.
        checkpoint.checkShapes(
                new TextEncoderBlock(config, Pooling.CLS, false).getCheckpointParameters());
        return checkpoint;
    }

    private static EncoderConfig configFrom(
            Path configFile, JsonObject json, Map<String, CheckpointTensor> tensors, Path weights)
            throws MalformedModelException {
        List<String> labels = new ArrayList<>();
        boolean classifier = tensors.containsKey("classifier.weight");
        if (classifier) {
            long numLabels = tensors.get("classifier.weight").getShape()[0];
            labels.addAll(labelsOf(json, (int) numLabels, configFile));
        }
        HiddenActivation activation;
        try {
            activation = HiddenActivation.fromName(string(json, "hidden_act", "gelu"));
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(configFile + ": " + e.getMessage(), e);
        }
        try {
            return EncoderConfig.builder()
                    .setHiddenSize(integer(json, "hidden_size", configFile))
                    .setNumHeads(integer(json, "num_attention_heads", configFile))
                    .setNumLayers(integer(json, "num_hidden_layers", configFile))
                    .setIntermediateSize(integer(json, "intermediate_size", configFile))
                    .setMaxPositions(integer(json, "max_position_embeddings", configFile))
                    .setVocabSize(integer(json, "vocab_size", configFile))
                    .optTypeVocabSize(
                            tensors.containsKey("embeddings.token_type_embeddings.weight")
                                    ? integer(json, "type_vocab_size", configFile)
                                    : 0)
                    .optLayerNormEps(
                            json.has("layer_norm_eps")
                                    ? json.get("layer_norm_eps").getAsFloat()
                                    : 1e-12f)
                    .optActivation(activation)
                    .optPooler(tensors.containsKey("pooler.dense.weight"))
                    .optLabels(labels)
                    .build();
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(configFile + ": " + e.getMessage(), e);
        }
    }

    /** Reads {@code id2label} in id order, or {@code LABEL_i} names when absent. */
    static List<String> labelsOf(JsonObject json, int numLabels, Path configFile)
            throws MalformedModelException {
        List<String> labels = new ArrayList<>();
        if (json != null && json.has("id2label")) {
            Map<Integer, String> byId = new TreeMap<>();
            for (Map.Entry<String, JsonElement> e : json.getAsJsonObject("id2label").entrySet()) {
                byId.put(Integer.parseInt(e.getKey()), e.getValue().getAsString());
            }
            if (byId.size() != numLabels
                    || !byId.keySet().equals(new java.util.TreeSet<>(range(numLabels)))) {
                throw new MalformedModelException(
                        configFile
                                + ": id2label has ids "
                                + byId.keySet()
                                + " but the classifier has "
                                + numLabels
                                + " outputs");
            }
            labels.addAll(byId.values());
        } else {
            for (int i = 0; i < numLabels; i++) {
                labels.add("LABEL_" + i);
            }
        }
        return labels;
    }

    private static List<Integer> range(int n) {
        Integer[] r = new Integer[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return Arrays.asList(r);
    }

    static JsonObject parseJson(Path file) throws IOException, MalformedModelException {
        try {
            return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8))
                    .getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
            throw new MalformedModelException(file + ": not a JSON object: " + e.getMessage(), e);
        }
    }

    private static String string(JsonObject json, String key, String fallback) {
        JsonElement e = json.get(key);
        return e == null || e.isJsonNull() ? fallback : e.getAsString();
    }

    private static int integer(JsonObject json, String key, Path file)
            throws MalformedModelException {
        JsonElement e = json.get(key);
        if (e == null || e.isJsonNull()) {
            throw new MalformedModelException(file + ": missing " + key);
        }
        try {
            return e.getAsInt();
        } catch (RuntimeException ex) {
            throw new MalformedModelException(file + ": " + key + " is not an integer: " + e, ex);
        }
    }
}
