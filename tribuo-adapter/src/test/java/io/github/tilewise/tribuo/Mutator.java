package io.github.tilewise.tribuo;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;

/**
 * Seeded random mutations of a file's bytes, for the parser fuzzer: bit flips, byte insertion and
 * deletion, truncation, duplicated chunks, and integer-field mutations (decimal numbers in JSON
 * text, protobuf varints, 8-byte little-endian lengths) set to 0, -1, the int and long limits, or
 * values just past them.
 *
 * <p>The same as djl-extension's test {@code Mutator}: test classes are not shared between modules.
 */
final class Mutator {

    /** Integers that sit on the boundaries parsers get wrong. */
    static final long[] INTERESTING = {
        0,
        -1,
        1,
        2,
        255,
        65536,
        Integer.MAX_VALUE - 8,
        Integer.MAX_VALUE,
        1L << 31,
        1L << 32,
        (1L << 32) + 2,
        1L << 62,
        Long.MAX_VALUE,
        Long.MIN_VALUE
    };

    /** Decimal texts beyond what a {@code long} or an exact integer holds. */
    private static final String[] NUMBER_TEXTS = {
        "18446744073709551618", "1e30", "1.5", "-0", "1e-400", "99999999999999999999999999999"
    };

    private final Random r;

    Mutator(Random r) {
        this.r = r;
    }

    /** An interesting integer, or sometimes a random one. */
    long interesting() {
        return r.nextInt(4) == 0
                ? r.nextLong() >> r.nextInt(64)
                : INTERESTING[r.nextInt(INTERESTING.length)];
    }

    /** Applies one to four random mutations. */
    byte[] mutate(byte[] seed) {
        byte[] b = seed;
        int n = 1 + r.nextInt(4);
        for (int i = 0; i < n; i++) {
            b = once(b);
        }
        return b;
    }

    private byte[] once(byte[] b) {
        if (b.length == 0) {
            return new byte[] {(byte) r.nextInt()};
        }
        int at = r.nextInt(b.length);
        switch (r.nextInt(9)) {
            case 0: // flip 1..8 bits
                b = b.clone();
                for (int k = 1 + r.nextInt(8); k > 0; k--) {
                    int p = r.nextInt(b.length);
                    b[p] ^= (byte) (1 << r.nextInt(8));
                }
                return b;
            case 1: // a boundary byte
                b = b.clone();
                b[at] = new byte[] {0, -1, 0x7f, (byte) 0x80, 1}[r.nextInt(5)];
                return b;
            case 2: // insert random bytes
                byte[] extra = new byte[1 + r.nextInt(16)];
                r.nextBytes(extra);
                return splice(b, at, at, extra);
            case 3: // delete a range
                return splice(b, at, Math.min(b.length, at + 1 + r.nextInt(64)), new byte[0]);
            case 4: // truncate
                return Arrays.copyOf(b, at);
            case 5: // duplicate a chunk elsewhere
                int from = r.nextInt(b.length);
                int len = Math.min(b.length - from, 1 + r.nextInt(256));
                return splice(b, at, at, Arrays.copyOfRange(b, from, from + len));
            case 6:
                return mutateNumberText(b, at);
            case 7: // a protobuf varint over the bytes at `at`
                byte[] v = varint(interesting());
                return splice(b, at, Math.min(b.length, at + v.length), v);
            default: // an 8-byte little-endian integer (safetensors' header length and the like)
                byte[] l =
                        ByteBuffer.allocate(8)
                                .order(ByteOrder.LITTLE_ENDIAN)
                                .putLong(interesting())
                                .array();
                int p = r.nextBoolean() ? 0 : at;
                return splice(b, p, Math.min(b.length, p + 8), l);
        }
    }

    /** Replaces the decimal number nearest after {@code at} with an interesting one. */
    private byte[] mutateNumberText(byte[] b, int at) {
        int start = at;
        while (start < b.length && !Character.isDigit(b[start])) {
            start++;
        }
        if (start == b.length) {
            return b;
        }
        int end = start;
        while (end < b.length && (Character.isDigit(b[end]) || b[end] == '.')) {
            end++;
        }
        if (start > 0 && b[start - 1] == '-') {
            start--;
        }
        String text =
                r.nextInt(3) == 0
                        ? NUMBER_TEXTS[r.nextInt(NUMBER_TEXTS.length)]
                        : Long.toString(interesting());
        return splice(b, start, end, text.getBytes(StandardCharsets.US_ASCII));
    }

    static byte[] varint(long v) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while ((v & ~0x7fL) != 0) {
            out.write((int) ((v & 0x7f) | 0x80));
            v >>>= 7;
        }
        out.write((int) v);
        return out.toByteArray();
    }

    private static byte[] splice(byte[] b, int from, int to, byte[] insert) {
        byte[] out = new byte[b.length - (to - from) + insert.length];
        System.arraycopy(b, 0, out, 0, from);
        System.arraycopy(insert, 0, out, from, insert.length);
        System.arraycopy(b, to, out, from + insert.length, b.length - to);
        return out;
    }
}
