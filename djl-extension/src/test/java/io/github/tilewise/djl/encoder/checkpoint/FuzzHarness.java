package io.github.tilewise.djl.encoder.checkpoint;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A seeded random-mutation fuzzing loop: each iteration writes a mutant of a target's seed files,
 * parses them with the real reader on a worker thread, and classifies the outcome. Success and the
 * target's documented exceptions (whose message names the file) pass; any other throwable (an
 * {@code OutOfMemoryError}, an index or arithmetic error, a {@code StackOverflowError}) or a parse
 * over {@link #TIME_LIMIT_SECONDS} is a crash, kept with its seed and mutant under {@code
 * target/fuzz-crashes/} for replay.
 */
final class FuzzHarness {

    /** A parse taking longer than this is a hang. */
    static final long TIME_LIMIT_SECONDS = 10;

    /** One parser under test. */
    interface Target {
        /** The target's name, for reports. */
        String name();

        /** The files of one mutant, by file name, derived from the seed files with {@code r}. */
        Map<String, byte[]> mutant(Random r) throws Exception;

        /** Parses the files written into {@code dir}, as a user's load would. */
        void parse(Path dir) throws Exception;

        /**
         * Whether {@code t} is one of the exceptions the parser documents, naming the file (a path
         * in {@code dir}).
         */
        boolean documented(Throwable t, Path dir);
    }

    private final Path work;
    private final Path crashDir;
    private final Map<String, Map<String, Integer>> outcomes = new TreeMap<>();
    private final List<String> crashes = new ArrayList<>();
    private ExecutorService worker = newWorker();

    FuzzHarness(Path work, Path crashDir) {
        this.work = work;
        this.crashDir = crashDir;
    }

    /**
     * Runs {@code iterations} mutants, cycling through the targets.
     *
     * @param baseSeed iteration {@code i} uses {@code new Random(baseSeed + i)}: replayable
     */
    void run(List<Target> targets, long baseSeed, int iterations) throws Exception {
        for (int i = 0; i < iterations; i++) {
            Target t = targets.get(i % targets.size());
            long seed = baseSeed + i;
            Map<String, byte[]> files = t.mutant(new Random(seed));
            // A directory per target, so no target sees another's files.
            Path dir = Files.createDirectories(work.resolve(t.name()));
            for (Map.Entry<String, byte[]> f : files.entrySet()) {
                Files.write(dir.resolve(f.getKey()), f.getValue());
            }
            String outcome = parse(t, seed, files, dir);
            outcomes.computeIfAbsent(t.name(), k -> new TreeMap<>())
                    .merge(outcome, 1, Integer::sum);
        }
        worker.shutdownNow();
    }

    private String parse(Target t, long seed, Map<String, byte[]> files, Path dir)
            throws IOException {
        Future<?> f =
                worker.submit(
                        () -> {
                            t.parse(dir);
                            return null;
                        });
        try {
            f.get(TIME_LIMIT_SECONDS, TimeUnit.SECONDS);
            return "ok";
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (t.documented(c, dir)) {
                return c.getClass().getSimpleName();
            }
            crash(t, seed, files, c);
            return "CRASH " + c.getClass().getSimpleName();
        } catch (TimeoutException e) {
            // The stuck thread is abandoned (a daemon); later mutants get a fresh one.
            f.cancel(true);
            worker = newWorker();
            crash(t, seed, files, e);
            return "HANG";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    private void crash(Target t, long seed, Map<String, byte[]> files, Throwable c)
            throws IOException {
        Path dir = crashDir.resolve(t.name() + "-" + seed);
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> f : files.entrySet()) {
            Files.write(dir.resolve(f.getKey()), f.getValue());
        }
        StringWriter trace = new StringWriter();
        c.printStackTrace(new PrintWriter(trace));
        Files.writeString(dir.resolve("stacktrace.txt"), trace.toString());
        String firstFrame = c.getStackTrace().length > 0 ? " at " + c.getStackTrace()[0] : "";
        crashes.add(
                t.name() + " seed " + seed + ": " + c + firstFrame + " (mutant in " + dir + ")");
    }

    /** The crashes found, one line each with the seed and where the mutant was kept. */
    List<String> crashes() {
        return crashes;
    }

    /** Counts of each outcome per target. */
    Map<String, Map<String, Integer>> outcomes() {
        return new LinkedHashMap<>(outcomes);
    }

    private static ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(
                r -> {
                    Thread th = new Thread(r, "fuzz-parse");
                    th.setDaemon(true);
                    return th;
                });
    }
}
