package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Sharded safetensors weights: {@code model.safetensors.index.json}'s {@code weight_map} names, for
 * every tensor, the shard file that holds it ({@code model-00001-of-00002.safetensors}). Shards
 * must be plain files next to the index (no paths, no links), every mapped tensor must be in its
 * shard, and no tensor may be in two shards.
 */
final class SafetensorsIndex {

    /** The index file's name. */
    static final String INDEX_NAME = "model.safetensors.index.json";

    /** The most shards an index may name. */
    static final int MAX_SHARDS = 4096;

    /** The most tensors an index may map. */
    static final int MAX_TENSORS = 1 << 20;

    private static final Pattern SHARD_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,200}");

    private SafetensorsIndex() {}

    /**
     * Reads every shard an index names.
     *
     * @param index the {@code model.safetensors.index.json} file
     * @return the tensors of all shards, by name
     * @throws IOException if a shard is missing or unreadable
     * @throws MalformedModelException naming the file and the problem for a malformed index, a
     *     shard name that is not a plain file name, a tensor missing from its shard, or a tensor in
     *     two shards
     */
    static Map<String, CheckpointTensor> read(Path index)
            throws IOException, MalformedModelException {
        JsonObject json = HuggingFaceCheckpointReader.parseJson(index);
        JsonElement map = json.get("weight_map");
        if (map == null || !map.isJsonObject()) {
            throw new MalformedModelException(index + ": no weight_map object");
        }
        Map<String, String> shardOf = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : map.getAsJsonObject().entrySet()) {
            if (shardOf.size() >= MAX_TENSORS) {
                throw new MalformedModelException(
                        index + ": weight_map names more than " + MAX_TENSORS + " tensors");
            }
            JsonElement file = e.getValue();
            if (!file.isJsonPrimitive() || !file.getAsJsonPrimitive().isString()) {
                throw new MalformedModelException(
                        index
                                + ": weight_map entry "
                                + CheckpointLimits.abbreviate(e.getKey())
                                + " is not a file name");
            }
            shardOf.put(e.getKey(), file.getAsString());
        }
        TreeSet<String> shards = new TreeSet<>(shardOf.values());
        if (shards.isEmpty()) {
            throw new MalformedModelException(index + ": weight_map is empty");
        }
        if (shards.size() > MAX_SHARDS) {
            throw new MalformedModelException(
                    index + ": names " + shards.size() + " shards, more than " + MAX_SHARDS);
        }
        Path dir = index.toAbsolutePath().getParent();
        for (String shard : shards) {
            if (!SHARD_NAME.matcher(shard).matches() || shard.contains("..")) {
                throw new MalformedModelException(
                        index
                                + ": shard "
                                + CheckpointLimits.abbreviate(shard)
                                + " is not a plain file name next to the index");
            }
            Path file = dir.resolve(shard);
            if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
                throw new NoSuchFileException(
                        file.toString(), null, "a shard named by " + index.getFileName());
            }
        }
        Map<String, CheckpointTensor> tensors = new TreeMap<>();
        Map<String, String> foundIn = new LinkedHashMap<>();
        for (String shard : shards) {
            Path file = dir.resolve(shard);
            for (CheckpointTensor t : SafetensorsFile.read(file).values()) {
                String previous = foundIn.putIfAbsent(t.getName(), shard);
                if (previous != null) {
                    throw new MalformedModelException(
                            index
                                    + ": tensor "
                                    + CheckpointLimits.abbreviate(t.getName())
                                    + " is in both "
                                    + previous
                                    + " and "
                                    + shard);
                }
                tensors.put(t.getName(), t);
            }
        }
        for (Map.Entry<String, String> e : shardOf.entrySet()) {
            if (!e.getValue().equals(foundIn.get(e.getKey()))) {
                throw new MalformedModelException(
                        index
                                + ": weight_map puts "
                                + CheckpointLimits.abbreviate(e.getKey())
                                + " in "
                                + e.getValue()
                                + ", but "
                                + (foundIn.containsKey(e.getKey())
                                        ? "it is in " + foundIn.get(e.getKey())
                                        : "no shard holds it"));
            }
        }
        return tensors;
    }
}
