package io.github.tilewise.it.reliability;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.it.bench.PeakMemory;
import io.github.tilewise.it.models.RealModels;
import java.nio.file.Path;
import java.util.logging.Logger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Resident memory stays flat (within 5% of its value after a warm-up) over 10,000 forwards of one
 * loaded model and over 200 load-predict-close cycles, fp32 and INT8, on Tribuo's real tinybert.
 * {@code exec:exec@soak} runs the same on all-MiniLM-L6-v2 for the report.
 */
class SoakTest {

    private static final Logger logger = Logger.getLogger(SoakTest.class.getName());

    @ParameterizedTest
    @ValueSource(strings = {"fp32", "int8"})
    void tenThousandForwardsKeepMemoryFlat(String precision) throws Exception {
        Assumptions.assumeTrue(PeakMemory.residentBytes() > 0, "needs /proc/self/status");
        Path model = RealModels.onnxFile(RealModels.tinyBert());
        Soak.Result r = Soak.forwards(model, precision, 10_000);
        logger.info(precision + " forwards: " + r.warmMb + " -> " + r.endMb + " MiB");
        assertTrue(
                r.growthPercent() < 5,
                precision + ": native resident memory grew " + r.growthPercent() + "%");
    }

    @ParameterizedTest
    @ValueSource(strings = {"fp32", "int8"})
    void twoHundredReloadsKeepMemoryFlat(String precision) throws Exception {
        Assumptions.assumeTrue(PeakMemory.residentBytes() > 0, "needs /proc/self/status");
        Path model = RealModels.onnxFile(RealModels.tinyBert());
        Soak.Result r = Soak.reloads(model, precision, 200);
        logger.info(precision + " reloads: " + r.warmMb + " -> " + r.endMb + " MiB");
        assertTrue(
                r.growthPercent() < 5,
                precision + ": native resident memory grew " + r.growthPercent() + "%");
    }
}
