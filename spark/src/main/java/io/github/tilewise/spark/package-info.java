/**
 * Tilewise on Apache Spark: ML transformers ({@link io.github.tilewise.spark.TextEmbedder}, {@link
 * io.github.tilewise.spark.TextClassifier}) that run a Tilewise encoder over a DataFrame column,
 * with the model loaded once per executor JVM ({@link io.github.tilewise.spark.ModelCache}).
 */
package io.github.tilewise.spark;
