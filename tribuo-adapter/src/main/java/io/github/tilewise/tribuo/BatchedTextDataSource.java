package io.github.tilewise.tribuo;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;
import java.util.regex.Pattern;
import org.tribuo.Example;
import org.tribuo.Output;
import org.tribuo.OutputFactory;
import org.tribuo.data.text.TextFeatureExtractor;
import org.tribuo.data.text.impl.SimpleTextDataSource;

/**
 * Tribuo's {@link SimpleTextDataSource} (one {@code LABEL##text} per line) that hands all its texts
 * to a {@link TilewiseBERTFeatureExtractor} at once, so they run in padded batches instead of one
 * forward pass per line: the batch API for data sources.
 *
 * <p>It reads the file exactly as {@code SimpleTextDataSource} does (lines trimmed, blank lines
 * skipped, lines without exactly one {@code ##} skipped with a warning, labels trimmed and
 * upper-cased, texts through the configured preprocessors) and gives the same examples in the same
 * order. In OLCUT configurations it takes the same properties ({@code path}, {@code outputFactory},
 * {@code extractor}, {@code preprocessors}); with any other extractor it extracts line by line,
 * like its parent.
 *
 * @param <T> the output type
 */
public class BatchedTextDataSource<T extends Output<T>> extends SimpleTextDataSource<T> {

    private static final Logger logger = Logger.getLogger(BatchedTextDataSource.class.getName());

    private static final Pattern SEPARATOR = Pattern.compile("##");

    /** For OLCUT. */
    protected BatchedTextDataSource() {}

    /**
     * Reads a file of {@code LABEL##text} lines.
     *
     * @param path the file
     * @param outputFactory makes the outputs from the labels
     * @param extractor turns texts into features
     * @throws IOException if the file cannot be read
     */
    public BatchedTextDataSource(
            Path path, OutputFactory<T> outputFactory, TextFeatureExtractor<T> extractor)
            throws IOException {
        super(path, outputFactory, extractor);
    }

    @Override
    protected void read() throws IOException {
        List<T> outputs = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        List<Integer> lineNumbers = new ArrayList<>();
        int n = 0;
        for (String raw : Files.readAllLines(path, StandardCharsets.UTF_8)) {
            n++;
            String line = raw.trim();
            if (line.isEmpty()) {
                continue;
            }
            String[] fields = SEPARATOR.split(line);
            if (fields.length != 2) {
                logger.warning(
                        String.format(
                                "Bad line in %s at %d: %s",
                                path, n, line.substring(Math.min(50, line.length()))));
                continue;
            }
            // Same label normalisation as SimpleTextDataSource (default locale included).
            outputs.add(outputFactory.generateOutput(fields[0].trim().toUpperCase()));
            texts.add(handleDoc(fields[1].trim()));
            lineNumbers.add(n);
        }
        List<Example<T>> examples;
        if (extractor instanceof TilewiseBERTFeatureExtractor) {
            examples = ((TilewiseBERTFeatureExtractor<T>) extractor).extract(outputs, texts);
        } else {
            examples = new ArrayList<>(texts.size());
            for (int i = 0; i < texts.size(); i++) {
                examples.add(extractor.extract(outputs.get(i), texts.get(i)));
            }
        }
        for (int i = 0; i < examples.size(); i++) {
            Example<T> e = examples.get(i);
            if (e.validateExample()) {
                data.add(e);
            } else {
                logger.warning("Invalid example found after parsing line " + lineNumbers.get(i));
            }
        }
    }
}
