package io.github.tilewise.djl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NativeLibraryTest {

    @Test
    void loadsOnLinuxX86AndReportsTheCpu() {
        assertTrue(Tilewise.isNativeAvailable(), Tilewise.describe());
        assertTrue(Tilewise.activeIsa().ordinal() <= Tilewise.detectedIsa().ordinal());
        assertTrue(Tilewise.describe().contains("isa="), Tilewise.describe());
    }

    @Test
    void everyIsaUpToTheDetectedOneCanBeSelected() {
        Tilewise.Isa original = Tilewise.activeIsa();
        try {
            for (Tilewise.Isa isa : Tilewise.Isa.values()) {
                if (isa.ordinal() <= Tilewise.detectedIsa().ordinal()) {
                    Tilewise.setIsa(isa);
                    assertEquals(isa, Tilewise.activeIsa());
                } else {
                    assertThrows(UnsupportedOperationException.class, () -> Tilewise.setIsa(isa));
                }
            }
        } finally {
            Tilewise.setIsa(original);
        }
    }

    @Test
    void threadCountCanBeChanged() {
        int original = Tilewise.getNumThreads();
        try {
            Tilewise.setNumThreads(1);
            assertEquals(1, Tilewise.getNumThreads());
        } finally {
            Tilewise.setNumThreads(original);
        }
    }

    @Test
    void isaNamesParse() {
        assertEquals(Tilewise.Isa.AVX512, Tilewise.Isa.fromName(" AVX512 "));
        assertThrows(IllegalArgumentException.class, () -> Tilewise.Isa.fromName("sse9"));
    }
}
