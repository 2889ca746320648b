package io.github.tilewise.tribuo;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.List;

/** {@code tokenizer.json} builders for the tokenizer's hostile-file tests and fuzzer. */
final class TinyTokenizers {

    private TinyTokenizers() {}

    /**
     * A BERT wordpiece {@code tokenizer.json} with the special tokens, then {@code pieces} (ids in
     * order).
     */
    static JsonObject tokenizer(int maxInputCharsPerWord, List<String> pieces) {
        JsonObject normalizer = new JsonObject();
        normalizer.addProperty("type", "BertNormalizer");
        normalizer.addProperty("lowercase", true);
        normalizer.add("strip_accents", null);
        JsonObject special = new JsonObject();
        for (String s : List.of("[CLS]", "[SEP]")) {
            JsonObject t = new JsonObject();
            t.addProperty("id", s);
            JsonArray tokens = new JsonArray();
            tokens.add(s);
            t.add("tokens", tokens);
            special.add(s, t);
        }
        JsonObject post = new JsonObject();
        post.addProperty("type", "TemplateProcessing");
        post.add("special_tokens", special);
        JsonObject vocab = new JsonObject();
        int id = 0;
        for (String s : List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]")) {
            vocab.addProperty(s, id++);
        }
        for (String p : pieces) {
            vocab.addProperty(p, id++);
        }
        JsonObject model = new JsonObject();
        model.addProperty("type", "WordPiece");
        model.addProperty("unk_token", "[UNK]");
        model.addProperty("continuing_subword_prefix", "##");
        model.addProperty("max_input_chars_per_word", maxInputCharsPerWord);
        model.add("vocab", vocab);
        JsonObject root = new JsonObject();
        root.addProperty("version", "1.0");
        root.add("normalizer", normalizer);
        root.add("post_processor", post);
        root.add("model", model);
        return root;
    }
}
