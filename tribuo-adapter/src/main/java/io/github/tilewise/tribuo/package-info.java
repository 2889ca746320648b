/** Tilewise for Tribuo: drop-in text feature extractors backed by Tilewise encoders. */
package io.github.tilewise.tribuo;
