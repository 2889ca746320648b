/**
 * Real models shipped inside Maven jars (all-MiniLM-L6-v2, Tribuo's tinybert), copied to temporary
 * directories, and ONNX Runtime running them: the references of the encoder tests, benchmark and
 * demo.
 */
package io.github.tilewise.it.models;
