package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tribuo.Example;
import org.tribuo.Model;
import org.tribuo.MutableDataset;
import org.tribuo.Prediction;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.classification.sgd.linear.LogisticRegressionTrainer;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;
import org.tribuo.provenance.SimpleDataSourceProvenance;

/**
 * The drop-in on a modern export (all-MiniLM-L6-v2: {@code last_hidden_state} only, no pooler)
 * against Tribuo's extractor running a copy of the graph with {@code output_0}/{@code output_1}
 * added; and a logistic regression trained on the original's features predicting the same on the
 * drop-in's.
 */
class MiniLmParityTest {

    private static final LabelFactory FACTORY = new LabelFactory();
    private static final double TOLERANCE = 1e-5;

    @Test
    void featuresEqualTheOriginalsForEveryPooling() throws Exception {
        List<String> texts = TestTexts.all().subList(0, 30);
        for (OutputPooling pooling : OutputPooling.values()) {
            try (BERTFeatureExtractor<Label> original =
                            new BERTFeatureExtractor<>(
                                    FACTORY,
                                    TestModels.miniLmWithTribuoOutputs(),
                                    TestModels.miniLmTokenizer(),
                                    pooling,
                                    512,
                                    false);
                    TilewiseBERTFeatureExtractor<Label> dropIn =
                            new TilewiseBERTFeatureExtractor<>(
                                    FACTORY,
                                    TestModels.miniLm(),
                                    TestModels.miniLmTokenizer(),
                                    pooling,
                                    512,
                                    false)) {
                assertFalse(dropIn.isClsFromPooler(), "MiniLM has no pooler: CLS = first token");
                double[][] batched = dropIn.embed(texts);
                double worst = 0;
                for (int i = 0; i < texts.size(); i++) {
                    double[] expected =
                            TinyBertParityTest.values(
                                    original.extract(new Label("x"), texts.get(i)));
                    assertEquals(384, expected.length);
                    assertArrayEquals(expected, batched[i], TOLERANCE, texts.get(i));
                    worst = Math.max(worst, TinyBertParityTest.maxAbsDiff(expected, batched[i]));
                }
                System.out.printf(
                        "all-MiniLM-L6-v2 %s max |drop-in - original| = %.3g%n", pooling, worst);
            }
        }
    }

    @Test
    void logisticRegressionTrainedOnTheOriginalPredictsTheSameOnTheDropIn() throws Exception {
        List<TestTexts.Labelled> train = TestTexts.labelled(80, 1);
        List<TestTexts.Labelled> test = TestTexts.labelled(60, 2);
        try (BERTFeatureExtractor<Label> original =
                        new BERTFeatureExtractor<>(
                                FACTORY,
                                TestModels.miniLmWithTribuoOutputs(),
                                TestModels.miniLmTokenizer(),
                                OutputPooling.MEAN,
                                512,
                                false);
                TilewiseBERTFeatureExtractor<Label> dropIn =
                        new TilewiseBERTFeatureExtractor<>(
                                FACTORY,
                                TestModels.miniLm(),
                                TestModels.miniLmTokenizer(),
                                OutputPooling.MEAN,
                                512,
                                false)) {
            MutableDataset<Label> data =
                    new MutableDataset<>(
                            new SimpleDataSourceProvenance("minilm-train", FACTORY), FACTORY);
            for (TestTexts.Labelled l : train) {
                data.add(original.extract(new Label(l.label()), l.text()));
            }
            Model<Label> model = new LogisticRegressionTrainer().train(data);

            List<Label> outputs = new ArrayList<>();
            List<String> texts = new ArrayList<>();
            for (TestTexts.Labelled l : test) {
                outputs.add(new Label(l.label()));
                texts.add(l.text());
            }
            List<Example<Label>> dropInExamples = dropIn.extract(outputs, texts);
            int correct = 0;
            for (int i = 0; i < test.size(); i++) {
                Prediction<Label> expected =
                        model.predict(original.extract(outputs.get(i), texts.get(i)));
                Prediction<Label> actual = model.predict(dropInExamples.get(i));
                assertEquals(
                        expected.getOutput().getLabel(),
                        actual.getOutput().getLabel(),
                        texts.get(i));
                assertEquals(expected.getOutput().getScore(), actual.getOutput().getScore(), 1e-4);
                if (actual.getOutput().getLabel().equals(test.get(i).label())) {
                    correct++;
                }
            }
            System.out.printf(
                    "all-MiniLM-L6-v2 MEAN + logistic regression: %d/%d correct%n",
                    correct, test.size());
        }
    }
}
