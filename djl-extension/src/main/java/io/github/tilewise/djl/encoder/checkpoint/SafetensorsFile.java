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
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads and writes the safetensors format: an 8-byte little-endian header length {@code N}, a JSON
 * header of {@code N} bytes mapping each tensor name to {@code dtype}, {@code shape} and {@code
 * data_offsets [begin, end)} (relative to the end of the header), then the raw little-endian data.
 *
 * <p>F32, F16 and BF16 tensors are read (widened to fp32); tensors of other types (integer buffers
 * such as {@code position_ids}) are skipped.
 */
public final class SafetensorsFile {

    /** The file name Hugging Face uses for a single-file checkpoint. */
    public static final String DEFAULT_NAME = "model.safetensors";

    /** Headers larger than this are refused as corrupt (the format's own limit is 100 MB). */
    private static final long MAX_HEADER_BYTES = 100L << 20;

    private SafetensorsFile() {}

    /**
     * Reads every floating-point tensor of a file.
     *
     * @param file the {@code .safetensors} file
     * @return the tensors by name, in file order
     * @throws IOException if the file is missing or unreadable
     * @throws MalformedModelException naming the file and the problem if it is truncated or its
     *     header is inconsistent
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
            if (headerLength <= 0 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
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
                throw bad(file, "the header is not a JSON object: " + e.getMessage());
            }
            long dataStart = 8 + headerLength;
            Map<String, CheckpointTensor> out = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> e : header.entrySet()) {
                if ("__metadata__".equals(e.getKey())) {
                    continue;
                }
                CheckpointTensor t =
                        readTensor(file, ch, dataStart, size, e.getKey(), e.getValue());
                if (t != null) {
                    out.put(t.getName(), t);
                }
            }
            return out;
        }
    }

    private static CheckpointTensor readTensor(
            Path file, FileChannel ch, long dataStart, long fileSize, String name, JsonElement json)
            throws IOException, MalformedModelException {
        String dtype;
        long[] shape;
        long begin;
        long end;
        try {
            JsonObject o = json.getAsJsonObject();
            dtype = o.get("dtype").getAsString();
            JsonArray s = o.get("shape").getAsJsonArray();
            shape = new long[s.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = s.get(i).getAsLong();
            }
            JsonArray off = o.get("data_offsets").getAsJsonArray();
            begin = off.get(0).getAsLong();
            end = off.get(1).getAsLong();
        } catch (RuntimeException e) {
            throw bad(file, "tensor " + name + " has a malformed header entry: " + json);
        }
        int elementSize;
        switch (dtype) {
            case "F32":
                elementSize = 4;
                break;
            case "F16":
            case "BF16":
                elementSize = 2;
                break;
            default:
                return null; // integer buffers (position_ids) are not weights
        }
        long count = 1;
        for (long d : shape) {
            if (d < 0) {
                throw bad(file, "tensor " + name + " has a negative dimension");
            }
            count *= d;
        }
        if (begin < 0 || end < begin || end - begin != count * elementSize) {
            throw bad(
                    file,
                    "tensor "
                            + name
                            + " ("
                            + dtype
                            + Arrays.toString(shape)
                            + ") has data_offsets ["
                            + begin
                            + ", "
                            + end
                            + ") that do not match its size");
        }
        if (dataStart + end > fileSize) {
            throw bad(
                    file,
                    "tensor "
                            + name
                            + " ends at byte "
                            + (dataStart + end)
                            + " but the file has "
                            + fileSize
                            + " bytes (truncated)");
        }
        if (count > Integer.MAX_VALUE - 8) {
            throw bad(file, "tensor " + name + " is too large for a Java array");
        }
        ByteBuffer raw = ByteBuffer.allocate((int) (end - begin)).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, raw, dataStart + begin, file);
        raw.flip();
        float[] data = new float[(int) count];
        if ("F32".equals(dtype)) {
            raw.asFloatBuffer().get(data);
        } else {
            boolean bf16 = "BF16".equals(dtype);
            for (int i = 0; i < data.length; i++) {
                short h = raw.getShort(2 * i);
                data[i] = bf16 ? HalfFloats.bf16ToFloat(h) : HalfFloats.fp16ToFloat(h);
            }
        }
        return new CheckpointTensor(name, shape, data);
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

    private static MalformedModelException bad(Path file, String problem) {
        return new MalformedModelException(file + ": " + problem);
    }
}
