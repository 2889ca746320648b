/**
 * Checkpoint import: {@link io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint#read} reads
 * ONNX exports ({@link io.github.tilewise.djl.encoder.checkpoint.OnnxCheckpointReader}: anonymous
 * weights named from the graph, configuration inferred and cross-checked) and Hugging Face
 * directories ({@link io.github.tilewise.djl.encoder.checkpoint.HuggingFaceCheckpointReader}:
 * {@code config.json} + {@link io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile}) into
 * fp32 tensors under Hugging Face names; every problem is an exception naming the file. {@link
 * io.github.tilewise.djl.encoder.checkpoint.SentenceTransformerConfig} reads what a
 * sentence-transformers directory says about pooling ({@code modules.json} and its modules' files).
 *
 * <p>Files are untrusted input: every number read from one (dims, data lengths, offsets, {@code
 * config.json} sizes) goes through {@link
 * io.github.tilewise.djl.encoder.checkpoint.CheckpointLimits} before anything is allocated from it,
 * and a configuration is checked against the weights actually present before any layer is built, so
 * memory and time stay proportional to the files' sizes.
 */
package io.github.tilewise.djl.encoder.checkpoint;
