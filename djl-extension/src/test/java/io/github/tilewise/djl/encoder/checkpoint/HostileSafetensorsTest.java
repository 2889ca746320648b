package io.github.tilewise.djl.encoder.checkpoint;

import static io.github.tilewise.djl.encoder.checkpoint.Hostile.assertMalformed;
import static io.github.tilewise.djl.encoder.checkpoint.TinyCheckpoints.entry;
import static io.github.tilewise.djl.encoder.checkpoint.TinyCheckpoints.safetensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crafted safetensors files: header lengths, offsets, shapes and dtypes that disagree with each
 * other or with the file, and tensors aliasing the same bytes; each must fail with a {@code
 * MalformedModelException} naming the file, the tensor and the field, before any tensor is read.
 */
class HostileSafetensorsTest {

    @TempDir Path dir;

    private Path write(String header, int dataBytes) throws Exception {
        Path file = dir.resolve("hostile.safetensors");
        Files.write(file, safetensors(header, new byte[dataBytes]));
        return file;
    }

    @Test
    void aliasedRangesCannotExpandAFile() throws Exception {
        // 1000 entries over the same 4 KiB would read as 4 MB; over a few MB, as tens of GB.
        StringBuilder h = new StringBuilder("{");
        for (int i = 0; i < 1000; i++) {
            h.append(i == 0 ? "" : ",").append(entry("t" + i, "F32", "[1024]", 0, 4096));
        }
        Path file = write(h.append("}").toString(), 4096);
        assertMalformed(
                () -> SafetensorsFile.read(file),
                "hostile.safetensors",
                "overlapping",
                "data_offsets");
        // Partial overlap of two, and a non-float tensor aliasing a float one.
        Path partial =
                write(
                        "{"
                                + entry("a", "F32", "[4]", 0, 16)
                                + ","
                                + entry("b", "F32", "[4]", 8, 24)
                                + "}",
                        24);
        assertMalformed(() -> SafetensorsFile.read(partial), "overlapping", "a", "b");
        Path mixed =
                write(
                        "{"
                                + entry("a", "F32", "[2]", 0, 8)
                                + ","
                                + entry("ids", "I64", "[1]", 0, 8)
                                + "}",
                        8);
        assertMalformed(() -> SafetensorsFile.read(mixed), "overlapping", "ids");
    }

    @Test
    void shapeWhoseByteCountOverflowsIsRefused() throws Exception {
        // 2^32 · 2^32 · 4 bytes wraps to 0 and would "match" empty offsets.
        Path file = write("{" + entry("w", "F32", "[4294967296,4294967296]", 0, 0) + "}", 0);
        assertMalformed(() -> SafetensorsFile.read(file), "hostile.safetensors", "w", "shape");
        Path rank = write("{" + entry("w", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) + "}", 4);
        assertMalformed(() -> SafetensorsFile.read(rank), "w", "shape");
    }

    @Test
    void offsetsOutOfRangeOrReversedAreRefused() throws Exception {
        Path reversed = write("{" + entry("w", "F32", "[1]", 8, 4) + "}", 8);
        assertMalformed(() -> SafetensorsFile.read(reversed), "w", "data_offsets");
        Path beyond =
                write(
                        "{"
                                + entry(
                                        "w",
                                        "F32",
                                        "[1]",
                                        9223372036854775803L,
                                        9223372036854775807L)
                                + "}",
                        8);
        assertMalformed(() -> SafetensorsFile.read(beyond), "w", "data_offsets");
        Path negative = write("{" + entry("w", "F32", "[1]", -4, 0) + "}", 8);
        assertMalformed(() -> SafetensorsFile.read(negative), "w", "data_offsets");
        Path mismatch = write("{" + entry("w", "F32", "[3]", 0, 8) + "}", 8);
        assertMalformed(() -> SafetensorsFile.read(mismatch), "w", "data_offsets");
    }

    @Test
    void offsetsThatAreNotExactIntegersAreRefused() throws Exception {
        // Gson's getAsLong would truncate 1.5 and wrap 2^64 + 4 to 4.
        Path fraction =
                write("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 8);
        assertMalformed(() -> SafetensorsFile.read(fraction), "w", "data_offsets");
        Path wrapped =
                write(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551620]}}",
                        8);
        assertMalformed(() -> SafetensorsFile.read(wrapped), "w", "data_offsets");
        Path dims =
                write("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8);
        assertMalformed(() -> SafetensorsFile.read(dims), "w", "shape");
    }

    @Test
    void unknownDtypeIsNamed() throws Exception {
        Path file = write("{" + entry("w", "F17", "[1]", 0, 4) + "}", 4);
        assertMalformed(
                () -> SafetensorsFile.read(file), "hostile.safetensors", "w", "dtype", "F17");
    }

    @Test
    void headerLengthAndJsonAreChecked() throws Exception {
        Path file = dir.resolve("hostile.safetensors");
        byte[] huge =
                ByteBuffer.allocate(16)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .putLong(Long.MAX_VALUE)
                        .array();
        Files.write(file, huge);
        assertMalformed(() -> SafetensorsFile.read(file), "hostile.safetensors", "header length");
        Path notJson = write("{\"w\": [1, 2", 0);
        assertMalformed(() -> SafetensorsFile.read(notJson), "hostile.safetensors", "JSON");
        Path entryNotObject = write("{\"w\": [1, 2]}", 0);
        assertMalformed(() -> SafetensorsFile.read(entryNotObject), "w");
        Path deep = write("[".repeat(100_000), 0);
        assertMalformed(() -> SafetensorsFile.read(deep), "hostile.safetensors");
    }
}
