package io.github.tilewise.spark;

import io.github.tilewise.djl.Tilewise;
import java.util.logging.Logger;
import org.apache.spark.TaskContext;

/**
 * Sizes the native worker pool of an executor JVM from {@code spark.task.cpus}, once, before its
 * first model runs.
 *
 * <p>Tilewise has one process-wide pool of native threads, and one parallel kernel runs on it at a
 * time; a kernel called while another uses the pool runs on its caller's thread alone. An executor
 * with {@code spark.executor.cores = E} runs {@code E / spark.task.cpus} tasks at once, so a pool
 * of {@code spark.task.cpus} threads gives each task about its share of cores: with the default of
 * one CPU per task, every task embeds on its own thread, in parallel with the others, and no thread
 * waits for another; with {@code spark.task.cpus = E}, one task at a time uses every core. The
 * JVM's {@code -Dtilewise.threads} (e.g. in {@code spark.executor.extraJavaOptions}) wins over
 * this.
 */
final class ExecutorThreads {

    private static final Logger LOG = Logger.getLogger(ExecutorThreads.class.getName());
    private static boolean configured;

    private ExecutorThreads() {}

    /**
     * Sizes the pool on the first call in this JVM.
     *
     * @param context the running task, or null outside a task
     */
    static synchronized void configure(TaskContext context) {
        if (configured || context == null) {
            return;
        }
        configured = true;
        if (System.getProperty("tilewise.threads") != null || !Tilewise.isNativeAvailable()) {
            LOG.info(Tilewise.describe());
            return;
        }
        int cpus = Math.max(1, context.cpus());
        if (Tilewise.getNumThreads() != cpus) {
            Tilewise.setNumThreads(cpus);
        }
        LOG.info(Tilewise.describe() + " (threads = spark.task.cpus)");
    }
}
