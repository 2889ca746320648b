package io.github.tilewise.it.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

/**
 * Peak extra resident memory of one call, from Linux's own accounting of this process.
 *
 * <p>Method: read the resident set size {@code VmRSS} from {@code /proc/self/status} just before
 * the call, reset the peak {@code VmHWM} to it by writing {@code 5} to {@code
 * /proc/self/clear_refs} (Linux 4.0+), run the call, then read {@code VmHWM}: the difference is the
 * most memory the call added at any instant, native (PyTorch, ONNX Runtime, Tilewise) and Java
 * alike, including its output. Memory the allocator kept from earlier calls and reuses is not
 * counted, so callers measure a case's first call.
 */
public final class PeakMemory {

    private static final Path STATUS = Paths.get("/proc/self/status");
    private static final Path CLEAR_REFS = Paths.get("/proc/self/clear_refs");

    private PeakMemory() {}

    /**
     * Returns whether this system supports the measurement.
     *
     * @return true on Linux with a writable {@code /proc/self/clear_refs}
     */
    public static boolean isSupported() {
        return Files.isReadable(STATUS) && Files.isWritable(CLEAR_REFS);
    }

    /**
     * Runs the call and returns the peak resident memory it added, in bytes (-1 if unsupported).
     *
     * @param call the call
     * @return peak extra bytes
     */
    public static long measure(Runnable call) {
        if (!isSupported()) {
            call.run();
            return -1;
        }
        long before = readKb("VmRSS:");
        try {
            Files.write(CLEAR_REFS, "5".getBytes(StandardCharsets.US_ASCII));
        } catch (IOException e) {
            call.run();
            return -1;
        }
        call.run();
        return Math.max(0, readKb("VmHWM:") - before) * 1024;
    }

    /**
     * Returns the current resident set size in bytes (-1 if unknown).
     *
     * @return bytes
     */
    public static long residentBytes() {
        return Files.isReadable(STATUS) ? readKb("VmRSS:") * 1024 : -1;
    }

    /**
     * Returns the memory the kernel reports as available for new allocations, in bytes.
     *
     * @return bytes, or {@link Long#MAX_VALUE} if unknown
     */
    public static long availableBytes() {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // fall through
        }
        return Long.MAX_VALUE;
    }

    private static long readKb(String key) {
        try {
            List<String> lines = Files.readAllLines(STATUS);
            for (String line : lines) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.substring(key.length()).replace("kB", "").trim());
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + STATUS, e);
        }
        throw new IllegalStateException(key + " missing from " + STATUS);
    }
}
