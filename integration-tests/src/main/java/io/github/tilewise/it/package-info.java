/** End-to-end programs: the {@link io.github.tilewise.it.Demo} the README runs first. */
package io.github.tilewise.it;
