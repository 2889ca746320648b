package io.github.tilewise.djl.encoder.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real {@code tokenizer.json} (all-MiniLM-L6-v2's, from the LangChain4j model jar) keeps long
 * texts whole up to the asked length: DJL's Hugging Face tokenizer alone caps them at 512.
 */
class TextEncoderTokenizerLengthTest {

    @TempDir Path dir;

    private Path miniLmTokenizer() throws Exception {
        Path file = dir.resolve("tokenizer.json");
        try (InputStream is =
                getClass()
                        .getClassLoader()
                        .getResourceAsStream("all-minilm-l6-v2-tokenizer.json")) {
            assertTrue(is != null, "the LangChain4j all-MiniLM-L6-v2 jar is a test dependency");
            Files.copy(is, file);
        }
        return file;
    }

    private static String words(int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            sb.append(i % 7 == 0 ? "attention " : "word ");
        }
        return sb.toString();
    }

    @Test
    void keepsMoreThan512Tokens() throws Exception {
        Path file = miniLmTokenizer();
        try (EncoderTokenizer tok = EncoderTokenizer.load(file, 2048, true)) {
            // 1,500 words of one piece each: [CLS] + 1,500 + [SEP].
            TokenBatch batch = tok.encode(List.of(words(1500), "short"));
            assertEquals(1502, batch.getLengths()[0]);
            assertEquals(3, batch.getLengths()[1]);
            assertEquals(1502, batch.getSequenceLength());
            // Longer than the limit: cut at exactly 2,048, [SEP] kept last.
            TokenBatch cut = tok.encode(List.of(words(3000)));
            assertEquals(2048, cut.getLengths()[0]);
        }
        try (EncoderTokenizer strict = EncoderTokenizer.load(file, 2048, false)) {
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> strict.encode(List.of(words(3000))));
            assertTrue(e.getMessage().contains("2048"), e.getMessage());
        }
    }

    @Test
    void djlAloneCapsAt512() throws Exception {
        // The trap EncoderTokenizer avoids by setting modelMaxLength: without it, maxLength 2048
        // is silently lowered to the 512 default.
        Path file = miniLmTokenizer();
        try (HuggingFaceTokenizer raw =
                HuggingFaceTokenizer.newInstance(
                        file, Map.of("truncation", "true", "maxLength", "2048"))) {
            assertEquals(512, raw.encode(words(1500)).getIds().length);
        }
    }
}
