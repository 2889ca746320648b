package io.github.tilewise.tribuo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.oracle.labs.mlrg.olcut.config.ConfigurationManager;
import com.oracle.labs.mlrg.olcut.config.PropertyException;
import com.oracle.labs.mlrg.olcut.provenance.Provenance;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;
import org.tribuo.test.Helpers;

/** OLCUT configuration, provenance and the refusal of bad configurations at configuration time. */
class ConfigurationTest {

    @Test
    void configurationAndProvenanceRoundTrip() throws Exception {
        try (TilewiseBERTFeatureExtractor<Label> extractor =
                new TilewiseBERTFeatureExtractor<>(
                        new LabelFactory(),
                        TestModels.tinyBert(),
                        TestModels.tinyBertTokenizer(),
                        OutputPooling.CLS_AND_MEAN,
                        64,
                        false)) {
            Helpers.testConfigurableRoundtrip(extractor);
            TilewiseExtractorProvenance provenance = extractor.getProvenance();
            Helpers.testProvenanceMarshalling(provenance);
            Map<String, Provenance> configured = provenance.getConfiguredParameters();
            assertEquals("FP32", configured.get("precision").toString().replaceAll(".*=", ""));
            assertEquals(
                    sha256(TestModels.tinyBert()),
                    provenance.getModelHash().toLowerCase(Locale.ROOT));
            assertEquals(
                    sha256(TestModels.tinyBertTokenizer()),
                    provenance
                            .getInstanceValues()
                            .get(TilewiseExtractorProvenance.TOKENIZER_HASH)
                            .getValue()
                            .toString()
                            .toLowerCase(Locale.ROOT));
        }
    }

    @Test
    void swappingTheModelFileChangesTheProvenance() throws Exception {
        Path model = TestModels.dir().resolve("swapped.onnx");
        Files.copy(TestModels.miniLm(), model, StandardCopyOption.REPLACE_EXISTING);
        Map<String, String> props =
                Map.of(
                        "modelPath", model.toString(),
                        "tokenizerPath", TestModels.miniLmTokenizer().toString(),
                        "maxLength", "128");
        TilewiseExtractorProvenance before;
        try (TilewiseBERTFeatureExtractor<Label> extractor = load(props)) {
            before = extractor.getProvenance();
        }
        // Same weights, another graph (two outputs added): same path and configuration.
        Files.copy(
                TestModels.miniLmWithTribuoOutputs(), model, StandardCopyOption.REPLACE_EXISTING);
        try (TilewiseBERTFeatureExtractor<Label> extractor = load(props)) {
            TilewiseExtractorProvenance after = extractor.getProvenance();
            assertEquals(before.getConfiguredParameters(), after.getConfiguredParameters());
            assertNotEquals(before.getModelHash(), after.getModelHash());
            assertNotEquals(before, after);
            assertEquals(
                    sha256(TestModels.miniLmWithTribuoOutputs()),
                    after.getModelHash().toLowerCase(Locale.ROOT));
        }
    }

    @Test
    void anOriginalConfigurationLoadsWithOnlyTheTypeSwapped() throws Exception {
        Map<String, String> props = new LinkedHashMap<>();
        props.put("modelPath", TestModels.tinyBert().toString());
        props.put("tokenizerPath", TestModels.tinyBertTokenizer().toString());
        props.put("maxLength", "64");
        props.put("pooling", "MEAN");
        props.put("useCUDA", "false");
        TilewiseBERTFeatureExtractor<Label> extractor = load(props);
        try {
            assertEquals(64, extractor.getMaxLength());
            assertEquals(50, extractor.getDimension());
            assertEquals(Precision.FP32, extractor.getPrecision());
        } finally {
            extractor.close();
        }
        assertThrows(IllegalStateException.class, () -> extractor.embed("closed"));
    }

    @Test
    void badConfigurationsNameTheField() throws Exception {
        Path model = TestModels.tinyBert();
        Path tokenizer = TestModels.tinyBertTokenizer();
        Path garbage = TestModels.dir().resolve("garbage.onnx");
        byte[] noise = new byte[4096];
        new Random(3).nextBytes(noise);
        Files.write(garbage, noise);

        assertRefused(
                "modelPath",
                Map.of("modelPath", model + ".missing", "tokenizerPath", tokenizer.toString()));
        assertRefused(
                "modelPath",
                Map.of("modelPath", garbage.toString(), "tokenizerPath", tokenizer.toString()));
        assertRefused(
                "tokenizerPath",
                Map.of("modelPath", model.toString(), "tokenizerPath", tokenizer + ".missing"));
        assertRefused(
                "tokenizerPath",
                Map.of("modelPath", model.toString(), "tokenizerPath", model.toString()));
        // all-MiniLM-L6-v2's tokenizer has 30522 tokens; tinybert's embedding table 1656 rows.
        assertRefused(
                "tokenizerPath",
                Map.of(
                        "modelPath",
                        model.toString(),
                        "tokenizerPath",
                        TestModels.miniLmTokenizer().toString()));
        // tinybert has 100 positions.
        assertRefused(
                "maxLength",
                Map.of(
                        "modelPath",
                        model.toString(),
                        "tokenizerPath",
                        tokenizer.toString(),
                        "maxLength",
                        "101"));
        assertRefused(
                "maxLength",
                Map.of(
                        "modelPath",
                        model.toString(),
                        "tokenizerPath",
                        tokenizer.toString(),
                        "maxLength",
                        "1"));
        assertRefused(
                "pooling",
                Map.of(
                        "modelPath",
                        model.toString(),
                        "tokenizerPath",
                        tokenizer.toString(),
                        "pooling",
                        "AVERAGE"));
        assertRefused(
                "precision",
                Map.of(
                        "modelPath",
                        model.toString(),
                        "tokenizerPath",
                        tokenizer.toString(),
                        "precision",
                        "INT4"));
        assertRefused(
                "batchSize",
                Map.of(
                        "modelPath",
                        model.toString(),
                        "tokenizerPath",
                        tokenizer.toString(),
                        "batchSize",
                        "0"));
    }

    @Test
    void maxLengthAtThePositionTableIsAccepted() throws Exception {
        TilewiseBERTFeatureExtractor<Label> extractor =
                load(
                        Map.of(
                                "modelPath", TestModels.tinyBert().toString(),
                                "tokenizerPath", TestModels.tinyBertTokenizer().toString(),
                                "maxLength", "100"));
        try (extractor) {
            assertEquals(100, extractor.getMaxLength());
            assertEquals(98, extractor.tokenize("the ball ".repeat(80)).size());
        }
    }

    private static void assertRefused(String field, Map<String, String> props) throws Exception {
        PropertyException e =
                assertThrows(PropertyException.class, () -> load(props).close(), props.toString());
        assertEquals(field, e.getProperty(), e.getMessage());
        assertTrue(e.getMessage() != null && !e.getMessage().isEmpty());
    }

    @SuppressWarnings("unchecked")
    private static TilewiseBERTFeatureExtractor<Label> load(Map<String, String> props)
            throws Exception {
        StringBuilder xml = new StringBuilder();
        xml.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config>\n");
        xml.append(
                "  <component name=\"labels\" type=\"org.tribuo.classification.LabelFactory\"/>\n");
        xml.append("  <component name=\"bert\" type=\"")
                .append(TilewiseBERTFeatureExtractor.class.getName())
                .append("\">\n");
        xml.append("    <property name=\"outputFactory\" value=\"labels\"/>\n");
        for (Map.Entry<String, String> e : props.entrySet()) {
            xml.append("    <property name=\"")
                    .append(e.getKey())
                    .append("\" value=\"")
                    .append(e.getValue())
                    .append("\"/>\n");
        }
        xml.append("  </component>\n</config>\n");
        Path file = Files.createTempFile(TestModels.dir(), "config", ".xml");
        Files.writeString(file, xml, StandardCharsets.UTF_8);
        ConfigurationManager cm = new ConfigurationManager(file.toString());
        return (TilewiseBERTFeatureExtractor<Label>) cm.lookup("bert");
    }

    private static String sha256(Path file) throws Exception {
        return HexFormat.of()
                .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
