/** Long-running reliability checks: the soak of {@link io.github.tilewise.it.reliability.Soak}. */
package io.github.tilewise.it.reliability;
