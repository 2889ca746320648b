package io.github.tilewise.it.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.TimeUnit;

/**
 * The CPU's instruction peaks measured in the same run as a benchmark, so that "percent of peak"
 * compares figures taken minutes apart rather than days apart (these VMs drift by 10–15% within an
 * hour).
 *
 * <p>Runs the native build's {@code peak_bench} (register-only loops of {@code vfmadd231ps}, {@code
 * vpdpbusd}, ...; built by the {@code native} module into {@code native/target/cmake/peak_bench})
 * and echoes its machine-readable {@code peak instr=... gops=...} lines. The location can be set
 * with {@code -Dtilewise.peakBench=PATH}; where the program is missing a comment line says so and
 * the benchmark goes on.
 */
final class InstructionPeaks {

    private static final String DEFAULT_LOCATION = "../native/target/cmake/peak_bench";
    private static final long TIMEOUT_SECONDS = 60;

    private InstructionPeaks() {}

    /**
     * Measures and prints the peaks on {@code threads} threads.
     *
     * @param threads the benchmark's thread count
     */
    static void print(int threads) {
        Path program = Paths.get(System.getProperty("tilewise.peakBench", DEFAULT_LOCATION));
        if (!Files.isExecutable(program)) {
            System.out.println("# peak_bench not found at " + program + ": no peak lines");
            return;
        }
        ProcessBuilder builder =
                new ProcessBuilder(program.toString(), Integer.toString(threads))
                        .redirectErrorStream(true);
        try {
            Process process = builder.start();
            try (BufferedReader out =
                    new BufferedReader(
                            new InputStreamReader(
                                    process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = out.readLine()) != null) {
                    System.out.println(line);
                }
            }
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                System.out.println("# peak_bench did not finish in " + TIMEOUT_SECONDS + " s");
            }
        } catch (IOException e) {
            System.out.println("# peak_bench failed: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
