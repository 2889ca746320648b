package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.oracle.labs.mlrg.olcut.config.ConfigurationManager;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tribuo.DataSource;
import org.tribuo.Model;
import org.tribuo.MutableDataset;
import org.tribuo.Prediction;
import org.tribuo.Trainer;
import org.tribuo.classification.Label;
import org.tribuo.classification.evaluation.LabelEvaluation;
import org.tribuo.classification.evaluation.LabelEvaluator;
import org.tribuo.data.text.TextFeatureExtractor;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor;

/**
 * The worked example of the README: one XML pipeline (data source, BERT extractor, logistic
 * regression) run with Tribuo's extractor and with the drop-in, whose configurations differ only in
 * the extractor's class name.
 */
class WorkedExampleTest {

    private static final String ORIGINAL = "text-classification-original.xml";
    private static final String TILEWISE = "text-classification-tilewise.xml";

    @Test
    void theTwoConfigurationsDifferOnlyInTheClassName() throws Exception {
        List<String> a = Files.readAllLines(resource(ORIGINAL), StandardCharsets.UTF_8);
        List<String> b = Files.readAllLines(resource(TILEWISE), StandardCharsets.UTF_8);
        assertEquals(a.size(), b.size());
        List<String> differences = new ArrayList<>();
        for (int i = 0; i < a.size(); i++) {
            if (!a.get(i).equals(b.get(i))) {
                differences.add(a.get(i) + " | " + b.get(i));
                assertEquals(
                        a.get(i)
                                .replace(
                                        BERTFeatureExtractor.class.getName(),
                                        TilewiseBERTFeatureExtractor.class.getName()),
                        b.get(i));
            }
        }
        assertEquals(1, differences.size(), differences.toString());
    }

    @Test
    void theDropInTrainsAndPredictsLikeTheOriginal() throws Exception {
        Run original = run(ORIGINAL);
        Run tilewise = run(TILEWISE);
        assertEquals(BERTFeatureExtractor.class, original.extractorClass);
        assertEquals(TilewiseBERTFeatureExtractor.class, tilewise.extractorClass);
        assertEquals(40, tilewise.predictions.size());
        assertEquals(original.predictions, tilewise.predictions);
        assertEquals(original.accuracy, tilewise.accuracy, 1e-12);
        assertTrue(tilewise.accuracy > 0.8, "accuracy " + tilewise.accuracy);
        System.out.printf(
                "worked example: accuracy original=%.3f tilewise=%.3f%n",
                original.accuracy, tilewise.accuracy);
    }

    private record Run(Class<?> extractorClass, List<String> predictions, double accuracy) {}

    @SuppressWarnings("unchecked")
    private static Run run(String config) throws Exception {
        TestModels.miniLmWithTribuoOutputs();
        TestModels.miniLmTokenizer();
        ConfigurationManager cm = new ConfigurationManager(resource(config).toString());
        cm.setGlobalProperty("modelDir", TestModels.dir().toString());
        cm.setGlobalProperty("dataDir", resource(config).getParent().toString());
        long start = System.nanoTime();
        TextFeatureExtractor<Label> extractor = (TextFeatureExtractor<Label>) cm.lookup("bert");
        System.out.printf(
                "%s: extractor loaded in %.1f s%n", config, (System.nanoTime() - start) / 1e9);
        try {
            DataSource<Label> train = (DataSource<Label>) cm.lookup("train");
            DataSource<Label> test = (DataSource<Label>) cm.lookup("test");
            Trainer<Label> trainer = (Trainer<Label>) cm.lookup("trainer");
            Model<Label> model = trainer.train(new MutableDataset<>(train));
            System.out.printf(
                    "%s: data read and model trained at %.1f s%n",
                    config, (System.nanoTime() - start) / 1e9);
            LabelEvaluation evaluation =
                    new LabelEvaluator().evaluate(model, new MutableDataset<>(test));
            List<String> predictions = new ArrayList<>();
            for (Prediction<Label> p : evaluation.getPredictions()) {
                predictions.add(p.getOutput().getLabel());
            }
            return new Run(extractor.getClass(), predictions, evaluation.accuracy());
        } finally {
            ((AutoCloseable) extractor).close();
            cm.close();
        }
    }

    static Path resource(String name) throws Exception {
        URL url = WorkedExampleTest.class.getResource(name);
        return Paths.get(url.toURI());
    }
}
