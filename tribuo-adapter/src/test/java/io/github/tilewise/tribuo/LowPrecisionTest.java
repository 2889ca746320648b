package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.lowp.Precision;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tribuo.Example;
import org.tribuo.Model;
import org.tribuo.MutableDataset;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.classification.sgd.linear.LogisticRegressionTrainer;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;
import org.tribuo.provenance.SimpleDataSourceProvenance;

/**
 * INT8 features of all-MiniLM-L6-v2: a logistic regression trained on fp32 features classifies INT8
 * features within one accuracy point of fp32 ones, on a labelled set with overlapping classes.
 */
class LowPrecisionTest {

    private static final LabelFactory FACTORY = new LabelFactory();

    @Test
    void int8FeaturesClassifyWithinOnePointOfFp32() throws Exception {
        List<TestTexts.Labelled> train = TestTexts.labelled(150, 21, 5);
        List<TestTexts.Labelled> test = TestTexts.labelled(300, 22, 5);
        List<Label> trainLabels = labels(train);
        List<Label> testLabels = labels(test);
        double[][] fp32;
        Model<Label> model;
        try (TilewiseBERTFeatureExtractor<Label> extractor = extractor(Precision.FP32)) {
            MutableDataset<Label> data =
                    new MutableDataset<>(new SimpleDataSourceProvenance("train", FACTORY), FACTORY);
            data.addAll(extractor.extract(trainLabels, texts(train)));
            model = new LogisticRegressionTrainer().train(data);
            fp32 = extractor.embed(texts(test));
        }
        double[][] int8;
        List<Example<Label>> int8Examples;
        try (TilewiseBERTFeatureExtractor<Label> extractor = extractor(Precision.INT8)) {
            assertEquals(Precision.INT8, extractor.getPrecision());
            int8 = extractor.embed(texts(test));
            int8Examples = extractor.extract(testLabels, texts(test));
        }
        int correctFp32 = 0;
        int correctInt8 = 0;
        int agree = 0;
        double minCosine = 1;
        try (TilewiseBERTFeatureExtractor<Label> fp32Extractor = extractor(Precision.FP32)) {
            List<Example<Label>> fp32Examples = fp32Extractor.extract(testLabels, texts(test));
            for (int i = 0; i < test.size(); i++) {
                String expected = test.get(i).label();
                String a = model.predict(fp32Examples.get(i)).getOutput().getLabel();
                String b = model.predict(int8Examples.get(i)).getOutput().getLabel();
                correctFp32 += a.equals(expected) ? 1 : 0;
                correctInt8 += b.equals(expected) ? 1 : 0;
                agree += a.equals(b) ? 1 : 0;
                minCosine = Math.min(minCosine, cosine(fp32[i], int8[i]));
            }
        }
        double accFp32 = correctFp32 / (double) test.size();
        double accInt8 = correctInt8 / (double) test.size();
        System.out.printf(
                "all-MiniLM-L6-v2 MEAN: accuracy fp32=%.3f int8=%.3f, agreement %d/%d, min cosine"
                        + " %.5f%n",
                accFp32, accInt8, agree, test.size(), minCosine);
        assertTrue(
                accFp32 > 0.7 && accFp32 < 1.0,
                "the set should be neither trivial nor noise: " + accFp32);
        assertTrue(Math.abs(accFp32 - accInt8) <= 0.01, "fp32 " + accFp32 + " int8 " + accInt8);
        assertTrue(minCosine > 0.99, "min cosine " + minCosine);
    }

    private static TilewiseBERTFeatureExtractor<Label> extractor(Precision precision) {
        return new TilewiseBERTFeatureExtractor<>(
                FACTORY,
                TestModels.miniLm(),
                TestModels.miniLmTokenizer(),
                OutputPooling.MEAN,
                128,
                false,
                precision,
                32);
    }

    private static List<Label> labels(List<TestTexts.Labelled> set) {
        List<Label> out = new ArrayList<>();
        for (TestTexts.Labelled l : set) {
            out.add(new Label(l.label()));
        }
        return out;
    }

    private static List<String> texts(List<TestTexts.Labelled> set) {
        List<String> out = new ArrayList<>();
        for (TestTexts.Labelled l : set) {
            out.add(l.text());
        }
        return out;
    }

    private static double cosine(double[] a, double[] b) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
