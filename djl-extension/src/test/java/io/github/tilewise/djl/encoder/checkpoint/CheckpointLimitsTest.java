package io.github.tilewise.djl.encoder.checkpoint;

import static io.github.tilewise.djl.encoder.checkpoint.Hostile.assertMalformed;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonParser;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The shared checks every checkpoint reader derives its sizes through. */
class CheckpointLimitsTest {

    private static final Path FILE = Path.of("f.bin");

    @Test
    void elementCountIsExactAndBounded() throws Exception {
        assertEquals(24, CheckpointLimits.elementCount(FILE, "t", "dims", new long[] {2, 3, 4}));
        assertEquals(1, CheckpointLimits.elementCount(FILE, "t", "dims", new long[0]));
        // A zero dimension empties the tensor, but a huge dimension after it is still refused.
        assertEquals(0, CheckpointLimits.elementCount(FILE, "t", "dims", new long[] {0, 5}));
        assertMalformed(
                () -> CheckpointLimits.elementCount(FILE, "t", "dims", new long[] {0, 1L << 40}),
                "f.bin",
                "tensor t",
                "dims");
        assertMalformed(
                () ->
                        CheckpointLimits.elementCount(
                                FILE, "t", "dims", new long[] {1L << 16, 1L << 16}),
                "more than");
        assertMalformed(
                () -> CheckpointLimits.elementCount(FILE, "t", "dims", new long[] {3, -1}), "-1");
    }

    @Test
    void jsonIntegersAreExact() throws Exception {
        assertEquals(7, CheckpointLimits.jsonLong(FILE, "k", JsonParser.parseString("7")));
        assertEquals(7, CheckpointLimits.jsonLong(FILE, "k", JsonParser.parseString("7.0")));
        assertEquals(
                Long.MAX_VALUE,
                CheckpointLimits.jsonLong(
                        FILE, "k", JsonParser.parseString("9223372036854775807")));
        for (String bad :
                new String[] {
                    "7.5",
                    "\"7\"",
                    "true",
                    "[7]",
                    "null",
                    "9223372036854775808",
                    "1e999999999",
                    "1e-999999999",
                    "1" + "0".repeat(100)
                }) {
            assertMalformed(
                    () -> CheckpointLimits.jsonLong(FILE, "k", JsonParser.parseString(bad)),
                    "f.bin",
                    "k");
        }
    }
}
