/** The runnable example: a corpus embedded into Parquet, then nearest neighbours in Spark SQL. */
package io.github.tilewise.spark.example;
