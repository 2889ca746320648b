package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.tribuo.util.tokens.impl.wordpiece.Wordpiece;

/**
 * Crafted {@code tokenizer.json} files: out-of-range or inexact numbers and values of the wrong
 * JSON type must be an {@code IllegalArgumentException} naming the file and the field; a long word
 * within the bounds must tokenize in linear time, with Tribuo's pieces.
 */
class HostileTokenizerTest {

    @TempDir Path dir;

    private Path write(JsonObject json) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, json.toString());
        return file;
    }

    private void assertRefused(JsonObject json, String... fragments) throws Exception {
        Path file = write(json);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> WordpieceVocabulary.load(file));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' not named in: " + e.getMessage());
        }
    }

    private static JsonObject model(JsonObject tokenizer) {
        return tokenizer.getAsJsonObject("model");
    }

    @Test
    void hugeOrInexactMaxInputCharsPerWordIsRefused() throws Exception {
        Object[] values = {
            1_000_000_000, 10_001, 0, -1, 1.5, new BigInteger("4294967396"), "100", "x"
        };
        for (Object v : values) {
            JsonObject t = TinyTokenizers.tokenizer(100, List.of("a", "##a"));
            model(t).add(
                            "max_input_chars_per_word",
                            v instanceof String
                                    ? new JsonPrimitive((String) v)
                                    : new JsonPrimitive((Number) v));
            assertRefused(t, "max_input_chars_per_word");
        }
    }

    /** A hang guard, not a measurement: Tribuo's cubic search takes minutes on this word. */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLongWordWithinTheBoundIsLinear() throws Exception {
        int n = WordpieceVocabulary.MAX_INPUT_CHARS_PER_WORD;
        WordpieceVocabulary v =
                WordpieceVocabulary.load(write(TinyTokenizers.tokenizer(n, List.of("a", "##a"))));
        List<String> pieces = v.tokenize("a".repeat(n));
        assertEquals(n, pieces.size());
        assertEquals("a", pieces.get(0));
        assertEquals(Collections.nCopies(n - 1, "##a"), pieces.subList(1, n));
        assertEquals(List.of("[UNK]"), v.tokenize("a".repeat(n + 1)));
    }

    @Test
    void vocabularyEntriesAreBounded() throws Exception {
        assertRefused(
                TinyTokenizers.tokenizer(100, List.of("x".repeat(101))),
                "model.vocab",
                "101 chars");
        for (Object id : new Object[] {-1, 1.5, new BigInteger("4294967297"), "7", 1 << 22}) {
            JsonObject t = TinyTokenizers.tokenizer(100, List.of("a"));
            model(t).getAsJsonObject("vocab")
                    .add(
                            "a",
                            id instanceof String
                                    ? new JsonPrimitive((String) id)
                                    : new JsonPrimitive((Number) id));
            assertRefused(t, "model.vocab", "'a'");
        }
    }

    @Test
    void valuesOfTheWrongJsonTypeAreNamed() throws Exception {
        JsonObject t = TinyTokenizers.tokenizer(100, List.of("a"));
        JsonArray objects = new JsonArray();
        objects.add(new JsonObject());
        t.getAsJsonObject("post_processor")
                .getAsJsonObject("special_tokens")
                .getAsJsonObject("[SEP]")
                .add("tokens", objects);
        assertRefused(t, "tokens");
        JsonObject array = TinyTokenizers.tokenizer(100, List.of("a"));
        model(array).add("max_input_chars_per_word", new JsonArray());
        assertRefused(array, "max_input_chars_per_word");
        Path notUtf8 = dir.resolve("tokenizer.json");
        Files.write(notUtf8, new byte[] {'{', (byte) 0xff, (byte) 0xfe, '}'});
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class, () -> WordpieceVocabulary.load(notUtf8));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }

    @Test
    void boundedWordpieceGivesTribuosPieces() throws Exception {
        Set<String> vocab =
                WordpieceVocabulary.load(TestModels.tinyBertTokenizer()).getIds().keySet();
        Wordpiece tribuo = new Wordpiece(vocab, "[UNK]", 100);
        Wordpiece bounded = new BoundedWordpiece(vocab, "[UNK]", 100);
        List<String> entries = new ArrayList<>(vocab);
        Random r = new Random(42);
        for (int i = 0; i < 20_000; i++) {
            // Words made of vocabulary entries (with or without ##), plus a stray character.
            StringBuilder w = new StringBuilder();
            for (int k = 1 + r.nextInt(6); k > 0; k--) {
                w.append(entries.get(r.nextInt(entries.size())).replace("##", ""));
            }
            if (r.nextInt(4) == 0) {
                w.insert(r.nextInt(w.length() + 1), (char) ('a' + r.nextInt(40)));
            }
            String word = w.length() > 120 ? w.substring(0, 1 + r.nextInt(120)) : w.toString();
            assertEquals(tribuo.wordpiece(word), bounded.wordpiece(word), word);
        }
    }
}
