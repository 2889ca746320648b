package io.github.tilewise.djl.encoder.text;

import io.github.tilewise.djl.lowp.CalibrationTexts;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A deterministic corpus with the length mix of real document stores, for benchmarks and examples
 * that must be comparable across engines and machines: 70% of the texts have 5–40 word pieces (in a
 * WordPiece vocabulary such as all-MiniLM-L6-v2's), 25% 40–200 and 5% 200–512, strung from the
 * words of {@link CalibrationTexts} and shuffled, always the same for the same count.
 */
public final class MixedLengthCorpus {

    private MixedLengthCorpus() {}

    /**
     * Makes the corpus.
     *
     * @param count the number of texts
     * @return the texts, in a shuffled order fixed by the count
     * @throws IllegalArgumentException if {@code count} is negative
     */
    public static List<String> texts(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must not be negative, got " + count);
        }
        List<String> words = new ArrayList<>();
        for (String sentence : CalibrationTexts.defaults()) {
            words.addAll(Arrays.asList(sentence.split(" ")));
        }
        Random random = new Random(42);
        List<String> texts = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            double u = random.nextDouble();
            int tokens =
                    u < 0.70
                            ? 5 + random.nextInt(36)
                            : u < 0.95 ? 40 + random.nextInt(161) : 200 + random.nextInt(313);
            // About 1.25 word pieces per word here, plus [CLS] and [SEP].
            int target = Math.max(1, (int) Math.round((tokens - 2) / 1.25));
            StringBuilder text = new StringBuilder();
            int start = random.nextInt(words.size());
            for (int w = 0; w < target; w++) {
                if (w > 0) {
                    text.append(' ');
                }
                text.append(words.get((start + w) % words.size()));
            }
            texts.add(text.toString());
        }
        Collections.shuffle(texts, random);
        return texts;
    }
}
