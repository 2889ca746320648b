package io.github.tilewise.djl.encoder.checkpoint;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import org.junit.jupiter.api.function.Executable;

/** The assertion of every hostile-file test: the documented exception, naming what is wrong. */
final class Hostile {

    private Hostile() {}

    /**
     * Asserts that reading fails with a {@link MalformedModelException} whose message names every
     * fragment (the file, the tensor or entry, the field).
     */
    static MalformedModelException assertMalformed(Executable read, String... fragments) {
        MalformedModelException e = assertThrows(MalformedModelException.class, read);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' not named in: " + e.getMessage());
        }
        return e;
    }
}
