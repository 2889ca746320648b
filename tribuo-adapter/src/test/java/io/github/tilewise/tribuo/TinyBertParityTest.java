package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tribuo.Example;
import org.tribuo.Feature;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;
import org.tribuo.sequence.SequenceExample;

/** The drop-in against Tribuo's own extractor (ONNX Runtime) on Tribuo's tinybert test model. */
class TinyBertParityTest {

    private static final LabelFactory FACTORY = new LabelFactory();
    private static final double TOLERANCE = 1e-5;

    private static BERTFeatureExtractor<Label> original(OutputPooling pooling) {
        return new BERTFeatureExtractor<>(
                FACTORY,
                TestModels.tinyBert(),
                TestModels.tinyBertTokenizer(),
                pooling,
                512,
                false);
    }

    private static TilewiseBERTFeatureExtractor<Label> dropIn(OutputPooling pooling) {
        return new TilewiseBERTFeatureExtractor<>(
                FACTORY,
                TestModels.tinyBert(),
                TestModels.tinyBertTokenizer(),
                pooling,
                512,
                false);
    }

    @ParameterizedTest
    @EnumSource(OutputPooling.class)
    void featuresEqualTheOriginalsOneByOneAndInBatches(OutputPooling pooling) throws Exception {
        List<String> texts = TestTexts.all();
        try (BERTFeatureExtractor<Label> original = original(pooling);
                TilewiseBERTFeatureExtractor<Label> dropIn = dropIn(pooling)) {
            assertTrue(dropIn.isClsFromPooler(), "tinybert has a pooler");
            double[][] batched = dropIn.embed(texts);
            double worst = 0;
            for (int i = 0; i < texts.size(); i++) {
                Label label = new Label("L" + (i % 3));
                Example<Label> expected = original.extract(label, texts.get(i));
                Example<Label> actual = dropIn.extract(label, texts.get(i));
                assertEquals(expected.getOutput(), actual.getOutput());
                assertEquals(names(expected), names(actual), "feature names of " + texts.get(i));
                double[] e = values(expected);
                assertEquals(50, e.length);
                assertArrayEquals(e, values(actual), TOLERANCE, "one by one: " + texts.get(i));
                assertArrayEquals(e, batched[i], TOLERANCE, "batched: " + texts.get(i));
                worst = Math.max(worst, maxAbsDiff(e, batched[i]));
            }
            System.out.printf("tinybert %s max |drop-in - original| = %.3g%n", pooling, worst);
        }
    }

    @Test
    void processPrefixesTheTagLikeTheOriginal() throws Exception {
        String text = "It is a truth universally acknowledged,";
        try (BERTFeatureExtractor<Label> original = original(OutputPooling.MEAN);
                TilewiseBERTFeatureExtractor<Label> dropIn = dropIn(OutputPooling.MEAN)) {
            List<Feature> expected = original.process("title", text);
            List<Feature> actual = dropIn.process("title", text);
            assertEquals(expected.size(), actual.size());
            assertEquals("title-D=00", actual.get(0).getName());
            assertEquals("title-D=49", actual.get(49).getName());
            for (int i = 0; i < expected.size(); i++) {
                assertEquals(expected.get(i).getName(), actual.get(i).getName());
                assertEquals(expected.get(i).getValue(), actual.get(i).getValue(), TOLERANCE);
            }
            List<List<Feature>> batch = dropIn.process("title", List.of(text, "Elizabeth!"));
            assertEquals(actual, batch.get(0));
        }
    }

    @Test
    void wordPiecesAndTruncationAreTheOriginals() throws Exception {
        try (TilewiseBERTFeatureExtractor<Label> dropIn = dropIn(OutputPooling.CLS)) {
            // The count Tribuo's own test expects for this sentence.
            assertEquals(11, dropIn.tokenize("It is a truth universally acknowledged,").size());
            // tinybert has 100 positions: the default 512 is lowered to them.
            assertEquals(100, dropIn.getMaxLength());
            String longText = "the house was pleasant ".repeat(100);
            assertEquals(98, dropIn.tokenize(longText).size());
            assertEquals(50, dropIn.extract(new Label("x"), longText).size());
        }
    }

    @Test
    void emptyTextHasDefinedFeaturesWhereTheOriginalHasNaN() throws Exception {
        try (BERTFeatureExtractor<Label> original = original(OutputPooling.MEAN);
                BERTFeatureExtractor<Label> originalCls = original(OutputPooling.CLS);
                TilewiseBERTFeatureExtractor<Label> mean = dropIn(OutputPooling.MEAN);
                TilewiseBERTFeatureExtractor<Label> cls = dropIn(OutputPooling.CLS);
                TilewiseBERTFeatureExtractor<Label> both = dropIn(OutputPooling.CLS_AND_MEAN)) {
            assertTrue(Double.isNaN(values(original.extract(new Label("x"), ""))[0]));
            // The only tokens of an empty text are [CLS] and [SEP]: their vectors, from the
            // original's token-level output, are the reference.
            SequenceExample<Label> tokens = original.extractSequenceExample(List.of(), false);
            assertEquals(2, tokens.size());
            double[] first = values(tokens.get(0));
            double[] second = values(tokens.get(1));
            double[] expectedMean = new double[50];
            for (int i = 0; i < 50; i++) {
                expectedMean[i] = (first[i] + second[i]) / 2;
            }
            double[] actualMean = mean.embed("");
            assertArrayEquals(expectedMean, actualMean, TOLERANCE);
            double[] expectedCls = values(originalCls.extract(new Label("x"), ""));
            assertArrayEquals(expectedCls, cls.embed(""), TOLERANCE);
            double[] actualBoth = both.embed("");
            for (int i = 0; i < 50; i++) {
                assertFalse(Double.isNaN(actualBoth[i]));
                assertEquals((expectedCls[i] + expectedMean[i]) / 2, actualBoth[i], TOLERANCE);
            }
            // Whitespace only is empty too; in a batch with other texts as well.
            double[][] batch = mean.embed(List.of("  \t ", "Elizabeth!", ""));
            assertArrayEquals(actualMean, batch[0], TOLERANCE);
            assertArrayEquals(actualMean, batch[2], TOLERANCE);
        }
    }

    @Test
    void extractExampleRefusesTooManyPiecesLikeTheOriginal() throws Exception {
        try (TilewiseBERTFeatureExtractor<Label> dropIn = dropIn(OutputPooling.CLS)) {
            List<String> pieces = new ArrayList<>();
            for (int i = 0; i < 99; i++) {
                pieces.add("the");
            }
            Exception e =
                    org.junit.jupiter.api.Assertions.assertThrows(
                            IllegalArgumentException.class, () -> dropIn.extractExample(pieces));
            assertTrue(e.getMessage().contains("expected 98 found 99"), e.getMessage());
            assertEquals(50, dropIn.extractExample(pieces.subList(0, 98)).size());
        }
    }

    static List<String> names(Example<Label> example) {
        List<String> names = new ArrayList<>();
        for (Feature f : example) {
            names.add(f.getName());
        }
        return names;
    }

    static double[] values(Example<Label> example) {
        double[] values = new double[example.size()];
        int i = 0;
        for (Feature f : example) {
            values[i++] = f.getValue();
        }
        return values;
    }

    static double maxAbsDiff(double[] a, double[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }
}
