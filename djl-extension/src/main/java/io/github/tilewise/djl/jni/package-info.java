/**
 * Loading of {@code libtilewise} and its JNI entry points. Internal: use the public operators in
 * the other packages.
 */
package io.github.tilewise.djl.jni;
