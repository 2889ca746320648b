/**
 * Checkpoint import: {@link io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint#read} reads
 * ONNX exports ({@link io.github.tilewise.djl.encoder.checkpoint.OnnxCheckpointReader}: anonymous
 * weights named from the graph, configuration inferred and cross-checked) and Hugging Face
 * directories ({@link io.github.tilewise.djl.encoder.checkpoint.HuggingFaceCheckpointReader}:
 * {@code config.json} + {@link io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile}) into
 * fp32 tensors under Hugging Face names; every problem is an exception naming the file.
 */
package io.github.tilewise.djl.encoder.checkpoint;
