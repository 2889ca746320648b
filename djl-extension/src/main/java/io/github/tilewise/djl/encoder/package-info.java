/**
 * Faithful BERT-family encoder blocks for DJL: {@link
 * io.github.tilewise.djl.encoder.TransformerEncoder} ({@link
 * io.github.tilewise.djl.encoder.BertEmbeddings}, {@link io.github.tilewise.djl.encoder.BertLayer}s
 * with post-LayerNorm, GELU feed-forward and self-attention on {@link
 * io.github.tilewise.djl.attention.FusedAttention}, the pooler) and {@link
 * io.github.tilewise.djl.encoder.TextEncoderBlock}, which adds pooling ({@link
 * io.github.tilewise.djl.encoder.Pooling}), L2 normalisation and a classifier. Configuration
 * ({@link io.github.tilewise.djl.encoder.EncoderConfig}) comes from the checkpoint; parameters
 * carry their Hugging Face names ({@link io.github.tilewise.djl.encoder.CheckpointParameter}).
 */
package io.github.tilewise.djl.encoder;
