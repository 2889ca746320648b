package io.github.tilewise.djl.encoder.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The benchmark corpus is deterministic and has the length mix it documents. */
class MixedLengthCorpusTest {

    @Test
    void sameTextsForTheSameCountWithTheDocumentedLengthMix() {
        List<String> texts = MixedLengthCorpus.texts(4000);
        assertEquals(texts, MixedLengthCorpus.texts(4000));
        int shortTexts = 0;
        int longTexts = 0;
        for (String t : texts) {
            int words = t.split(" ").length;
            // 5-40 pieces: up to 30 words; 200-512 pieces: 158 words and more (1.25 pieces a word).
            shortTexts += words <= 30 ? 1 : 0;
            longTexts += words >= 158 ? 1 : 0;
            assertTrue(words >= 1 && words <= 408, words + " words");
        }
        assertEquals(0.70, shortTexts / 4000.0, 0.03);
        assertEquals(0.05, longTexts / 4000.0, 0.015);
        assertTrue(MixedLengthCorpus.texts(0).isEmpty());
        assertThrows(IllegalArgumentException.class, () -> MixedLengthCorpus.texts(-1));
    }
}
