package io.github.tilewise.it.bench;

import io.github.tilewise.djl.Tilewise;

/** Thread counts shared by the benchmarks, set before any engine starts. */
final class BenchmarkThreads {

    private BenchmarkThreads() {}

    /**
     * Sets PyTorch's intra-op threads (read once, when its engine starts; inter-op fixed at one)
     * and Tilewise's native pool, then prints the {@code # Tilewise ...} header line.
     *
     * @param threads Tilewise's native threads
     * @param pytorchThreads PyTorch's intra-op threads
     */
    static void configure(int threads, int pytorchThreads) {
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(pytorchThreads));
        System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        if (Tilewise.isNativeAvailable()) {
            Tilewise.setNumThreads(threads);
        }
        System.out.println("# " + Tilewise.describe());
    }
}
