package io.github.tilewise.tribuo;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Texts of the tests: varied lengths, punctuation, accents, unknown words, and random ones. */
final class TestTexts {

    private TestTexts() {}

    static final List<String> FIXED =
            List.of(
                    "It is a truth universally acknowledged,",
                    "that a single man in possession of a good fortune, must be in want of a wife.",
                    "Mr. Bennet was so odd a mixture of quick parts, sarcastic humour, reserve, and"
                            + " caprice.",
                    "Elizabeth!",
                    "a",
                    "The café’s crème brûlée was naïve — but déjà vu?",
                    "UPPER CASE AND lower case and MiXeD",
                    "Numbers 12345 and 3.14159, dates 2024-01-31; e-mail: someone@example.com",
                    "日本語のテキストと中文 mixed with English",
                    "emoji 🙂 and symbols ∑ ∫ √ ≤ ≥",
                    "xqzvw blorptang flibbertigibbet",
                    "   leading and trailing spaces   ",
                    "tabs\tand\nnew lines\r\ninside",
                    "She is tolerable; but not handsome enough to tempt me.",
                    "Happiness in marriage is entirely a matter of chance.",
                    "The weather was fine and the walk to Netherfield was pleasant.",
                    "A long sentence that keeps going with many ordinary words so that the"
                            + " tokenizer produces a good number of pieces for the model to read"
                            + " through its attention layers in one go.");

    /** Random texts from a small word list, 1 to {@code maxWords} words each. */
    static List<String> random(int count, int maxWords, long seed) {
        String[] words = {
            "the",
            "house",
            "was",
            "large",
            "and",
            "pleasant",
            "she",
            "walked",
            "to",
            "town",
            "letter",
            "ball",
            "dance",
            "sister",
            "mother",
            "fortune",
            "Darcy",
            "proud",
            "kind",
            "rain",
            "sun",
            "quickly",
            "never",
            "always",
            "happy",
            "unhappy",
            "garden",
            "road",
            "!",
            ",",
            "résumé",
            "über",
            "zzyzx"
        };
        Random random = new Random(seed);
        List<String> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int n = 1 + random.nextInt(maxWords);
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < n; w++) {
                if (w > 0) {
                    sb.append(' ');
                }
                sb.append(words[random.nextInt(words.length)]);
            }
            out.add(sb.toString());
        }
        return out;
    }

    static List<String> all() {
        List<String> out = new ArrayList<>(FIXED);
        out.addAll(random(40, 30, 42));
        return out;
    }

    /** A text and its class. */
    record Labelled(String label, String text) {}

    /**
     * A two-class set: texts about the weather and walks ("outside") or about balls and letters
     * ("inside"), built from word lists with a few shared words so the classes overlap.
     */
    static List<Labelled> labelled(int count, long seed) {
        return labelled(count, seed, 3);
    }

    /**
     * As {@link #labelled(int, long)}; with {@code noise} above 3, one word in {@code noise} comes
     * from the other class, so that the classes are harder to tell apart.
     */
    static List<Labelled> labelled(int count, long seed, int noise) {
        String[] outside = {
            "rain", "sun", "walk", "road", "garden", "weather", "wind", "field", "cold", "fine"
        };
        String[] inside = {
            "ball", "dance", "letter", "music", "dinner", "cards", "room", "fire", "book", "tea"
        };
        String[] shared = {"the", "a", "was", "she", "and", "very", "pleasant", "long", "they"};
        Random random = new Random(seed);
        List<Labelled> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            boolean isOutside = random.nextBoolean();
            String[] topic = isOutside ? outside : inside;
            int n = (noise > 3 ? 2 : 3) + random.nextInt(noise > 3 ? 6 : 10);
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < n; w++) {
                if (w > 0) {
                    sb.append(' ');
                }
                int pick = random.nextInt(noise);
                // Mostly topic words; some shared words; with noise > 3, some of the other topic.
                String[] from =
                        pick == 0
                                ? shared
                                : pick == 1 && noise > 3 ? (isOutside ? inside : outside) : topic;
                sb.append(from[random.nextInt(from.length)]);
            }
            out.add(new Labelled(isOutside ? "outside" : "inside", sb.toString()));
        }
        return out;
    }
}
