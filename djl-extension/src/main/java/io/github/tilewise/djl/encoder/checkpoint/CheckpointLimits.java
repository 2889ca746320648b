package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import com.google.gson.JsonElement;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The one place where numbers read from a checkpoint file (ONNX dims and data lengths, safetensors
 * shapes and offsets, {@code config.json} integers) are checked, before anything is allocated from
 * them.
 *
 * <p>A file is untrusted input: a 100-byte file may claim a tensor of billions of elements. Every
 * reader therefore derives sizes only through these methods, which use exact arithmetic and compare
 * what a file claims with the bytes it actually holds, so memory and time stay proportional to the
 * file's size. Each failure is a {@link MalformedModelException} naming the file, the tensor (or
 * entry) and the field.
 */
public final class CheckpointLimits {

    /** The largest rank of a tensor (encoder weights have rank 1 or 2; ONNX shapes up to 4). */
    public static final int MAX_RANK = 8;

    /** The largest element count of one tensor: what a Java array can hold. */
    public static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    private CheckpointLimits() {}

    /**
     * Returns the element count of a shape read from a file.
     *
     * @param file the file, for the message
     * @param tensor the tensor's name, for the message
     * @param field the field holding the shape ({@code dims}, {@code shape})
     * @param dims the shape
     * @return the product of the dimensions, at most {@link #MAX_ELEMENTS}
     * @throws MalformedModelException if the rank exceeds {@link #MAX_RANK}, a dimension is
     *     negative, or the product overflows or exceeds {@link #MAX_ELEMENTS}
     */
    public static long elementCount(Path file, String tensor, String field, long[] dims)
            throws MalformedModelException {
        if (dims.length > MAX_RANK) {
            throw bad(file, tensor, field, "rank " + dims.length + " exceeds " + MAX_RANK);
        }
        long count = 1;
        for (long d : dims) {
            if (d < 0 || d > MAX_ELEMENTS) {
                throw bad(file, tensor, field, Arrays.toString(dims) + " has dimension " + d);
            }
            // A zero dimension makes later ones irrelevant to the count, but each is still bounded.
            count = count == 0 ? 0 : multiply(file, tensor, field, count, d);
            if (count > MAX_ELEMENTS) {
                throw bad(
                        file,
                        tensor,
                        field,
                        Arrays.toString(dims) + " holds more than " + MAX_ELEMENTS + " elements");
            }
        }
        return count;
    }

    /**
     * Multiplies two non-negative sizes read from a file.
     *
     * @param file the file, for the message
     * @param tensor the tensor or entry, for the message
     * @param field the field, for the message
     * @param a a size
     * @param b a size
     * @return {@code a·b}
     * @throws MalformedModelException if the product overflows a {@code long}
     */
    public static long multiply(Path file, String tensor, String field, long a, long b)
            throws MalformedModelException {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw bad(file, tensor, field, a + " × " + b + " overflows a long");
        }
    }

    /**
     * Checks that a tensor's stored data holds exactly what its shape needs.
     *
     * @param file the file, for the message
     * @param tensor the tensor's name, for the message
     * @param field the field holding the data ({@code raw_data}, {@code float_data}, {@code
     *     data_offsets})
     * @param stored how many units (bytes or values) the file holds
     * @param needed how many the shape needs
     * @throws MalformedModelException if they differ
     */
    public static void checkStored(Path file, String tensor, String field, long stored, long needed)
            throws MalformedModelException {
        if (stored != needed) {
            throw bad(
                    file,
                    tensor,
                    field,
                    "holds "
                            + stored
                            + " but the shape needs "
                            + needed
                            + " (truncated, corrupt or inconsistent)");
        }
    }

    /**
     * Checks that a size read from a file lies in a range.
     *
     * @param file the file, for the message
     * @param field the field, for the message
     * @param value the value read
     * @param min the smallest allowed value
     * @param max the largest allowed value
     * @return the value as an {@code int}
     * @throws MalformedModelException if it is outside {@code [min, max]}
     */
    public static int inRange(Path file, String field, long value, int min, int max)
            throws MalformedModelException {
        if (value < min || value > max) {
            throw new MalformedModelException(
                    file + ": " + field + " = " + value + " is outside [" + min + ", " + max + "]");
        }
        return (int) value;
    }

    /**
     * Reads a JSON integer exactly: {@code 1.5}, {@code "7"}, {@code 1e30} or a value beyond a
     * {@code long} is an error, where Gson's {@code getAsLong} would round or wrap it.
     *
     * @param file the file, for the message
     * @param field the field, for the message
     * @param e the JSON value
     * @return the integer
     * @throws MalformedModelException if it is not an integer that fits a {@code long}
     */
    public static long jsonLong(Path file, String field, JsonElement e)
            throws MalformedModelException {
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new MalformedModelException(
                    file + ": " + field + " is not an integer: " + abbreviate(e));
        }
        String text = e.getAsString();
        try {
            // Length first: parsing a megabyte of digits would be slow, and cannot fit a long.
            if (text.length() > 40) {
                throw new ArithmeticException("length");
            }
            // BigDecimal parses JSON number syntax; a huge exponent is refused before expansion.
            BigDecimal d = new BigDecimal(text);
            if (Math.abs((long) d.scale()) > 64) {
                throw new ArithmeticException("exponent");
            }
            return d.longValueExact();
        } catch (ArithmeticException | NumberFormatException ex) {
            throw new MalformedModelException(
                    file + ": " + field + " is not an integer that fits a long: " + abbreviate(e));
        }
    }

    /**
     * Returns at most 80 characters of a JSON value, for messages about hostile files.
     *
     * @param e the value, or null
     * @return its text, shortened
     */
    static String abbreviate(Object e) {
        String s = String.valueOf(e);
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    private static MalformedModelException bad(
            Path file, String tensor, String field, String problem) {
        return new MalformedModelException(
                file + ": tensor " + abbreviate(tensor) + ": " + field + " " + problem);
    }
}
