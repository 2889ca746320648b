package io.github.tilewise.spark.example;

import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.encoder.text.MixedLengthCorpus;
import io.github.tilewise.djl.encoder.text.TextEncoder;
import io.github.tilewise.spark.EncoderSpec;
import io.github.tilewise.spark.ModelCache;
import io.github.tilewise.spark.TextEmbedder;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;

/**
 * The runnable example: embeds a corpus file (one text per line) into Parquet with {@link
 * TextEmbedder}, then finds the nearest neighbours of a query with Spark SQL (the dot product of
 * L2-normalised vectors, i.e. the cosine, through {@code zip_with} and {@code aggregate}).
 *
 * <p>Arguments (all optional): {@code --corpus PATH} (a local file or a Hadoop URI such as {@code
 * hdfs://...}; default {@code target/example/corpus.txt}; a local file is written if missing:
 * {@code --texts} mixed-length texts, the corpus of the integration tests' {@code CorpusBenchmark},
 * seed 42), {@code --texts N} (2000), {@code --model PATH} (default: all-MiniLM-L6-v2 from the
 * LangChain4j jar when it is on the classpath), {@code --out DIR} ({@code
 * target/example/embeddings.parquet}), {@code --query TEXT}, {@code --k N} (5), {@code --partitions
 * N} (4 × the default parallelism: short tasks, so no core idles long at the end), {@code --batch
 * N} (32), {@code --no-sort} ({@code sortByLength} false), {@code --precision P} (fp32), {@code
 * --compare} (also time one {@code TextEncoder} in a plain loop over the same texts, batches of
 * {@code --batch} in file order, in the same JVM, on {@code --single-threads N} native threads (0,
 * the default: every core)), {@code --repeat N} (timed runs of the job: 3 with {@code --compare},
 * else 1), {@code --master URL} (default: the one {@code spark-submit} gives, else {@code
 * local[*]}).
 *
 * <p>It prints, per run, {@code spark texts=... partitions=... s=... texts_per_s=...
 * model_loads=... executors=...} (the timed job reads the corpus, embeds it and writes Parquet;
 * with {@code --compare}, the model was loaded by an untimed warm-up run of the same job first, as
 * a long-running cluster would have it; {@code model_loads} sums {@link ModelCache#loadCount()}
 * over the executors) and, with {@code --compare}, first {@code single-jvm texts=... s=...
 * texts_per_s=...} (the runs alternate, so both see the same machine); then {@code spark-summary}
 * with the median and the range (min-max) of each and of their per-run ratio.
 */
public final class EmbedCorpus {

    /** Native threads of the single-JVM baseline ({@code --single-threads}; 0: every core). */
    private static int singleThreads;

    private EmbedCorpus() {}

    /**
     * Runs the example.
     *
     * @param args see the class comment
     * @throws Exception if a file cannot be read or written, or the model cannot be loaded
     */
    public static void main(String[] args) throws Exception {
        Map<String, String> a = parse(args);
        int count = Integer.parseInt(a.getOrDefault("texts", "2000"));
        String corpusPath = a.getOrDefault("corpus", "target/example/corpus.txt");
        // A Hadoop URI (hdfs://, s3a://) is read by Spark only; a local path may be generated.
        boolean local = !corpusPath.contains("://");
        Path corpus = local ? Paths.get(corpusPath) : null;
        if (local && !Files.exists(corpus)) {
            Files.createDirectories(corpus.toAbsolutePath().getParent());
            Files.write(corpus, MixedLengthCorpus.texts(count), StandardCharsets.UTF_8);
            System.out.println("# wrote " + count + " mixed-length texts to " + corpus);
        }
        String model = a.containsKey("model") ? a.get("model") : miniLmFromClasspath().toString();
        String out = a.getOrDefault("out", "target/example/embeddings.parquet");
        String query = a.getOrDefault("query", "how do executors share one model on a cluster");
        int k = Integer.parseInt(a.getOrDefault("k", "5"));
        int batch = Integer.parseInt(a.getOrDefault("batch", "32"));
        singleThreads = Integer.parseInt(a.getOrDefault("single-threads", "0"));
        String precision = a.getOrDefault("precision", "fp32");
        if (a.containsKey("compare") && !local) {
            throw new IllegalArgumentException(
                    "--compare reads the corpus in this JVM: give a local path");
        }
        List<String> texts =
                a.containsKey("compare")
                        ? Files.readAllLines(corpus, StandardCharsets.UTF_8)
                        : null;

        System.out.println("# " + Tilewise.describe());
        // The baseline's encoder is loaded before Spark starts and kept for every run.
        TextEncoder single =
                a.containsKey("compare")
                        ? new EncoderSpec(model, null, precision, null, true, null, true).load()
                        : null;

        SparkSession.Builder builder = SparkSession.builder().appName("tilewise-embed-corpus");
        if (a.containsKey("master")) {
            builder.master(a.get("master"));
        } else if (!new org.apache.spark.SparkConf().contains("spark.master")) {
            builder.master("local[*]");
        }
        SparkSession spark = builder.getOrCreate();
        spark.sparkContext().setLogLevel("WARN");
        int partitions =
                Integer.parseInt(
                        a.getOrDefault(
                                "partitions",
                                Integer.toString(4 * spark.sparkContext().defaultParallelism())));

        TextEmbedder embedder =
                new TextEmbedder()
                        .setModelPath(model)
                        .setPrecision(precision)
                        .setNormalize(true)
                        .setBatchSize(batch)
                        .setSortByLength(!a.containsKey("no-sort"))
                        .setInputCol("text")
                        .setOutputCol("embedding");
        Dataset<Row> documents =
                spark.read()
                        .text(corpusPath)
                        .withColumnRenamed("value", "text")
                        .withColumn("id", functions.monotonically_increasing_id())
                        .repartition(partitions);

        if (single != null) {
            // The benchmark's warm-up, untimed: every executor loads the model once (a
            // long-running cluster keeps it) and the JIT sees the whole job once.
            embedder.transform(documents).write().mode(SaveMode.Overwrite).parquet(out);
            singleJvm(single, texts, batch, precision, 0);
        }
        int repeat = Integer.parseInt(a.getOrDefault("repeat", single != null ? "3" : "1"));
        double[] sparkRates = new double[repeat];
        double[] singleRates = new double[repeat];
        double[] ratios = new double[repeat];
        for (int run = 1; run <= repeat; run++) {
            // Interleaved: the single JVM, then Spark, in each run (the machine drifts).
            if (single != null) {
                singleRates[run - 1] = singleJvm(single, texts, batch, precision, run);
            }
            long start = System.nanoTime();
            embedder.transform(documents).write().mode(SaveMode.Overwrite).parquet(out);
            double seconds = (System.nanoTime() - start) / 1e9;
            long rows = spark.read().parquet(out).count();
            long[] loads = modelLoads(spark);
            sparkRates[run - 1] = rows / seconds;
            ratios[run - 1] = single != null ? sparkRates[run - 1] / singleRates[run - 1] : 0;
            System.out.printf(
                    Locale.ROOT,
                    "spark texts=%d partitions=%d s=%.2f texts_per_s=%.1f model_loads=%d"
                            + " executors=%d precision=%s master=%s run=%d%n",
                    rows,
                    partitions,
                    seconds,
                    sparkRates[run - 1],
                    loads[0],
                    loads[1],
                    precision,
                    spark.sparkContext().master(),
                    run);
        }
        System.out.printf(
                Locale.ROOT,
                "spark-summary runs=%d spark_texts_per_s=%s%s%n",
                repeat,
                spread(sparkRates),
                single != null
                        ? " single_jvm_texts_per_s="
                                + spread(singleRates)
                                + " spark/single="
                                + spread(ratios)
                        : "");
        if (single != null) {
            single.close();
        }

        // Nearest neighbours with Spark SQL: the query embedded by the same transformer.
        embedder.transform(spark.createDataset(List.of(query), Encoders.STRING()).toDF("text"))
                .createOrReplaceTempView("query");
        spark.read().parquet(out).createOrReplaceTempView("corpus");
        System.out.println("# nearest neighbours of \"" + query + "\":");
        spark.sql(
                        "SELECT c.id, aggregate(zip_with(c.embedding, q.embedding, (x, y) -> x * y),"
                                + " 0D, (acc, v) -> acc + v) AS cosine, substr(c.text, 1, 80) AS"
                                + " text FROM corpus c CROSS JOIN query q ORDER BY cosine DESC"
                                + " LIMIT "
                                + k)
                .collectAsList()
                .forEach(
                        r ->
                                System.out.printf(
                                        Locale.ROOT,
                                        "%8d  %.4f  %s%n",
                                        r.getLong(0),
                                        r.getDouble(1),
                                        r.getString(2)));
        spark.stop();
    }

    /**
     * Model loads of every executor that answers a job of many small tasks: {@code {sum of the
     * executors' loads, number of executors}}.
     */
    private static long[] modelLoads(SparkSession spark) {
        int tasks = 4 * spark.sparkContext().defaultParallelism();
        MapPartitionsFunction<Long, String> probe =
                it ->
                        List.of(SparkEnv.get().executorId() + "=" + ModelCache.loadCount())
                                .iterator();
        List<String> answers =
                spark.range(0, tasks, 1, tasks)
                        .mapPartitions(probe, Encoders.STRING())
                        .distinct()
                        .collectAsList();
        long loads = 0;
        for (String s : answers) {
            loads += Long.parseLong(s.substring(s.lastIndexOf('=') + 1));
        }
        return new long[] {loads, answers.size()};
    }

    /**
     * One TextEncoder in a plain loop, every core, batches of {@code batch} in file order: the
     * single-JVM baseline. Run 0 is the warm-up and prints nothing.
     *
     * @return texts per second
     */
    private static double singleJvm(
            TextEncoder encoder, List<String> texts, int batch, String precision, int run) {
        int threads = Tilewise.isNativeAvailable() ? Tilewise.getNumThreads() : 0;
        if (threads > 0) {
            Tilewise.setNumThreads(singleThreads); // 0: every core (Spark's tasks set their own)
        }
        try {
            List<String> timed =
                    run == 0 ? texts.subList(0, Math.min(4 * batch, texts.size())) : texts;
            long start = System.nanoTime();
            for (int from = 0; from < timed.size(); from += batch) {
                encoder.embed(timed.subList(from, Math.min(timed.size(), from + batch)));
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (run > 0) {
                System.out.printf(
                        Locale.ROOT,
                        "single-jvm texts=%d s=%.2f texts_per_s=%.1f precision=%s threads=%d"
                                + " run=%d%n",
                        timed.size(),
                        seconds,
                        timed.size() / seconds,
                        precision,
                        Tilewise.isNativeAvailable() ? Tilewise.getNumThreads() : 0,
                        run);
            }
            return timed.size() / seconds;
        } finally {
            if (threads > 0) {
                Tilewise.setNumThreads(threads);
            }
        }
    }

    /** {@code median (min–max)} of the values. */
    private static String spread(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        double median =
                v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
        return String.format(
                Locale.ROOT, "%s(%s-%s)", fmt(median), fmt(v[0]), fmt(v[v.length - 1]));
    }

    private static String fmt(double x) {
        return x < 10
                ? String.format(Locale.ROOT, "%.3f", x)
                : String.format(Locale.ROOT, "%.1f", x);
    }

    private static Path miniLmFromClasspath() throws IOException {
        Path dir = Paths.get("target/example/all-minilm-l6-v2");
        Files.createDirectories(dir);
        String[][] files = {
            {"all-minilm-l6-v2.onnx", "all-minilm-l6-v2.onnx"},
            {"all-minilm-l6-v2-tokenizer.json", "tokenizer.json"}
        };
        for (String[] f : files) {
            Path target = dir.resolve(f[1]);
            if (Files.exists(target)) {
                continue;
            }
            try (InputStream in = EmbedCorpus.class.getClassLoader().getResourceAsStream(f[0])) {
                if (in == null) {
                    throw new IllegalArgumentException(
                            "no --model given and all-MiniLM-L6-v2 is not on the classpath");
                }
                Files.copy(in, target);
            }
        }
        return dir.toAbsolutePath();
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> out = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument " + args[i]);
            }
            String key = args[i].substring(2);
            if ("compare".equals(key) || "no-sort".equals(key)) {
                out.put(key, "true");
            } else if (i + 1 < args.length) {
                out.put(key, args[++i]);
            } else {
                throw new IllegalArgumentException(args[i] + " needs a value");
            }
        }
        return out;
    }
}
