/**
 * Seeded reference checkpoints of the issue-16 architectures (BERT, DistilBERT, MPNet, RoBERTa,
 * XLM-RoBERTa, ModernBERT) and Hugging Face transformers' outputs for them: {@link
 * io.github.tilewise.it.reference.SeededCheckpoint} regenerates the weights bit-exactly and writes
 * a Hugging Face directory; {@link io.github.tilewise.it.reference.ReferenceOutputs} reads the
 * expected outputs.
 */
package io.github.tilewise.it.reference;
