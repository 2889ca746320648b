package io.github.tilewise.it.reference;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small random-weight checkpoint of one architecture, regenerated bit-exactly from the seed its
 * {@code manifest.json} records, so that no weight file lives in git.
 *
 * <p>The reference files under {@code src/test/resources/reference-models/<arch>/} are made by
 * {@code src/test/python/make_reference_models.py} (Hugging Face transformers on the device
 * machine): {@code config.json}, {@code tokenizer.json} and friends, {@code manifest.json}, and
 * transformers' own outputs ({@code outputs*.json}). This class turns them back into a Hugging Face
 * directory ({@code config.json} + {@code model.safetensors}, or sharded safetensors with {@code
 * model.safetensors.index.json}) that a loader can read.
 *
 * <p>The generator (the same text as the script's header): all arithmetic mod 2<sup>64</sup>,
 *
 * <pre>
 * GOLDEN = 0x9E3779B97F4A7C15
 * mix(z) = { z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >>> 27)) * 0x94D049BB133111EB;
 *            return z ^ (z >>> 31); }
 * seed_t = mix(model_seed + (t + 1) * GOLDEN)          tensor t, in sorted state_dict order
 * bits_i = mix(seed_t + (i + 1) * GOLDEN)              element i, row-major
 * u_i    = (float) (bits_i >>> 40) * 2^-24 * 2 - 1     exact in float32, in [-1, 1)
 * w_i    = offset + scale * u_i                        float32, two rounded operations
 * </pre>
 */
public final class SeededCheckpoint {

    /** The architectures with reference files, in the order the script makes them. */
    public static final List<String> ARCHITECTURES =
            List.of("bert", "distilbert", "mpnet", "roberta", "xlm-roberta", "modernbert");

    /** Class-path folder of the reference files. */
    public static final String RESOURCE_ROOT = "/reference-models/";

    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    private static final long MIX1 = 0xBF58476D1CE4E5B9L;
    private static final long MIX2 = 0x94D049BB133111EBL;

    /** One tensor of the manifest. */
    public static final class TensorSpec {
        private final int index;
        private final String name;
        private final String fileKey;
        private final long[] shape;
        private final String dtype;
        private final long seed;
        private final float scale;
        private final float offset;
        private final String sha256;
        private final double fsum;
        private final float[] first;
        private final String generator;
        private final String tiedTo;

        private TensorSpec(JsonObject o) {
            index = o.get("index").getAsInt();
            name = o.get("name").getAsString();
            fileKey = o.has("file_key") ? o.get("file_key").getAsString() : null;
            JsonArray s = o.getAsJsonArray("shape");
            shape = new long[s.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = s.get(i).getAsLong();
            }
            dtype = o.get("dtype").getAsString();
            seed = o.has("seed") ? Long.parseUnsignedLong(o.get("seed").getAsString()) : 0L;
            scale = o.has("scale") ? o.get("scale").getAsFloat() : 0f;
            offset = o.has("offset") ? o.get("offset").getAsFloat() : 0f;
            sha256 = o.has("sha256") ? o.get("sha256").getAsString() : null;
            fsum = o.has("fsum") ? o.get("fsum").getAsDouble() : Double.NaN;
            if (o.has("first")) {
                JsonArray f = o.getAsJsonArray("first");
                first = new float[f.size()];
                for (int i = 0; i < first.length; i++) {
                    first[i] = f.get(i).getAsFloat();
                }
            } else {
                first = new float[0];
            }
            generator = o.has("generator") ? o.get("generator").getAsString() : "seeded";
            tiedTo = o.has("tied_to") ? o.get("tied_to").getAsString() : null;
        }

        /** Position of the tensor in sorted state_dict order (the {@code t} of the generator). */
        public int getIndex() {
            return index;
        }

        /** The state_dict name. */
        public String getName() {
            return name;
        }

        /**
         * The name in the {@code model.safetensors} that transformers' {@code save_pretrained}
         * wrote (the state_dict name unless transformers renamed it).
         */
        public String getFileKey() {
            return fileKey != null ? fileKey : name;
        }

        /** The shape. */
        public long[] getShape() {
            return shape.clone();
        }

        /** Number of elements. */
        public int size() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return Math.toIntExact(n);
        }

        /** {@code F32} for seeded tensors, {@code I64} for integer buffers. */
        public String getDtype() {
            return dtype;
        }

        /** The tensor's seed ({@code seed_t}), an unsigned 64-bit value. */
        public long getSeed() {
            return seed;
        }

        /** The scale applied to the uniform values. */
        public float getScale() {
            return scale;
        }

        /** The offset added after scaling (1 for norm weights). */
        public float getOffset() {
            return offset;
        }

        /** SHA-256 (hex) of the float32 little-endian bytes, or null for non-seeded tensors. */
        public String getSha256() {
            return sha256;
        }

        /** The exactly rounded float64 sum of the values. */
        public double getFsum() {
            return fsum;
        }

        /** The first (up to 4) values. */
        public float[] getFirst() {
            return first.clone();
        }

        /** {@code seeded}, {@code arange} or {@code zeros}. */
        public String getGenerator() {
            return generator;
        }

        /** The name of the tensor whose storage this one shares, or null. */
        public String getTiedTo() {
            return tiedTo;
        }

        /** Whether the tensor is written to the safetensors file. */
        public boolean isWritten() {
            return tiedTo == null && (fileKey != null || !"F32".equals(dtype));
        }
    }

    private final String arch;
    private final JsonObject manifest;
    private final List<TensorSpec> tensors;

    private SeededCheckpoint(String arch, JsonObject manifest) {
        this.arch = arch;
        this.manifest = manifest;
        List<TensorSpec> list = new ArrayList<>();
        for (JsonElement e : manifest.getAsJsonArray("tensors")) {
            list.add(new TensorSpec(e.getAsJsonObject()));
        }
        this.tensors = Collections.unmodifiableList(list);
    }

    /**
     * Reads the manifest of an architecture from the class path.
     *
     * @param arch one of {@link #ARCHITECTURES}
     * @return the checkpoint description
     */
    public static SeededCheckpoint load(String arch) {
        return new SeededCheckpoint(arch, readJson(arch + "/manifest.json").getAsJsonObject());
    }

    /** Whether the reference files of an architecture are on the class path. */
    public static boolean isAvailable(String arch) {
        return SeededCheckpoint.class.getResource(RESOURCE_ROOT + arch + "/manifest.json") != null;
    }

    /**
     * Parses a JSON reference file.
     *
     * @param relative path under {@link #RESOURCE_ROOT}, e.g. {@code modernbert/outputs.json}
     * @return the parsed document
     */
    public static JsonElement readJson(String relative) {
        return JsonParser.parseString(new String(readResource(relative), StandardCharsets.UTF_8));
    }

    /**
     * Reads a reference file's bytes.
     *
     * @param relative path under {@link #RESOURCE_ROOT}
     * @return the bytes
     */
    public static byte[] readResource(String relative) {
        String path = RESOURCE_ROOT + relative;
        try (InputStream in = SeededCheckpoint.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalArgumentException(
                        "no reference file " + path + " on the class path");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The architecture name ({@code model_type} spelling). */
    public String getArch() {
        return arch;
    }

    /** The model seed of the manifest. */
    public long getModelSeed() {
        return manifest.get("model_seed").getAsLong();
    }

    /** The raw manifest. */
    public JsonObject getManifest() {
        return manifest.deepCopy();
    }

    /** Every tensor of the manifest, in index order. */
    public List<TensorSpec> getTensors() {
        return tensors;
    }

    /**
     * The reference files besides the manifest ({@code config.json}, {@code tokenizer.json}...).
     */
    public List<String> getFiles() {
        List<String> files = new ArrayList<>();
        for (JsonElement e : manifest.getAsJsonArray("files")) {
            files.add(e.getAsString());
        }
        return files;
    }

    /** splitmix64's finaliser. */
    public static long mix64(long z) {
        z = (z ^ (z >>> 30)) * MIX1;
        z = (z ^ (z >>> 27)) * MIX2;
        return z ^ (z >>> 31);
    }

    /**
     * The seed of tensor {@code index} of a model.
     *
     * @param modelSeed the manifest's {@code model_seed}
     * @param index the tensor's position in sorted state_dict order
     * @return {@code mix(modelSeed + (index + 1) * GOLDEN)}
     */
    public static long tensorSeed(long modelSeed, int index) {
        return mix64(modelSeed + (index + 1L) * GOLDEN);
    }

    /**
     * Generates {@code n} values {@code offset + scale * u_i}.
     *
     * @param seed the tensor's seed
     * @param n how many values
     * @param scale the scale (float32)
     * @param offset the offset (float32)
     * @return the values, bit-exactly those of the Python script
     */
    public static float[] generate(long seed, int n, float scale, float offset) {
        float[] out = new float[n];
        long state = seed;
        for (int i = 0; i < n; i++) {
            state += GOLDEN;
            long bits = mix64(state);
            float u = (float) (bits >>> 40) * 0x1p-24f * 2f - 1f;
            out[i] = offset + scale * u;
        }
        return out;
    }

    /**
     * Regenerates one seeded tensor.
     *
     * @param t a tensor of this manifest with dtype F32
     * @return its values, row-major
     */
    public float[] values(TensorSpec t) {
        if (!"F32".equals(t.getDtype()) || t.getTiedTo() != null) {
            throw new IllegalArgumentException(t.getName() + " is not a seeded float tensor");
        }
        return generate(t.getSeed(), t.size(), t.getScale(), t.getOffset());
    }

    /** Little-endian float32 bytes. */
    public static byte[] toBytes(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }

    /** SHA-256 (lower-case hex) of the little-endian float32 bytes. */
    public static String sha256(float[] v) {
        try {
            return HexFormat.of()
                    .formatHex(MessageDigest.getInstance("SHA-256").digest(toBytes(v)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private byte[] bytesOf(TensorSpec t) {
        if ("F32".equals(t.getDtype())) {
            return toBytes(values(t));
        }
        if (!"I64".equals(t.getDtype())) {
            throw new IllegalStateException(
                    "unsupported dtype " + t.getDtype() + " of " + t.getName());
        }
        ByteBuffer b = ByteBuffer.allocate(8 * t.size()).order(ByteOrder.LITTLE_ENDIAN);
        boolean arange = "arange".equals(t.getGenerator());
        for (int i = 0; i < t.size(); i++) {
            b.putLong(arange ? i : 0L);
        }
        return b.array();
    }

    private List<TensorSpec> written() {
        List<TensorSpec> list = new ArrayList<>();
        for (TensorSpec t : tensors) {
            if (t.isWritten()) {
                list.add(t);
            }
        }
        return list;
    }

    /**
     * Writes a Hugging Face directory: the reference files ({@code config.json}, tokenizer files,
     * sentence-transformers files where present) and one {@code model.safetensors}.
     *
     * @param dir the directory (created if missing)
     * @return {@code dir}
     * @throws IOException if writing fails
     */
    public Path writeDirectory(Path dir) throws IOException {
        copyFiles(dir);
        writeSafetensors(dir.resolve("model.safetensors"), written());
        return dir;
    }

    /**
     * Writes a Hugging Face directory whose weights are split over {@code shards} files {@code
     * model-0000k-of-0000n.safetensors} with a {@code model.safetensors.index.json}, as
     * transformers writes large checkpoints.
     *
     * @param dir the directory (created if missing)
     * @param shards how many files (at least 2)
     * @return {@code dir}
     * @throws IOException if writing fails
     */
    public Path writeShardedDirectory(Path dir, int shards) throws IOException {
        if (shards < 2) {
            throw new IllegalArgumentException("shards must be at least 2, got " + shards);
        }
        copyFiles(dir);
        List<TensorSpec> all = written();
        long total = 0;
        JsonObject weightMap = new JsonObject();
        for (int s = 0; s < shards; s++) {
            String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
            List<TensorSpec> part =
                    all.subList(s * all.size() / shards, (s + 1) * all.size() / shards);
            total += writeSafetensors(dir.resolve(file), part);
            for (TensorSpec t : part) {
                weightMap.addProperty(t.getFileKey(), file);
            }
        }
        JsonObject meta = new JsonObject();
        meta.addProperty("total_size", total);
        JsonObject index = new JsonObject();
        index.add("metadata", meta);
        index.add("weight_map", weightMap);
        Files.writeString(dir.resolve("model.safetensors.index.json"), index.toString());
        return dir;
    }

    private void copyFiles(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String f : getFiles()) {
            Path target = dir.resolve(f);
            Files.createDirectories(target.getParent());
            Files.write(target, readResource(arch + "/" + f));
        }
    }

    /** Writes a safetensors file; returns the number of data bytes. */
    private long writeSafetensors(Path file, List<TensorSpec> specs) throws IOException {
        JsonObject header = new JsonObject();
        JsonObject meta = new JsonObject();
        meta.addProperty("format", "pt");
        header.add("__metadata__", meta);
        Map<TensorSpec, Long> begin = new LinkedHashMap<>();
        long offset = 0;
        for (TensorSpec t : specs) {
            long bytes = (long) t.size() * ("I64".equals(t.getDtype()) ? 8 : 4);
            JsonObject o = new JsonObject();
            o.addProperty("dtype", t.getDtype());
            JsonArray shape = new JsonArray();
            for (long d : t.getShape()) {
                shape.add(d);
            }
            o.add("shape", shape);
            JsonArray off = new JsonArray();
            off.add(offset);
            off.add(offset + bytes);
            o.add("data_offsets", off);
            if (header.has(t.getFileKey())) {
                throw new IllegalStateException("duplicate tensor name " + t.getFileKey());
            }
            header.add(t.getFileKey(), o);
            begin.put(t, offset);
            offset += bytes;
        }
        StringBuilder json = new StringBuilder(header.toString());
        while (json.toString().getBytes(StandardCharsets.UTF_8).length % 8 != 0) {
            json.append(' ');
        }
        byte[] headerBytes = json.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream os = Files.newOutputStream(file)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            len.putLong(headerBytes.length);
            os.write(len.array());
            os.write(headerBytes);
            for (TensorSpec t : specs) {
                os.write(bytesOf(t));
            }
        }
        return offset;
    }
}
