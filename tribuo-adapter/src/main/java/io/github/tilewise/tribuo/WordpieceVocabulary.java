package io.github.tilewise.tribuo;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.tribuo.util.tokens.impl.wordpiece.Wordpiece;
import org.tribuo.util.tokens.impl.wordpiece.WordpieceBasicTokenizer;
import org.tribuo.util.tokens.impl.wordpiece.WordpieceTokenizer;

/**
 * The wordpiece tokenization of Tribuo's {@code BERTFeatureExtractor}, read from a Hugging Face
 * {@code tokenizer.json}, made safe to share between threads.
 *
 * <p>It reads the same fields the original reads and builds the same Tribuo {@link
 * WordpieceTokenizer} from them, so both extractors see the same word pieces: {@code
 * normalizer.lowercase}, {@code normalizer.strip_accents} (a JSON null counts as false, as in the
 * original, even though Hugging Face then follows {@code lowercase}), the {@code [CLS]} and {@code
 * [SEP]} tokens of the {@code TemplateProcessing} or {@code BertProcessing} post-processor, {@code
 * model.unk_token}, {@code model.max_input_chars_per_word} and {@code model.vocab}.
 *
 * <p>Tribuo tokenizers keep the text being split as state, which is why the original extractor
 * breaks under concurrent use; {@link #tokenize} splits with a fresh clone per call (the clones
 * share the immutable vocabulary).
 *
 * <p>The file is untrusted: every number and size in it is bounded ({@link #MAX_VOCAB_SIZE}, {@link
 * #MAX_TOKEN_CHARS}, {@link #MAX_INPUT_CHARS_PER_WORD}) and the word pieces are found by {@link
 * BoundedWordpiece}, so neither loading nor tokenizing can take time or memory beyond what the
 * file's and the text's sizes justify.
 */
final class WordpieceVocabulary {

    /** The largest vocabulary, in entries (multilingual BERT has about 120,000). */
    static final int MAX_VOCAB_SIZE = 1 << 22;

    /** The longest vocabulary entry, in chars (BERT's longest are about 20). */
    static final int MAX_TOKEN_CHARS = 100;

    /** The largest {@code max_input_chars_per_word} (Hugging Face's default is 100). */
    static final int MAX_INPUT_CHARS_PER_WORD = 10_000;

    private final Map<String, Integer> ids;
    private final String unknownToken;
    private final String classificationToken;
    private final String separatorToken;
    private final WordpieceTokenizer prototype;

    private WordpieceVocabulary(
            Map<String, Integer> ids,
            String unknownToken,
            String classificationToken,
            String separatorToken,
            boolean lowercase,
            boolean stripAccents,
            int maxInputCharsPerWord) {
        this.ids = Collections.unmodifiableMap(ids);
        this.unknownToken = unknownToken;
        this.classificationToken = classificationToken;
        this.separatorToken = separatorToken;
        Wordpiece wordpiece =
                new BoundedWordpiece(ids.keySet(), unknownToken, maxInputCharsPerWord);
        this.prototype =
                new WordpieceTokenizer(
                        wordpiece,
                        new WordpieceBasicTokenizer(),
                        lowercase,
                        stripAccents,
                        Collections.emptySet());
    }

    /**
     * Reads a {@code tokenizer.json}.
     *
     * @param file the file
     * @return the vocabulary
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException naming the file and the missing, malformed or out-of-range
     *     entry
     */
    static WordpieceVocabulary load(Path file) throws IOException {
        JsonObject root;
        try {
            root =
                    JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8))
                            .getAsJsonObject();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(file + ": not a tokenizer.json: not UTF-8 text");
        } catch (JsonParseException | IllegalStateException e) {
            throw new IllegalArgumentException(file + ": not a tokenizer.json: " + e.getMessage());
        }
        JsonObject normalizer = object(root, "normalizer", file);
        boolean lowercase = flag(normalizer.get("lowercase"));
        boolean stripAccents = flag(normalizer.get("strip_accents"));

        JsonObject post = object(root, "post_processor", file);
        String type = text(post.get("type"));
        String cls;
        String sep;
        if ("TemplateProcessing".equals(type)) {
            JsonObject special = object(post, "special_tokens", file);
            sep = firstToken(object(special, "[SEP]", file), file);
            cls = firstToken(object(special, "[CLS]", file), file);
        } else if ("BertProcessing".equals(type)) {
            sep = firstOf(post.get("sep"), "post_processor.sep", file);
            cls = firstOf(post.get("cls"), "post_processor.cls", file);
        } else {
            throw new IllegalArgumentException(
                    file
                            + ": unsupported post_processor type '"
                            + type
                            + "' (expected"
                            + " TemplateProcessing or BertProcessing, a BERT wordpiece tokenizer)");
        }

        JsonObject model = object(root, "model", file);
        String unknown = text(model.get("unk_token"));
        if (unknown == null || unknown.isEmpty()) {
            throw new IllegalArgumentException(file + ": model.unk_token is missing");
        }
        JsonElement maxChars = model.get("max_input_chars_per_word");
        if (maxChars == null) {
            throw new IllegalArgumentException(
                    file + ": model.max_input_chars_per_word is missing (not a wordpiece model)");
        }
        int maxInputChars =
                integer(
                        maxChars,
                        1,
                        MAX_INPUT_CHARS_PER_WORD,
                        "model.max_input_chars_per_word",
                        file);
        JsonObject vocab = object(model, "vocab", file);
        if (vocab.size() > MAX_VOCAB_SIZE) {
            throw new IllegalArgumentException(
                    file
                            + ": model.vocab has "
                            + vocab.size()
                            + " entries, over "
                            + MAX_VOCAB_SIZE);
        }
        Map<String, Integer> ids = new HashMap<>(vocab.size() * 2);
        for (Map.Entry<String, JsonElement> e : vocab.entrySet()) {
            String token = e.getKey();
            if (token.isEmpty() || token.length() > MAX_TOKEN_CHARS) {
                throw new IllegalArgumentException(
                        file
                                + ": model.vocab entry of "
                                + token.length()
                                + " chars (allowed: 1 to "
                                + MAX_TOKEN_CHARS
                                + ")");
            }
            String field = "model.vocab id of '" + token + "'";
            ids.put(token, integer(e.getValue(), 0, MAX_VOCAB_SIZE - 1, field, file));
        }
        for (String token : List.of(unknown, cls, sep)) {
            if (!ids.containsKey(token)) {
                throw new IllegalArgumentException(
                        file + ": special token '" + token + "' is not in the vocabulary");
            }
        }
        return new WordpieceVocabulary(
                ids, unknown, cls, sep, lowercase, stripAccents, maxInputChars);
    }

    /**
     * Splits a text into word pieces (without {@code [CLS]}/{@code [SEP]}); safe to call from many
     * threads.
     *
     * @param text the text
     * @return the word pieces
     */
    List<String> tokenize(String text) {
        WordpieceTokenizer tokenizer = prototype.clone();
        return new ArrayList<>(tokenizer.split(text));
    }

    /**
     * Writes {@code [CLS] pieces [SEP]} as ids into {@code row}, unknown pieces as the unknown id.
     *
     * @param pieces the word pieces
     * @param row the destination
     * @param offset where {@code [CLS]} goes
     */
    void writeIds(List<String> pieces, long[] row, int offset) {
        int unknownId = ids.get(unknownToken);
        row[offset] = ids.get(classificationToken);
        int i = offset + 1;
        for (String piece : pieces) {
            row[i++] = ids.getOrDefault(piece, unknownId);
        }
        row[i] = ids.get(separatorToken);
    }

    /**
     * Returns the token-to-id map.
     *
     * @return an unmodifiable view
     */
    Map<String, Integer> getIds() {
        return ids;
    }

    /**
     * Returns the largest id in the vocabulary.
     *
     * @return the largest id
     */
    int maxId() {
        int max = 0;
        for (int id : ids.values()) {
            max = Math.max(max, id);
        }
        return max;
    }

    private static JsonObject object(JsonObject parent, String key, Path file) {
        JsonElement e = parent.get(key);
        if (e == null || !e.isJsonObject()) {
            throw new IllegalArgumentException(
                    file + ": '" + key + "' is missing (not a BERT wordpiece tokenizer.json)");
        }
        return e.getAsJsonObject();
    }

    /** An exact JSON integer in a range: Gson's getAsInt would truncate 1.5 and wrap 2^32 + 1. */
    private static int integer(JsonElement e, int min, int max, String field, Path file) {
        long v;
        try {
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
                throw new NumberFormatException();
            }
            // 40 chars: any longer number cannot be an int, and a megabyte of digits parses slowly.
            String text = e.getAsString();
            v = text.length() > 40 ? Long.MAX_VALUE : new BigDecimal(text).longValueExact();
        } catch (NumberFormatException | ArithmeticException ex) {
            throw new IllegalArgumentException(file + ": " + field + " is not an integer: " + e);
        }
        if (v < min || v > max) {
            throw new IllegalArgumentException(
                    file + ": " + field + " = " + v + " is outside [" + min + ", " + max + "]");
        }
        return (int) v;
    }

    private static boolean flag(JsonElement e) {
        return e != null && e.isJsonPrimitive() && e.getAsBoolean();
    }

    private static String text(JsonElement e) {
        return e != null && e.isJsonPrimitive() ? e.getAsString() : null;
    }

    private static String firstToken(JsonObject special, Path file) {
        return firstOf(special.get("tokens"), "special_tokens[].tokens", file);
    }

    private static String firstOf(JsonElement e, String what, Path file) {
        if (e == null || !e.isJsonArray() || ((JsonArray) e).isEmpty()) {
            throw new IllegalArgumentException(file + ": " + what + " is missing");
        }
        JsonElement first = e.getAsJsonArray().get(0);
        if (!first.isJsonPrimitive()) {
            throw new IllegalArgumentException(file + ": " + what + " is not a token string");
        }
        return first.getAsString();
    }
}
