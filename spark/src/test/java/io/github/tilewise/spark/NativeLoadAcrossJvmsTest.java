package io.github.tilewise.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.Tilewise;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several executors starting at once on one host: three JVMs extract and load the native library
 * into one empty cache directory at the same moment, and all load the verified file (the
 * thread-level race is covered by djl-extension's NativeLibraryLoaderTest).
 */
class NativeLoadAcrossJvmsTest {

    @TempDir Path tmp;

    /** The executor-like JVM: loads the library and prints its description. */
    public static final class Child {
        private Child() {}

        /**
         * Entry point.
         *
         * @param args none
         */
        public static void main(String[] args) {
            System.out.println(
                    Tilewise.isNativeAvailable()
                            ? "LOADED " + Tilewise.describe()
                            : "NOT " + Tilewise.describe());
        }
    }

    @Test
    void threeJvmsLoadFromOneFreshCacheAtOnce() throws Exception {
        Assumptions.assumeTrue(Tilewise.isNativeAvailable(), "native library not built here");
        Path cache = tmp.resolve("cache");
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            processes.add(
                    new ProcessBuilder(
                                    java,
                                    "-Dtilewise.cache.dir=" + cache,
                                    "-cp",
                                    System.getProperty("java.class.path"),
                                    Child.class.getName())
                            .redirectErrorStream(true)
                            .start());
        }
        for (Process p : processes) {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(0, p.waitFor(), out);
            assertTrue(out.contains("LOADED Tilewise"), out);
        }
    }
}
