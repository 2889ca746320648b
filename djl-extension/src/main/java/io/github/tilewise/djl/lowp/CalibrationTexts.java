package io.github.tilewise.djl.lowp;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A small built-in calibration set: 48 generic sentences (news, questions, instructions, a few in
 * other languages), used for SmoothQuant when a user converts to INT8 without passing their own
 * texts (e.g. the {@code precision=int8} Criteria argument). Users with domain text should pass it
 * instead.
 */
public final class CalibrationTexts {

    private static final String RESOURCE = "calibration-texts.txt";

    private CalibrationTexts() {}

    /**
     * Returns the built-in texts.
     *
     * @return 48 sentences
     */
    public static List<String> defaults() {
        try (InputStream in = CalibrationTexts.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE + " is missing from the tilewise-djl jar");
            }
            List<String> texts = new ArrayList<>();
            try (BufferedReader r =
                    new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line = r.readLine(); line != null; line = r.readLine()) {
                    if (!line.isBlank()) {
                        texts.add(line.trim());
                    }
                }
            }
            return texts;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
