package io.github.tilewise.it.lowp;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The texts of the low-precision accuracy checks: 240 varied texts in a fixed order: everyday
 * sentences on many topics (so pairwise similarities spread from unrelated to paraphrase),
 * questions, paraphrase pairs, lists, numbers and code, other languages and scripts, a few very
 * short and a few long texts.
 */
public final class AccuracyTexts {

    private static final String[] SUBJECTS = {
        "The doctor", "My neighbour", "A small startup", "The city council", "Our football team",
        "The old fisherman", "A young violinist", "The bank", "Scientists in Norway", "The chef",
        "The train to Lyon", "A stray cat", "The new phone", "Her grandmother", "The database"
    };
    private static final String[] VERBS = {
        "announced",
        "cooked",
        "repaired",
        "lost",
        "painted",
        "delayed",
        "studied",
        "sold",
        "discovered",
        "ignored",
        "crashed during",
        "celebrated",
        "measured",
        "translated"
    };
    private static final String[] OBJECTS = {
        "a spicy curry for the whole family",
        "the results of the clinical trial",
        "an interest rate increase",
        "the broken bicycle in the garage",
        "a mural on the station wall",
        "the final match of the season",
        "a rare species of frog",
        "the quarterly budget",
        "a melody nobody had heard before",
        "the migration to the cloud",
        "the morning commute",
        "a letter written in 1943",
        "the melting of the glacier"
    };
    private static final String[] CONTEXTS = {
        "",
        " yesterday",
        " after the storm",
        " despite the protests",
        " for the third time",
        " in front of a large crowd",
        " without telling anyone",
        " on a rainy Sunday"
    };
    private static final String[] QUESTIONS = {
        "How do I reset my password?",
        "What is the capital of Australia?",
        "Why is the sky blue?",
        "Can dogs eat chocolate?",
        "When does the museum open on Mondays?",
        "How much does a flight to Tokyo cost?",
        "Is it safe to swim after eating?",
        "What causes inflation?",
        "Which programming language should I learn first?",
        "Where can I recycle old batteries?",
        "How long should I boil an egg?",
        "Who wrote Pride and Prejudice?"
    };
    private static final String[][] PARAPHRASES = {
        {"A man is playing a guitar.", "Someone is strumming a guitar."},
        {"The stock market fell sharply today.", "Shares dropped steeply on the exchange today."},
        {"She is reading a book in the park.", "A woman reads a novel on a park bench."},
        {
            "The flight was cancelled because of fog.",
            "Fog forced the airline to cancel the flight."
        },
        {"He forgot his keys at the office.", "He left his keys at work."},
        {"Children are building a sandcastle.", "Kids make a castle out of sand on the beach."},
        {
            "The vaccine reduces the risk of infection.",
            "Getting vaccinated lowers your chance of getting infected."
        },
        {"It will rain tomorrow afternoon.", "Showers are expected tomorrow after lunch."}
    };
    private static final String[] SPECIAL = {
        "",
        "ok",
        "Thanks!",
        "42",
        "N/A",
        "lol 😂😂",
        "naïve café déjà vu — Größe",
        "東京は日本の首都です。",
        "Привет, как дела?",
        "مرحبا بالعالم",
        "La casa es muy grande y bonita.",
        "Der Zug hat zehn Minuten Verspätung.",
        "Il pleut depuis trois jours à Paris.",
        "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
        "SELECT name FROM users WHERE age > 30;",
        "Invoice #A-1029: 3 x widgets @ $4.99, total $14.97",
        "E = mc^2 and F = ma",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
        "TODO: fix the memory leak in the cache eviction path",
        "https://example.com/search?q=quantization&lang=en"
    };

    private AccuracyTexts() {}

    /**
     * Returns the texts.
     *
     * @return 240 texts
     */
    public static List<String> all() {
        Random random = new Random(4);
        List<String> texts = new ArrayList<>();
        for (String s : SPECIAL) {
            texts.add(s);
        }
        for (String q : QUESTIONS) {
            texts.add(q);
        }
        for (String[] pair : PARAPHRASES) {
            texts.add(pair[0]);
            texts.add(pair[1]);
        }
        // Two long texts (several sentences each).
        for (int t = 0; t < 2; t++) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < 12; i++) {
                sb.append(sentence(random)).append(' ');
            }
            texts.add(sb.toString().trim());
        }
        while (texts.size() < 240) {
            texts.add(
                    random.nextInt(4) == 0
                            ? sentence(random) + " " + sentence(random)
                            : sentence(random));
        }
        return texts;
    }

    private static String sentence(Random random) {
        return SUBJECTS[random.nextInt(SUBJECTS.length)]
                + " "
                + VERBS[random.nextInt(VERBS.length)]
                + " "
                + OBJECTS[random.nextInt(OBJECTS.length)]
                + CONTEXTS[random.nextInt(CONTEXTS.length)]
                + ".";
    }
}
