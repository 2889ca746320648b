package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes {@code tokenizer.json} loading and wordpiece tokenization with seeded random mutants of a
 * tiny tokenizer and of TinyBERT's: every outcome must be success or a documented exception ({@link
 * IllegalArgumentException}, {@link IOException}) naming the file; anything else, or a load plus
 * tokenization over 10 s, fails with the seed and the mutant (kept under {@code
 * target/fuzz-crashes/}).
 *
 * <p>{@code tilewise.fuzz.iterations} (default 1,000; {@code -Pfuzz}: 25,000) and {@code
 * tilewise.fuzz.seed} set the run; see docs/RELIABILITY.md for the commands.
 */
class TokenizerFuzzTest {

    private static final long TIME_LIMIT_SECONDS = 10;

    @TempDir Path work;

    @Test
    void mutantsLoadAndTokenizeOrFailWithADocumentedException() throws Exception {
        int iterations = Integer.getInteger("tilewise.fuzz.iterations", 1000);
        long base = Long.getLong("tilewise.fuzz.seed", 13);
        List<byte[]> seeds =
                List.of(
                        TinyTokenizers.tokenizer(100, List.of("a", "##a", "b", "##bc", "abc"))
                                .toString()
                                .getBytes(StandardCharsets.UTF_8),
                        Files.readAllBytes(TestModels.tinyBertTokenizer()));
        Path file = work.resolve("tokenizer.json");
        Map<String, Integer> outcomes = new TreeMap<>();
        List<String> crashes = new ArrayList<>();
        ExecutorService worker = Executors.newSingleThreadExecutor(daemon());
        long start = System.nanoTime();
        for (int i = 0; i < iterations; i++) {
            long seed = base + i;
            Random r = new Random(seed);
            byte[] seedFile = seeds.get(r.nextInt(seeds.size()));
            byte[] mutant =
                    r.nextBoolean() ? mutateField(seedFile, r) : new Mutator(r).mutate(seedFile);
            Files.write(file, mutant);
            Future<?> f = worker.submit(() -> loadAndTokenize(file));
            String outcome;
            try {
                f.get(TIME_LIMIT_SECONDS, TimeUnit.SECONDS);
                outcome = "ok";
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                boolean documented =
                        (c instanceof IllegalArgumentException || c instanceof IOException)
                                && String.valueOf(c.getMessage()).contains(file.toString());
                outcome = (documented ? "" : "CRASH ") + c.getClass().getSimpleName();
                if (!documented) {
                    StackTraceElement[] at = c.getStackTrace();
                    crashes.add(keep(seed, mutant, c + (at.length > 0 ? " at " + at[0] : "")));
                }
            } catch (TimeoutException e) {
                f.cancel(true);
                worker = Executors.newSingleThreadExecutor(daemon());
                outcome = "HANG";
                crashes.add(keep(seed, mutant, "over " + TIME_LIMIT_SECONDS + " s"));
            }
            outcomes.merge(outcome, 1, Integer::sum);
        }
        worker.shutdownNow();
        String summary =
                String.format(
                        "tokenizer fuzz: %d iterations from seed %d in %.1f s, %d crashes%n%s%n%s",
                        iterations,
                        base,
                        (System.nanoTime() - start) / 1e9,
                        crashes.size(),
                        outcomes,
                        String.join("\n", crashes));
        System.out.println(summary);
        Files.createDirectories(Path.of("target"));
        Files.writeString(Path.of("target", "fuzz-summary-" + base + ".txt"), summary);
        assertTrue(crashes.isEmpty(), summary);
    }

    /** What the extractor does with a tokenizer: load it, split texts, write their ids. */
    private static Void loadAndTokenize(Path file) throws IOException {
        WordpieceVocabulary v = WordpieceVocabulary.load(file);
        for (String text :
                List.of(
                        "Hello, world! abc ABC",
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                        "é ü ß 中文")) {
            List<String> pieces = v.tokenize(text);
            v.writeIds(pieces, new long[pieces.size() + 2], 0);
        }
        v.tokenize("ab".repeat(5_000));
        return null;
    }

    /** Sets one field of the model, normalizer or post-processor to a boundary or wrong value. */
    private static byte[] mutateField(byte[] seed, Random r) {
        JsonObject root =
                JsonParser.parseString(new String(seed, StandardCharsets.UTF_8)).getAsJsonObject();
        String section = new String[] {"model", "normalizer", "post_processor"}[r.nextInt(3)];
        JsonObject o = root.getAsJsonObject(section);
        List<String> keys = new ArrayList<>(o.keySet());
        String key = keys.get(r.nextInt(keys.size()));
        if (key.equals("vocab") && r.nextBoolean()) {
            // One vocabulary id or token changed.
            JsonObject vocab = o.getAsJsonObject("vocab");
            List<String> tokens = new ArrayList<>(vocab.keySet());
            String token = tokens.get(r.nextInt(tokens.size()));
            JsonElement id = vocab.remove(token);
            if (r.nextBoolean()) {
                vocab.addProperty(token, new Mutator(r).interesting());
            } else {
                vocab.add(token.repeat(1 + r.nextInt(200)), id);
            }
        } else {
            Object[] values = {
                new Mutator(r).interesting(), "x", new JsonArray(), new JsonObject()
            };
            Object v = values[r.nextInt(values.length)];
            if (v instanceof JsonElement) {
                o.add(key, (JsonElement) v);
            } else if (v instanceof Long) {
                o.addProperty(key, (Long) v);
            } else {
                o.addProperty(key, (String) v);
            }
        }
        return root.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static String keep(long seed, byte[] mutant, String what) throws IOException {
        Path dir = Files.createDirectories(Path.of("target", "fuzz-crashes"));
        Path kept = dir.resolve("tokenizer-" + seed + ".json");
        Files.write(kept, mutant);
        return "seed " + seed + ": " + what + " (mutant in " + kept + ")";
    }

    private static java.util.concurrent.ThreadFactory daemon() {
        return r -> {
            Thread t = new Thread(r, "fuzz-tokenize");
            t.setDaemon(true);
            return t;
        };
    }
}
