package io.github.tilewise.djl.encoder.text;

import ai.djl.MalformedModelException;
import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns texts into a padded {@link TokenBatch} with DJL's Hugging Face tokenizer ({@code
 * tokenizer.json}), enforcing the model's position limit: longer texts are truncated to {@code
 * maxLength} tokens, or refused with a clear message when truncation is off.
 *
 * <p>Padding and truncation settings stored in {@code tokenizer.json} are replaced by these, so a
 * text's tokens never depend on the batch it is in.
 */
public final class EncoderTokenizer implements AutoCloseable {

    private final Path file;
    private final HuggingFaceTokenizer tokenizer;
    private final int maxLength;
    private final boolean truncation;
    private final boolean lowerCase;

    private EncoderTokenizer(
            Path file,
            HuggingFaceTokenizer tokenizer,
            int maxLength,
            boolean truncation,
            boolean lowerCase) {
        this.file = file;
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
        this.truncation = truncation;
        this.lowerCase = lowerCase;
    }

    /**
     * Loads a {@code tokenizer.json}.
     *
     * @param file the tokenizer file
     * @param maxLength the most tokens per text, special tokens included (at most the model's
     *     positions)
     * @param truncation true to cut longer texts, false to refuse them
     * @return the tokenizer
     * @throws IOException if the file is missing or unreadable
     * @throws MalformedModelException naming the file if it is not a tokenizer with a vocabulary
     */
    public static EncoderTokenizer load(Path file, int maxLength, boolean truncation)
            throws IOException, MalformedModelException {
        return load(file, maxLength, truncation, false);
    }

    /**
     * Loads a {@code tokenizer.json}, optionally lower-casing texts first (as sentence-transformers
     * does for {@code do_lower_case} in {@code sentence_bert_config.json}).
     *
     * @param file the tokenizer file
     * @param maxLength the most tokens per text, special tokens included (at most the model's
     *     positions)
     * @param truncation true to cut longer texts, false to refuse them
     * @param lowerCase true to lower-case texts (root locale) before tokenizing them
     * @return the tokenizer
     * @throws IOException if the file is missing or unreadable
     * @throws MalformedModelException naming the file if it is not a tokenizer with a vocabulary
     */
    public static EncoderTokenizer load(
            Path file, int maxLength, boolean truncation, boolean lowerCase)
            throws IOException, MalformedModelException {
        if (maxLength < 2) {
            throw new IllegalArgumentException("maxLength must be at least 2, got " + maxLength);
        }
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such tokenizer file");
        }
        checkVocabulary(file);
        Map<String, String> options = new HashMap<>();
        options.put("padding", "false");
        options.put("truncation", Boolean.toString(truncation));
        options.put("maxLength", Integer.toString(maxLength));
        options.put("modelMaxLength", Integer.toString(maxLength));
        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.newInstance(file, options);
        } catch (RuntimeException e) {
            throw new MalformedModelException(
                    file + ": the Hugging Face tokenizer cannot load it: " + e.getMessage(), e);
        }
        return new EncoderTokenizer(file, tokenizer, maxLength, truncation, lowerCase);
    }

    private static void checkVocabulary(Path file) throws IOException, MalformedModelException {
        JsonObject json;
        try {
            json =
                    JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8))
                            .getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
            throw new MalformedModelException(
                    file + ": not a tokenizer.json (invalid JSON): " + e.getMessage(), e);
        }
        JsonElement model = json.get("model");
        if (model == null || !model.isJsonObject()) {
            throw new MalformedModelException(file + ": tokenizer has no \"model\" section");
        }
        JsonElement vocab = model.getAsJsonObject().get("vocab");
        boolean empty =
                vocab == null
                        || vocab.isJsonNull()
                        || (vocab.isJsonObject() && vocab.getAsJsonObject().size() == 0)
                        || (vocab.isJsonArray() && vocab.getAsJsonArray().isEmpty());
        if (empty) {
            throw new MalformedModelException(
                    file + ": tokenizer has no vocabulary (model.vocab is missing or empty)");
        }
    }

    /**
     * Returns the tokenizer file.
     *
     * @return the path
     */
    public Path getFile() {
        return file;
    }

    /**
     * Returns the most tokens per text.
     *
     * @return the maximum length
     */
    public int getMaxLength() {
        return maxLength;
    }

    /**
     * Returns the underlying DJL tokenizer.
     *
     * @return the tokenizer
     */
    public HuggingFaceTokenizer getTokenizer() {
        return tokenizer;
    }

    /**
     * Tokenizes texts into one batch padded to the longest.
     *
     * @param texts the texts (at least one; empty strings are fine)
     * @return the batch
     * @throws IllegalArgumentException if a text is null, or longer than the maximum length while
     *     truncation is off
     */
    public TokenBatch encode(List<String> texts) {
        if (texts.isEmpty()) {
            throw new IllegalArgumentException("no texts to encode");
        }
        for (int i = 0; i < texts.size(); i++) {
            if (texts.get(i) == null) {
                throw new IllegalArgumentException("text #" + i + " is null");
            }
        }
        List<String> input = texts;
        if (lowerCase) {
            input = new ArrayList<>(texts.size());
            for (String t : texts) {
                input.add(t.toLowerCase(Locale.ROOT));
            }
        }
        Encoding[] encodings = tokenizer.batchEncode(input);
        int batch = encodings.length;
        int seq = 1;
        int[] lengths = new int[batch];
        for (int i = 0; i < batch; i++) {
            lengths[i] = encodings[i].getIds().length;
            if (lengths[i] > maxLength) {
                throw new IllegalArgumentException(
                        "text #"
                                + i
                                + " has "
                                + lengths[i]
                                + " tokens, more than the model's limit of "
                                + maxLength
                                + "; enable truncation or shorten it");
            }
            seq = Math.max(seq, lengths[i]);
        }
        long[] ids = new long[batch * seq];
        long[] mask = new long[batch * seq];
        long[] types = new long[batch * seq];
        for (int i = 0; i < batch; i++) {
            Encoding e = encodings[i];
            System.arraycopy(e.getIds(), 0, ids, i * seq, lengths[i]);
            System.arraycopy(e.getTypeIds(), 0, types, i * seq, lengths[i]);
            long[] m = e.getAttentionMask();
            System.arraycopy(m, 0, mask, i * seq, lengths[i]);
        }
        return new TokenBatch(batch, seq, ids, mask, types, lengths);
    }

    /**
     * Returns whether texts are lower-cased before tokenization.
     *
     * @return true if lower-casing
     */
    public boolean isLowerCase() {
        return lowerCase;
    }

    /**
     * Returns whether long texts are truncated (else refused).
     *
     * @return true if truncating
     */
    public boolean isTruncation() {
        return truncation;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
