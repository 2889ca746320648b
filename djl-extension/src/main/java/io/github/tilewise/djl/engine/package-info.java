/**
 * The DJL engine {@code "Tilewise"} ({@link io.github.tilewise.djl.engine.TilewiseEngine}, found by
 * {@code ServiceLoader}): a hybrid engine whose models ({@link
 * io.github.tilewise.djl.engine.TilewiseModel}) are encoder blocks loaded from ONNX files or
 * Hugging Face directories, with NDArrays on DJL's PyTorch engine; {@link
 * io.github.tilewise.djl.engine.EncoderTranslatorFactory} makes the {@code String -> float[]} and
 * {@code String -> Classifications} translators, batching a {@code batchPredict} into one padded
 * forward pass.
 */
package io.github.tilewise.djl.engine;
