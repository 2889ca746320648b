/**
 * Texts in, vectors out, without DJL's Criteria: {@link
 * io.github.tilewise.djl.encoder.text.TextEncoder} and the tokenizer wrapper {@link
 * io.github.tilewise.djl.encoder.text.EncoderTokenizer} (Hugging Face {@code tokenizer.json},
 * padding to one batch, truncation or refusal at the position limit).
 */
package io.github.tilewise.djl.encoder.text;
