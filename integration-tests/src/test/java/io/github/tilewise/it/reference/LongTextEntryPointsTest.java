package io.github.tilewise.it.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.djl.engine.EncoderTranslatorFactory;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Long texts through the user's entry points — {@link TextEncoder} and DJL's {@code Criteria} on
 * the Tilewise engine — for the families with byte-level BPE tokenizers (RoBERTa, ModernBERT): a
 * random-weight checkpoint with a byte-level BPE {@code tokenizer.json} (no merges, so every UTF-8
 * byte is one token: the expected ids are known independently), fed a public-domain text up to the
 * model's full length (3,000 tokens for ModernBERT, the 128 of RoBERTa's table with truncation),
 * must give the mean of the float64 reference's token vectors within 1e-4.
 */
class LongTextEntryPointsTest {

    @TempDir Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"modernbert", "roberta"})
    void longTextThroughTextEncoderAndCriteriaMatchesFloat64(String variant) throws Exception {
        RandomHfCheckpoint checkpoint = RandomHfCheckpoint.create(variant, 42);
        Path dir = checkpoint.write(tmp.resolve(variant));
        Path tokenizer = writeByteLevelTokenizer(dir);
        int maxTokens = Math.min(3000, checkpoint.getMaxTokens());
        String text = lincoln().substring(0, 4000);

        // Ids known independently: <s>, each UTF-8 byte + 4, </s>; truncated to the model.
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(bytes.length + 2, maxTokens);
        int[] expectedIds = new int[n];
        expectedIds[0] = 0;
        for (int i = 1; i < n - 1; i++) {
            expectedIds[i] = (bytes[i - 1] & 0xff) + 4;
        }
        expectedIds[n - 1] = 2;
        try (EncoderTokenizer t = EncoderTokenizer.load(tokenizer, maxTokens, true)) {
            long[] ids = t.encode(List.of(text)).getInputIds();
            long[] want = new long[n];
            for (int i = 0; i < n; i++) {
                want[i] = expectedIds[i];
            }
            assertArrayEquals(want, ids, variant + ": byte-level BPE ids");
        }

        int[] mask = new int[n];
        java.util.Arrays.fill(mask, 1);
        double[][] tokens =
                checkpoint.reference().encode(new int[][] {expectedIds}, new int[][] {mask})[0];
        double[] mean = new double[tokens[0].length];
        for (double[] row : tokens) {
            for (int k = 0; k < mean.length; k++) {
                mean[k] += row[k] / n;
            }
        }

        try (TextEncoder encoder =
                TextEncoder.builder()
                        .setModelPath(dir)
                        .optPooling(Pooling.MEAN)
                        .optNormalize(false)
                        .optMaxLength(maxTokens)
                        .optTruncation(true)
                        .build()) {
            assertClose(mean, encoder.embed(text), variant + " TextEncoder");
        }
        Criteria<String, float[]> criteria =
                Criteria.builder()
                        .setTypes(String.class, float[].class)
                        .optEngine("Tilewise")
                        .optModelPath(dir)
                        .optTranslatorFactory(new EncoderTranslatorFactory())
                        .optArgument("pooling", "mean")
                        .optArgument("normalize", "false")
                        .optArgument("maxLength", Integer.toString(maxTokens))
                        .build();
        try (ZooModel<String, float[]> model = criteria.loadModel();
                Predictor<String, float[]> predictor = model.newPredictor()) {
            assertClose(mean, predictor.predict(text), variant + " Criteria");
        }
    }

    private static void assertClose(double[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double worst = 0;
        for (int k = 0; k < expected.length; k++) {
            worst = Math.max(worst, Math.abs(expected[k] - actual[k]));
        }
        System.out.printf("long-text %s max_abs=%.3g%n", what.replace(' ', '_'), worst);
        assertTrue(worst <= 1e-4, what + ": max |difference| " + worst);
    }

    private static String lincoln() throws Exception {
        try (InputStream in =
                LongTextEntryPointsTest.class.getResourceAsStream(
                        "/texts/lincoln-1862-annual-message.txt")) {
            String all = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            return all.substring(all.indexOf("\n\n") + 2).trim();
        }
    }

    /**
     * A byte-level BPE {@code tokenizer.json} (GPT-2's byte-to-character table, RoBERTa's post
     * processor) with no merges: {@code <s>} 0, {@code <pad>} 1, {@code </s>} 2, {@code <unk>} 3,
     * byte {@code b} is {@code b + 4}.
     */
    static Path writeByteLevelTokenizer(Path dir) throws Exception {
        String[] specials = {"<s>", "<pad>", "</s>", "<unk>"};
        JsonObject vocab = new JsonObject();
        JsonArray added = new JsonArray();
        for (int i = 0; i < specials.length; i++) {
            vocab.addProperty(specials[i], i);
            JsonObject t = new JsonObject();
            t.addProperty("id", i);
            t.addProperty("content", specials[i]);
            t.addProperty("single_word", false);
            t.addProperty("lstrip", false);
            t.addProperty("rstrip", false);
            t.addProperty("normalized", false);
            t.addProperty("special", true);
            added.add(t);
        }
        char[] byteChar = bytesToUnicode();
        for (int b = 0; b < 256; b++) {
            vocab.addProperty(String.valueOf(byteChar[b]), b + 4);
        }
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.add("dropout", null);
        model.add("unk_token", null);
        model.add("continuing_subword_prefix", null);
        model.add("end_of_word_suffix", null);
        model.addProperty("fuse_unk", false);
        model.addProperty("byte_fallback", false);
        model.add("vocab", vocab);
        model.add("merges", new JsonArray());
        JsonObject byteLevel = new JsonObject();
        byteLevel.addProperty("type", "ByteLevel");
        byteLevel.addProperty("add_prefix_space", false);
        byteLevel.addProperty("trim_offsets", true);
        byteLevel.addProperty("use_regex", true);
        JsonObject post = new JsonObject();
        post.addProperty("type", "RobertaProcessing");
        JsonArray sep = new JsonArray();
        sep.add("</s>");
        sep.add(2);
        JsonArray cls = new JsonArray();
        cls.add("<s>");
        cls.add(0);
        post.add("sep", sep);
        post.add("cls", cls);
        post.addProperty("trim_offsets", true);
        post.addProperty("add_prefix_space", false);
        JsonObject json = new JsonObject();
        json.addProperty("version", "1.0");
        json.add("truncation", null);
        json.add("padding", null);
        json.add("added_tokens", added);
        json.add("normalizer", null);
        json.add("pre_tokenizer", byteLevel);
        json.add("post_processor", post);
        json.add("decoder", byteLevel);
        json.add("model", model);
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, json.toString());
        return file;
    }

    /** GPT-2's table: printable bytes stand for themselves, the others for 256 + n. */
    private static char[] bytesToUnicode() {
        List<Integer> printable = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) {
            printable.add(b);
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            printable.add(b);
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            printable.add(b);
        }
        char[] table = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++) {
            table[b] = printable.contains(b) ? (char) b : (char) (256 + n++);
        }
        return table;
    }
}
