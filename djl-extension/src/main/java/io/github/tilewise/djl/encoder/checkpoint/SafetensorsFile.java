package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and writes the safetensors format: an 8-byte little-endian header length {@code N}, a JSON
 * header of {@code N} bytes mapping each tensor name to {@code dtype}, {@code shape} and {@code
 * data_offsets [begin, end)} (relative to the end of the header), then the raw little-endian data.
 *
 * <p>F32, F16 and BF16 tensors are read (widened to fp32); tensors of other known types (integer
 * buffers such as {@code position_ids}) are validated and skipped; an unknown type is an error.
 */
public final class SafetensorsFile {

    /** The file name Hugging Face uses for a single-file checkpoint. */
    public static final String DEFAULT_NAME = "model.safetensors";

    /** Headers larger than this are refused as corrupt (the format's own limit is 100 MB). */
    private static final long MAX_HEADER_BYTES = 100L << 20;

    /** The bytes per element of every safetensors dtype; any other name is an error. */
    private static final Map<String, Integer> ELEMENT_SIZES =
            Map.ofEntries(
                    Map.entry("F64", 8),
                    Map.entry("F32", 4),
                    Map.entry("F16", 2),
                    Map.entry("BF16", 2),
                    Map.entry("F8_E4M3", 1),
                    Map.entry("F8_E5M2", 1),
                    Map.entry("F8_E8M0", 1),
                    Map.entry("I64", 8),
                    Map.entry("I32", 4),
                    Map.entry("I16", 2),
                    Map.entry("I8", 1),
                    Map.entry("U64", 8),
                    Map.entry("U32", 4),
                    Map.entry("U16", 2),
                    Map.entry("U8", 1),
                    Map.entry("BOOL", 1));

    private SafetensorsFile() {}

    /**
     * Reads every floating-point tensor of a file.
     *
     * <p>The whole header is validated before any tensor is read: each entry's {@code dtype},
     * {@code shape} and {@code data_offsets} must agree with each other and lie within the file,
     * and no two tensors may share bytes, so the memory used is bounded by the file's size.
     *
     * @param file the {@code .safetensors} file
     * @return the tensors by name, in file order
     * @throws IOException if the file is missing or unreadable
     * @throws MalformedModelException naming the file, the tensor and the field if it is truncated
     *     or its header is inconsistent
     */
    public static Map<String, CheckpointTensor> read(Path file)
            throws IOException, MalformedModelException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such safetensors file");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw bad(
                        file,
                        "the file has " + size + " bytes, less than the 8-byte header length");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, len, 0, file);
            long headerLength = len.getLong(0);
            // At least "{}"; compared by subtraction so a huge value cannot overflow.
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || headerLength > size - 8) {
                throw bad(
                        file,
                        "header length "
                                + headerLength
                                + " does not fit in the file's "
                                + size
                                + " bytes (truncated or not a safetensors file)");
            }
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
            readFully(ch, headerBytes, 8, file);
            JsonObject header;
            try {
                header =
                        JsonParser.parseString(
                                        new String(headerBytes.array(), StandardCharsets.UTF_8))
                                .getAsJsonObject();
            } catch (JsonParseException | IllegalStateException e) {
                throw bad(
                        file,
                        "the header is not a JSON object: "
                                + CheckpointLimits.abbreviate(e.getMessage()));
            }
            long dataStart = 8 + headerLength;
            List<Entry> entries = new ArrayList<>();
            for (Map.Entry<String, JsonElement> e : header.entrySet()) {
                if (!"__metadata__".equals(e.getKey())) {
                    entries.add(entry(file, e.getKey(), e.getValue(), size - dataStart));
                }
            }
            checkDisjoint(file, entries);
            Map<String, CheckpointTensor> out = new LinkedHashMap<>();
            for (Entry e : entries) {
                if (isFloat(e.dtype)) {
                    out.put(e.name, readTensor(file, ch, dataStart, e));
                }
            }
            return out;
        }
    }

    /** One validated header entry: its bytes are {@code [begin, end)} after the header. */
    private record Entry(String name, String dtype, long[] shape, long begin, long end) {}

    private static Entry entry(Path file, String name, JsonElement json, long dataSize)
            throws MalformedModelException {
        if (!json.isJsonObject()) {
            throw badEntry(file, name, "the entry", json);
        }
        JsonObject o = json.getAsJsonObject();
        JsonElement dtypeJson = o.get("dtype");
        if (dtypeJson == null || !dtypeJson.isJsonPrimitive()) {
            throw badEntry(file, name, "dtype", dtypeJson);
        }
        String dtype = dtypeJson.getAsString();
        Integer elementSize = ELEMENT_SIZES.get(dtype);
        if (elementSize == null) {
            throw badEntry(file, name, "dtype (unknown type)", dtypeJson);
        }
        JsonElement shapeJson = o.get("shape");
        if (shapeJson == null
                || !shapeJson.isJsonArray()
                || shapeJson.getAsJsonArray().size() > CheckpointLimits.MAX_RANK) {
            throw badEntry(file, name, "shape", shapeJson);
        }
        JsonArray s = shapeJson.getAsJsonArray();
        long[] shape = new long[s.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = CheckpointLimits.jsonLong(file, "tensor " + name + ": shape", s.get(i));
        }
        JsonElement offsetsJson = o.get("data_offsets");
        if (offsetsJson == null
                || !offsetsJson.isJsonArray()
                || offsetsJson.getAsJsonArray().size() != 2) {
            throw badEntry(file, name, "data_offsets", offsetsJson);
        }
        JsonArray off = offsetsJson.getAsJsonArray();
        String field = "tensor " + name + ": data_offsets";
        long begin = CheckpointLimits.jsonLong(file, field, off.get(0));
        long end = CheckpointLimits.jsonLong(file, field, off.get(1));
        if (begin < 0 || end < begin || end > dataSize) {
            throw bad(
                    file,
                    field
                            + " ["
                            + begin
                            + ", "
                            + end
                            + ") are not a range within the "
                            + dataSize
                            + " data bytes (truncated or corrupt)");
        }
        long count = CheckpointLimits.elementCount(file, name, "shape", shape);
        long bytes = CheckpointLimits.multiply(file, name, "shape", count, elementSize);
        CheckpointLimits.checkStored(file, name, "data_offsets (bytes)", end - begin, bytes);
        return new Entry(name, dtype, shape, begin, end);
    }

    /** Refuses tensors sharing bytes: aliased ranges would let a small file expand without end. */
    private static void checkDisjoint(Path file, List<Entry> entries)
            throws MalformedModelException {
        List<Entry> sorted = new ArrayList<>();
        for (Entry e : entries) {
            if (e.end > e.begin) {
                sorted.add(e);
            }
        }
        sorted.sort(Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < sorted.size(); i++) {
            Entry a = sorted.get(i - 1);
            Entry b = sorted.get(i);
            if (b.begin < a.end) {
                throw bad(
                        file,
                        "tensors "
                                + CheckpointLimits.abbreviate(a.name)
                                + " and "
                                + CheckpointLimits.abbreviate(b.name)
                                + " have overlapping data_offsets ["
                                + a.begin
                                + ", "
                                + a.end
                                + ") and ["
                                + b.begin
                                + ", "
                                + b.end
                                + ")");
            }
        }
    }

    private static boolean isFloat(String dtype) {
        // Other types (integer buffers such as position_ids) are not weights.
        return "F32".equals(dtype) || "F16".equals(dtype) || "BF16".equals(dtype);
    }

    private static CheckpointTensor readTensor(Path file, FileChannel ch, long dataStart, Entry e)
            throws IOException, MalformedModelException {
        ByteBuffer raw =
                ByteBuffer.allocate((int) (e.end - e.begin)).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, raw, dataStart + e.begin, file);
        raw.flip();
        float[] data = new float[raw.remaining() / ELEMENT_SIZES.get(e.dtype)];
        if ("F32".equals(e.dtype)) {
            raw.asFloatBuffer().get(data);
        } else {
            boolean bf16 = "BF16".equals(e.dtype);
            for (int i = 0; i < data.length; i++) {
                short h = raw.getShort(2 * i);
                data[i] = bf16 ? HalfFloats.bf16ToFloat(h) : HalfFloats.fp16ToFloat(h);
            }
        }
        return new CheckpointTensor(e.name, e.shape, data);
    }

    /**
     * Writes fp32 tensors as a safetensors file.
     *
     * @param file the file to create or replace
     * @param tensors the tensors (their names must be unique)
     * @throws IOException if writing fails
     */
    public static void write(Path file, Collection<CheckpointTensor> tensors) throws IOException {
        JsonObject header = new JsonObject();
        long offset = 0;
        for (CheckpointTensor t : tensors) {
            JsonObject o = new JsonObject();
            o.addProperty("dtype", "F32");
            JsonArray shape = new JsonArray();
            for (long d : t.getShape()) {
                shape.add(d);
            }
            o.add("shape", shape);
            JsonArray off = new JsonArray();
            off.add(offset);
            offset += 4L * t.getData().length;
            off.add(offset);
            o.add("data_offsets", off);
            if (header.has(t.getName())) {
                throw new IllegalArgumentException("duplicate tensor name " + t.getName());
            }
            header.add(t.getName(), o);
        }
        StringBuilder json = new StringBuilder(header.toString());
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer
        // does.
        while ((json.toString().getBytes(StandardCharsets.UTF_8).length) % 8 != 0) {
            json.append(' ');
        }
        byte[] headerBytes = json.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream os = Files.newOutputStream(file)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            len.putLong(headerBytes.length);
            os.write(len.array());
            os.write(headerBytes);
            for (CheckpointTensor t : tensors) {
                ByteBuffer buf =
                        ByteBuffer.allocate(4 * t.getData().length).order(ByteOrder.LITTLE_ENDIAN);
                buf.asFloatBuffer().put(t.getData());
                os.write(buf.array());
            }
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position, Path file)
            throws IOException, MalformedModelException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                throw bad(file, "unexpected end of file at byte " + pos + " (truncated)");
            }
            pos += n;
        }
    }

    private static MalformedModelException badEntry(
            Path file, String name, String field, JsonElement value) {
        return bad(
                file,
                "tensor "
                        + CheckpointLimits.abbreviate(name)
                        + ": "
                        + field
                        + " is missing or malformed: "
                        + CheckpointLimits.abbreviate(value));
    }

    private static MalformedModelException bad(Path file, String problem) {
        return new MalformedModelException(file + ": " + problem);
    }
}
