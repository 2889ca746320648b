package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tribuo.Example;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.data.text.impl.SimpleTextDataSource;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;

/** The batched data source gives SimpleTextDataSource's examples, in order. */
class BatchedTextDataSourceTest {

    @Test
    void sameExamplesAsSimpleTextDataSource() throws Exception {
        List<String> lines = new ArrayList<>();
        List<TestTexts.Labelled> set = TestTexts.labelled(30, 5);
        for (int i = 0; i < set.size(); i++) {
            lines.add(set.get(i).label() + " ##  " + set.get(i).text());
            if (i % 7 == 0) {
                lines.add("");
                lines.add("a line without a separator");
                lines.add("two##separators##here");
            }
        }
        lines.add("lowercase-label##" + TestTexts.FIXED.get(1));
        lines.add("EMPTY##   ");
        Path file = Files.createTempFile(TestModels.dir(), "data", ".txt");
        Files.write(file, lines, StandardCharsets.UTF_8);
        LabelFactory factory = new LabelFactory();
        try (TilewiseBERTFeatureExtractor<Label> extractor =
                new TilewiseBERTFeatureExtractor<>(
                        factory,
                        TestModels.tinyBert(),
                        TestModels.tinyBertTokenizer(),
                        OutputPooling.CLS_AND_MEAN,
                        512,
                        false)) {
            List<Example<Label>> expected =
                    list(new SimpleTextDataSource<>(file, factory, extractor));
            List<Example<Label>> actual =
                    list(new BatchedTextDataSource<>(file, factory, extractor));
            assertEquals(set.size() + 1, expected.size(), "EMPTY##<blank> is dropped after trim");
            assertEquals(expected.size(), actual.size());
            for (int i = 0; i < expected.size(); i++) {
                assertEquals(expected.get(i).getOutput(), actual.get(i).getOutput());
                assertEquals(
                        TinyBertParityTest.names(expected.get(i)),
                        TinyBertParityTest.names(actual.get(i)));
                assertArrayEquals(
                        TinyBertParityTest.values(expected.get(i)),
                        TinyBertParityTest.values(actual.get(i)),
                        1e-5);
            }
            assertEquals("LOWERCASE-LABEL", actual.get(actual.size() - 1).getOutput().getLabel());
        }
    }

    private static List<Example<Label>> list(Iterable<Example<Label>> source) {
        List<Example<Label>> out = new ArrayList<>();
        source.forEach(out::add);
        return out;
    }
}
