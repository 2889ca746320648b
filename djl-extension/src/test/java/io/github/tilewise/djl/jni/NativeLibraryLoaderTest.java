package io.github.tilewise.djl.jni;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library cache attacked as a hostile local user would: planted, truncated and linked files,
 * linked and shared directories, and several extractors at once. The helper runs on bytes the test
 * controls, so nothing here depends on {@code System.load}, except the last test, which checks that
 * the real {@code libtilewise} was loaded from a verified cache file.
 */
class NativeLibraryLoaderTest {

    private static final String NAME = "libfake.so";
    private static final byte[] LIBRARY = randomBytes(200_000, 1);

    @TempDir Path tmp;

    @BeforeAll
    static void posixOnly() {
        assumeTrue(FileSystems.getDefault().supportedFileAttributeViews().contains("posix"));
    }

    @Test
    void extractsIntoOwnerOnlyDirectoriesAndReusesTheVerifiedFile() throws IOException {
        Path root = tmp.resolve("a/b/cache");
        Path path = NativeLibraryLoader.extract(LIBRARY, NAME, root);
        assertEquals(root.toRealPath().resolve(hashDir(LIBRARY)).resolve(NAME), path);
        assertArrayEquals(LIBRARY, Files.readAllBytes(path));
        for (Path dir : List.of(tmp.resolve("a"), tmp.resolve("a/b"), root, path.getParent())) {
            assertEquals("rwx------", permissions(dir), dir.toString());
        }
        assertEquals("r-x------", permissions(path));

        Object inode = Files.readAttributes(path, "unix:ino").get("ino");
        assertEquals(path, NativeLibraryLoader.extract(LIBRARY, NAME, root));
        assertEquals(inode, Files.readAttributes(path, "unix:ino").get("ino"), "not rewritten");
    }

    @Test
    void plantedFileOfTheRightSizeIsReplaced() throws IOException {
        Path path = NativeLibraryLoader.extract(LIBRARY, NAME, tmp);
        byte[] planted = randomBytes(LIBRARY.length, 2);
        overwrite(path, planted);

        assertEquals(path, NativeLibraryLoader.extract(LIBRARY, NAME, tmp));
        assertArrayEquals(LIBRARY, Files.readAllBytes(path));
    }

    @Test
    void truncatedFileIsReplaced() throws IOException {
        Path path = NativeLibraryLoader.extract(LIBRARY, NAME, tmp);
        overwrite(path, Arrays.copyOf(LIBRARY, LIBRARY.length / 3));

        assertEquals(path, NativeLibraryLoader.extract(LIBRARY, NAME, tmp));
        assertArrayEquals(LIBRARY, Files.readAllBytes(path));
    }

    @Test
    void fileWritableByOthersIsReplaced() throws IOException {
        Path path = NativeLibraryLoader.extract(LIBRARY, NAME, tmp);
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rwxrwxrwx"));

        assertEquals(path, NativeLibraryLoader.extract(LIBRARY, NAME, tmp));
        assertEquals("r-x------", permissions(path));
    }

    @Test
    void linkInPlaceOfTheFileIsReplacedNotFollowed() throws IOException {
        Path path = NativeLibraryLoader.extract(LIBRARY, NAME, tmp.resolve("cache"));
        Path outside = Files.write(tmp.resolve("attacker.so"), randomBytes(LIBRARY.length, 3));
        byte[] attackerBytes = Files.readAllBytes(outside);
        Files.delete(path);
        Files.createSymbolicLink(path, outside);

        assertEquals(path, NativeLibraryLoader.extract(LIBRARY, NAME, tmp.resolve("cache")));
        assertTrue(Files.isRegularFile(path, NOFOLLOW_LINKS), "a real file now");
        assertArrayEquals(LIBRARY, Files.readAllBytes(path));
        assertArrayEquals(attackerBytes, Files.readAllBytes(outside), "not written through");
    }

    @Test
    void linkInPlaceOfTheHashDirectoryIsMovedAsideNotFollowed() throws IOException {
        Path root = Files.createDirectory(tmp.resolve("cache"));
        // The attacker's directory even holds the right bytes: a link is refused all the same.
        Path outside = Files.createDirectory(tmp.resolve("attacker"));
        Files.write(outside.resolve(NAME), LIBRARY);
        Files.createSymbolicLink(root.resolve(hashDir(LIBRARY)), outside);

        Path path = NativeLibraryLoader.extract(LIBRARY, NAME, root);
        assertFalse(Files.isSymbolicLink(path.getParent()));
        assertEquals(path, path.toRealPath(), "no link on the way");
        assertTrue(path.startsWith(root.toRealPath()));
        assertArrayEquals(LIBRARY, Files.readAllBytes(path));
        assertEquals(List.of(NAME), list(outside), "nothing written into the attacker's directory");
        assertTrue(
                list(root).stream().anyMatch(n -> n.startsWith(hashDir(LIBRARY) + ".untrusted-")),
                "the link is kept aside for inspection: " + list(root));
    }

    @Test
    void hashDirectoryWritableByOthersIsMovedAside() throws IOException {
        Path path = NativeLibraryLoader.extract(LIBRARY, NAME, tmp);
        Files.setPosixFilePermissions(
                path.getParent(), PosixFilePermissions.fromString("rwxrwxrwx"));

        assertEquals(path, NativeLibraryLoader.extract(LIBRARY, NAME, tmp));
        assertEquals("rwx------", permissions(path.getParent()));
        assertArrayEquals(LIBRARY, Files.readAllBytes(path));
    }

    @Test
    void cacheRootWritableByOthersIsRefused() throws IOException {
        Path root = Files.createDirectory(tmp.resolve("shared"));
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxrwxrwx"));

        IOException e =
                assertThrows(
                        IOException.class, () -> NativeLibraryLoader.extract(LIBRARY, NAME, root));
        assertTrue(e.getMessage().contains(root.toRealPath().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("writable by group or others"), e.getMessage());
        assertTrue(e.getMessage().contains("-Dtilewise.cache.dir"), e.getMessage());
    }

    @Test
    void cacheRootBelowADirectoryWritableByOthersIsRefused() throws IOException {
        Path shared = Files.createDirectory(tmp.resolve("shared"));
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwxrwx"));

        IOException e =
                assertThrows(
                        IOException.class,
                        () -> NativeLibraryLoader.extract(LIBRARY, NAME, shared.resolve("cache")));
        assertTrue(e.getMessage().contains("A parent"), e.getMessage());
    }

    @Test
    void cacheRootOwnedByAnotherUserIsRefused() throws IOException {
        Path root = Files.createDirectory(tmp.resolve("theirs"));
        UserPrincipal nobody;
        try {
            nobody =
                    root.getFileSystem()
                            .getUserPrincipalLookupService()
                            .lookupPrincipalByName("nobody");
            Files.setOwner(root, nobody);
        } catch (IOException e) {
            assumeTrue(false, "only root can give a directory away: " + e);
            return;
        }
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxr-xr-x"));

        IOException e =
                assertThrows(
                        IOException.class, () -> NativeLibraryLoader.extract(LIBRARY, NAME, root));
        assertTrue(e.getMessage().contains("is owned by uid"), e.getMessage());
    }

    @Test
    void concurrentExtractorsAllGetTheOneVerifiedFile() throws Exception {
        int threads = 8;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            for (int round = 0; round < 20; round++) {
                Path root = tmp.resolve("round" + round);
                if (round % 2 == 1) { // every other round starts from a planted file
                    Path planted = NativeLibraryLoader.extract(LIBRARY, NAME, root);
                    overwrite(planted, randomBytes(LIBRARY.length, 100 + round));
                }
                CyclicBarrier start = new CyclicBarrier(threads);
                List<Future<Path>> results = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    results.add(
                            pool.submit(
                                    () -> {
                                        start.await();
                                        Path p = NativeLibraryLoader.extract(LIBRARY, NAME, root);
                                        // What this caller would System.load, read right away.
                                        assertArrayEquals(LIBRARY, Files.readAllBytes(p));
                                        return p;
                                    }));
                }
                Path first = results.get(0).get();
                for (Future<Path> result : results) {
                    assertEquals(first, result.get());
                }
                assertEquals(List.of(NAME), list(first.getParent()), "no temp files left");
                assertArrayEquals(LIBRARY, Files.readAllBytes(first));
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void missingResourceIsNotAnError() throws IOException {
        assertNull(NativeLibraryLoader.load("/native/no-such-platform/libnothing.so"));
    }

    @Test
    void realLibraryIsLoadedFromAVerifiedCacheFile() throws IOException {
        assumeTrue(
                Boolean.parseBoolean(System.getProperty("tilewise.native", "true")),
                "this JVM runs without the native library");
        String resource = "/native/" + NativeLibraryLoader.platform() + "/libtilewise.so";
        byte[] jarBytes;
        try (InputStream in = LibUtils.class.getResourceAsStream(resource)) {
            assumeTrue(in != null, "no native build for this platform");
            jarBytes = in.readAllBytes();
        }
        assertTrue(LibUtils.isAvailable(), LibUtils.unavailableReason());
        assertNull(LibUtils.unavailableReason());

        Path cached =
                NativeLibraryLoader.extract(
                        jarBytes, "libtilewise.so", NativeLibraryLoader.cacheRoot());
        assertArrayEquals(jarBytes, Files.readAllBytes(cached));
        Path maps = Path.of("/proc/self/maps");
        assumeTrue(Files.isReadable(maps), "no /proc to see what is mapped");
        assertTrue(
                Files.readString(maps).contains(cached.toString()),
                "libtilewise is mapped from " + cached);
    }

    private static void overwrite(Path file, byte[] bytes) throws IOException {
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        Files.write(file, bytes);
        assertNotEquals(sha256(LIBRARY), sha256(Files.readAllBytes(file)));
    }

    private static String permissions(Path path) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(path, NOFOLLOW_LINKS));
    }

    private static List<String> list(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static String hashDir(byte[] bytes) {
        return sha256(bytes).substring(0, 16);
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] bytes = new byte[n];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }
}
