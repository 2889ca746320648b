/**
 * Texts in, vectors out, without DJL's Criteria: {@link
 * io.github.tilewise.djl.encoder.text.TextEncoder} and the tokenizer wrapper {@link
 * io.github.tilewise.djl.encoder.text.EncoderTokenizer} (Hugging Face {@code tokenizer.json},
 * padding to one batch, truncation or refusal at the position limit), and {@link
 * io.github.tilewise.djl.encoder.text.ModelDefaults} (pooling, normalisation and maximum length
 * taken from the model when the user leaves them out).
 */
package io.github.tilewise.djl.encoder.text;
