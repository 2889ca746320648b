package io.github.tilewise.it.encoder;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** The texts of the parity tests: empty, one word, unicode, over the position limit, mixed. */
final class ParityTexts {

    private static final String[] WORDS = {
        "the", "model", "reads", "every", "token", "attention", "masks", "padding", "Java",
        "inference", "vector", "sentence", "river", "bank", "money", "quickly", "under", "small",
        "encoder", "layers", "weights", "graph", "export", "kernel", "cache", "tile", "softmax"
    };

    private ParityTexts() {}

    /**
     * Returns at least 100 texts in a fixed pseudo-random order.
     *
     * @param longWords the word count of the texts meant to exceed the position table
     * @return the texts
     */
    static List<String> all(int longWords) {
        List<String> texts = new ArrayList<>();
        texts.add("");
        texts.add("");
        texts.add(" ");
        texts.add("hello");
        texts.add("Tilewise");
        texts.add("?");
        texts.add("naïve café déjà vu — Größe ßtraße");
        texts.add("東京は日本の首都です。");
        texts.add("Привет, как дела?");
        texts.add("مرحبا بالعالم");
        texts.add("emoji 😀🚀🧠 and symbols ∑∫√≈ ©®™");
        texts.add("A\tB\nC\r\nD    E");
        texts.add("UPPER lower MiXeD 12345 3.14159 1e-9");
        texts.add("supercalifragilisticexpialidocious antidisestablishmentarianism");
        texts.add("The quick brown fox jumps over the lazy dog.");
        texts.add("A man is eating food.");
        texts.add("A man is eating a piece of bread.");
        texts.add("The girl is carrying a baby.");
        texts.add("A monkey is playing drums.");
        Random random = new Random(20261129);
        texts.add(words(random, longWords));
        texts.add(words(random, longWords + 37));
        texts.add(words(random, 2 * longWords));
        while (texts.size() < 112) {
            int n = 1 + random.nextInt(random.nextInt(10) == 0 ? longWords : 40);
            texts.add(words(random, n));
        }
        // Interleave long and short texts so every batch mixes lengths.
        List<String> mixed = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            mixed.add(texts.get((int) ((i * 37L) % texts.size())));
        }
        return mixed;
    }

    private static String words(Random random, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                sb.append(random.nextInt(12) == 0 ? ", " : " ");
            }
            sb.append(WORDS[random.nextInt(WORDS.length)]);
        }
        return sb.append('.').toString();
    }
}
