package io.github.tilewise.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.FileNotFoundException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** The executor-wide cache, without Spark: one load per spec, leases, eviction, failures. */
class ModelCacheTest {

    private static EncoderSpec spec(int maxLength) {
        return new EncoderSpec(
                TestModels.tinyBert().toString(), null, "fp32", "mean", false, maxLength, true);
    }

    @Test
    void concurrentTasksShareOneLoad() throws Exception {
        EncoderSpec spec = spec(31);
        long loads = ModelCache.loadCount();
        ExecutorService pool = Executors.newFixedThreadPool(6);
        try {
            List<Callable<ModelCache.Lease>> tasks = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                tasks.add(() -> ModelCache.acquire(spec));
            }
            List<ModelCache.Lease> leases = new ArrayList<>();
            for (Future<ModelCache.Lease> f : pool.invokeAll(tasks)) {
                leases.add(f.get());
            }
            assertEquals(loads + 1, ModelCache.loadCount());
            for (ModelCache.Lease l : leases) {
                assertSame(leases.get(0).encoder(), l.encoder());
                assertEquals(50, l.encoder().embed("shared").length);
            }
            for (ModelCache.Lease l : leases) {
                l.close();
                l.close(); // idempotent
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void unheldEncoderIsEvictedAndLoadedAgain() throws Exception {
        EncoderSpec spec = spec(33);
        long loads = ModelCache.loadCount();
        ModelCache.Lease lease = ModelCache.acquire(spec);
        var encoder = lease.encoder();
        ModelCache.evictUnused(); // a held encoder stays
        assertEquals(50, encoder.embed("still loaded").length);
        lease.close();
        assertEquals(1, ModelCache.evictUnused());
        assertThrows(IllegalStateException.class, () -> encoder.embed("closed"));
        try (ModelCache.Lease again = ModelCache.acquire(spec)) {
            assertEquals(50, again.encoder().embed("reloaded").length);
        }
        assertEquals(loads + 2, ModelCache.loadCount());
    }

    @Test
    void failedLoadIsNotCached() {
        EncoderSpec missing =
                new EncoderSpec("/nowhere/x.onnx", null, "fp32", null, null, null, true);
        assertThrows(FileNotFoundException.class, () -> ModelCache.acquire(missing));
        assertThrows(FileNotFoundException.class, () -> ModelCache.acquire(missing));
    }
}
