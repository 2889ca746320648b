package io.github.tilewise.spark;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** One local[2] Spark session for every test class of the JVM (started once, ~3 s). */
final class SparkTests {

    private static SparkSession session;

    private SparkTests() {}

    static synchronized SparkSession session() {
        if (session == null) {
            session =
                    SparkSession.builder()
                            .master("local[2]")
                            .appName("tilewise-spark-tests")
                            .config("spark.ui.enabled", "false")
                            .config("spark.sql.shuffle.partitions", "2")
                            .config("spark.driver.host", "127.0.0.1")
                            .config("spark.driver.bindAddress", "127.0.0.1")
                            .getOrCreate();
            session.sparkContext().setLogLevel("WARN");
        }
        return session;
    }

    /** A DataFrame {@code (id: int, text: string)} of the texts, in {@code partitions}. */
    static Dataset<Row> frame(List<String> texts, int partitions) {
        StructType schema =
                new StructType()
                        .add("id", DataTypes.IntegerType, false)
                        .add("text", DataTypes.StringType, true);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            rows.add(RowFactory.create(i, texts.get(i)));
        }
        return session()
                .createDataFrame(rows, schema)
                .repartition(partitions)
                .sortWithinPartitions("id");
    }
}
