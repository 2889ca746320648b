package io.github.tilewise.djl.jni;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Extracts a native library from the jar into a private cache, verifies it and loads it: the one
 * loader behind {@link LibUtils} ({@code libtilewise}) and {@link CudaLibrary} ({@code
 * libtilewise_cuda}).
 *
 * <p>A library packaged as {@code native/<platform>/<name>} goes to {@code <cache root>/<first 16
 * hex digits of its SHA-256>/<name>}; the cache root is {@code -Dtilewise.cache.dir}, else {@code
 * ~/.tilewise/cache}. What is checked, and why:
 *
 * <ul>
 *   <li><b>Content.</b> A cached file is used only if the SHA-256 of its bytes, read back from disk
 *       on every load, equals that of the jar resource; the right size is not enough. A planted,
 *       corrupt or truncated file is replaced (temp file in the same directory, atomic rename over
 *       it) with a warning naming the path.
 *   <li><b>Links.</b> The hash directory and the library file are inspected without following
 *       links. A link in place of the file is replaced by a real file (the rename replaces the link
 *       itself); a link, a plain file or an untrusted directory in place of the hash directory is
 *       moved aside to {@code <hash>.untrusted-<n>} (kept for inspection, with a warning) and a
 *       private directory is created. The cache root itself may be a link the user made: it is
 *       resolved to its real path once and that real directory is what gets checked and loaded
 *       from.
 *   <li><b>Who may write.</b> Directories are created {@code rwx------}. Where the file system
 *       reports Unix owners and modes, the cache root, the hash directory and the library must be
 *       owned by the user running this JVM and not writable by group or others, and every directory
 *       above the cache root must be owned by that user or root and not writable by group or others
 *       unless it is sticky (like {@code /tmp}). An untrusted cache root is refused with a message
 *       naming it (it is not chmod-ed: the user may share it on purpose), so the library is not
 *       loaded.
 *   <li><b>Between verifying and loading.</b> {@code System.load} takes a path, so the dynamic
 *       loader opens the file after we hashed it. Rather than loading a fresh private copy per JVM
 *       (a write of the whole library on every start, and copies that cannot be removed while
 *       mapped), we close that gap by ownership: the checks above run before the hash, so from then
 *       on every directory entry on the path, and the file's bytes, can be changed only by this
 *       user (or root). Another user cannot swap the file or a directory in between. A process of
 *       the same user could, but it can change this JVM in simpler ways (its class path, its
 *       environment), so no cache could defend against it.
 *   <li><b>Several JVMs at once</b> (Spark executors): each writer writes its own temp file and
 *       renames it over the target atomically, so a reader sees no file or a complete one; all
 *       writers write the same bytes, and every caller verifies the file it returns, so no lock is
 *       needed.
 * </ul>
 */
final class NativeLibraryLoader {

    private static final Logger logger = LoggerFactory.getLogger(NativeLibraryLoader.class);

    /** Whether the file system reports {@code unix:uid} and {@code unix:mode} (Linux, macOS). */
    private static final boolean UNIX =
            FileSystems.getDefault().supportedFileAttributeViews().contains("unix");

    private static final boolean POSIX =
            FileSystems.getDefault().supportedFileAttributeViews().contains("posix");

    /** A planted directory moved aside can be planted again; give up after this many rounds. */
    private static final int ATTEMPTS = 3;

    private static final int GROUP_OR_OTHERS_WRITE = 0022;
    private static final int STICKY = 01000;
    private static final String ABSENT = "absent";
    private static final String USE_ANOTHER =
            "set -Dtilewise.cache.dir to a directory only you can write";

    private NativeLibraryLoader() {}

    /**
     * Extracts the class-path resource into the cache, verifies it and loads it.
     *
     * @param resource e.g. {@code /native/linux-x86_64/libtilewise.so}
     * @return the verified path that was loaded, or null if the jar has no such resource
     * @throws IOException if the cache cannot be created, trusted or written
     * @throws UnsatisfiedLinkError if the dynamic loader rejects the library
     */
    static Path load(String resource) throws IOException {
        byte[] content;
        try (InputStream in = NativeLibraryLoader.class.getResourceAsStream(resource)) {
            if (in == null) {
                return null;
            }
            content = in.readAllBytes();
        }
        String name = resource.substring(resource.lastIndexOf('/') + 1);
        Path path = extract(content, name, cacheRoot());
        System.load(path.toString());
        return path;
    }

    /**
     * Makes {@code <cacheRoot>/<hash>/<fileName>} hold exactly {@code content}, as described in the
     * class comment, and returns its path. Safe to call from several threads and JVMs at once.
     *
     * @param content the library's bytes
     * @param fileName the file name, e.g. {@code libtilewise.so}
     * @param cacheRoot the cache root, created if missing
     * @return the absolute, verified path of the file
     * @throws IOException if a directory cannot be trusted, or the file cannot be written or
     *     verified
     */
    static Path extract(byte[] content, String fileName, Path cacheRoot) throws IOException {
        String sha256 = sha256(content);
        Files.createDirectories(cacheRoot, ownerOnly());
        Path root = cacheRoot.toRealPath();
        int uid = UNIX ? ownerOfNewFile(root) : -1;
        checkRoot(root, uid);
        String problem = null;
        for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
            Path dir = privateDirectory(root, sha256.substring(0, 16), uid);
            Path target = dir.resolve(fileName);
            problem = verify(target, sha256, content.length, uid);
            if (problem == null) {
                return target;
            }
            if (!ABSENT.equals(problem)) {
                logger.warn("Replacing the cached native library {}: it {}", target, problem);
            }
            writeAtomically(dir, target, content);
        }
        throw new IOException(
                "Could not verify "
                        + fileName
                        + " in "
                        + root
                        + " after "
                        + ATTEMPTS
                        + " tries: "
                        + problem);
    }

    /** The cache root: {@code -Dtilewise.cache.dir}, else {@code ~/.tilewise/cache}. */
    static Path cacheRoot() {
        String configured = System.getProperty("tilewise.cache.dir");
        if (configured != null && !configured.isBlank()) {
            return Paths.get(configured.trim());
        }
        return Paths.get(System.getProperty("user.home"), ".tilewise", "cache");
    }

    /** The jar's folder name for this machine, e.g. {@code linux-x86_64}. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (os.startsWith("linux")) {
            os = "linux";
        } else if (os.startsWith("mac")) {
            os = "osx";
        } else if (os.startsWith("windows")) {
            os = "win";
        }
        if ("amd64".equals(arch) || "x86_64".equals(arch)) {
            arch = "x86_64";
        } else if ("arm64".equals(arch)) {
            arch = "aarch64";
        }
        return os + '-' + arch;
    }

    /** Throws naming the first of the root and its ancestors that is not private. */
    private static void checkRoot(Path root, int uid) throws IOException {
        boolean ancestor = false;
        for (Path dir = root; dir != null; dir = dir.getParent(), ancestor = true) {
            String problem = untrusted(dir, uid, ancestor);
            if (problem != null) {
                String what =
                        ancestor
                                ? "A parent of the Tilewise cache directory, " + dir + ","
                                : "The Tilewise cache directory " + dir;
                throw new IOException(what + " " + problem + "; " + USE_ANOTHER);
            }
        }
    }

    /** Returns {@code root/name}, a real directory only we can write, creating it if needed. */
    private static Path privateDirectory(Path root, String name, int uid) throws IOException {
        Path dir = root.resolve(name);
        for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
            try {
                Files.createDirectory(dir, ownerOnly());
            } catch (FileAlreadyExistsException e) {
                // Made earlier or by another JVM just now: checked below like any other.
            }
            String problem = untrusted(dir, uid, false);
            if (problem == null) {
                return dir;
            }
            Path aside =
                    root.resolve(
                            name + ".untrusted-" + ThreadLocalRandom.current().nextInt(1 << 30));
            logger.warn("Moving {} aside to {}: it {}", dir, aside, problem);
            try {
                Files.move(dir, aside, StandardCopyOption.ATOMIC_MOVE);
            } catch (NoSuchFileException e) {
                // Another JVM moved it first.
            }
        }
        throw new IOException("Could not create a private directory " + dir);
    }

    /**
     * Why {@code dir} cannot be trusted, or null: it must be a real directory, owned by {@code
     * uid}, that no one else may write. An {@code ancestor} may also be owned by root, and writable
     * by others when sticky (there only an entry's owner may rename or delete it).
     */
    private static String untrusted(Path dir, int uid, boolean ancestor) throws IOException {
        BasicFileAttributes attributes =
                Files.readAttributes(dir, BasicFileAttributes.class, NOFOLLOW_LINKS);
        if (attributes.isSymbolicLink()) {
            return "is a symbolic link";
        }
        if (!attributes.isDirectory()) {
            return "is not a directory";
        }
        return writableByOthers(dir, uid, ancestor);
    }

    /**
     * Why a user other than {@code uid} (or root, for an {@code ancestor}) could change {@code
     * path}, or null; always null where the file system has no Unix owners and modes.
     */
    private static String writableByOthers(Path path, int uid, boolean ancestor)
            throws IOException {
        if (!UNIX) {
            return null;
        }
        int owner = (Integer) Files.getAttribute(path, "unix:uid", NOFOLLOW_LINKS);
        int mode = (Integer) Files.getAttribute(path, "unix:mode", NOFOLLOW_LINKS);
        if (owner != uid && !(ancestor && owner == 0)) {
            return "is owned by uid " + owner + ", not by this user (uid " + uid + ")";
        }
        boolean sharedOnPurpose = ancestor && (mode & STICKY) != 0; // e.g. /tmp
        if ((mode & GROUP_OR_OTHERS_WRITE) != 0 && !sharedOnPurpose) {
            return "is writable by group or others (mode "
                    + Integer.toOctalString(mode & 07777)
                    + ")";
        }
        return null;
    }

    /** Why {@code file} is not the library, {@link #ABSENT}, or null if it is verified. */
    private static String verify(Path file, String sha256, long size, int uid) throws IOException {
        BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(file, BasicFileAttributes.class, NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return ABSENT;
        }
        if (attributes.isSymbolicLink()) {
            return "is a symbolic link";
        }
        if (!attributes.isRegularFile()) {
            return "is not a regular file";
        }
        String problem = writableByOthers(file, uid, false);
        if (problem != null) {
            return problem;
        }
        String actual;
        try (InputStream in = Files.newInputStream(file, NOFOLLOW_LINKS)) {
            actual = sha256(in);
        }
        if (!actual.equals(sha256)) {
            return "has SHA-256 "
                    + actual
                    + " (size "
                    + attributes.size()
                    + "), the jar's is "
                    + sha256
                    + " (size "
                    + size
                    + ")";
        }
        return null;
    }

    /** Writes a temp file next to {@code target} and renames it over {@code target}. */
    private static void writeAtomically(Path dir, Path target, byte[] content) throws IOException {
        // createTempFile makes the file rw------- (O_EXCL, random name) where POSIX exists.
        Path tmp = Files.createTempFile(dir, target.getFileName() + ".", ".tmp");
        try {
            Files.write(tmp, content);
            if (POSIX) {
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("r-x------"));
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The uid this JVM's files get: the owner of a file it just created in {@code dir}. */
    private static int ownerOfNewFile(Path dir) throws IOException {
        Path probe;
        try {
            probe = Files.createTempFile(dir, ".owner", ".tmp");
        } catch (AccessDeniedException e) {
            throw new IOException(
                    "The Tilewise cache directory " + dir + " is not writable; " + USE_ANOTHER, e);
        }
        try {
            return (Integer) Files.getAttribute(probe, "unix:uid", NOFOLLOW_LINKS);
        } finally {
            Files.delete(probe);
        }
    }

    private static FileAttribute<?>[] ownerOnly() {
        return POSIX
                ? new FileAttribute<?>[] {
                    PosixFilePermissions.asFileAttribute(
                            PosixFilePermissions.fromString("rwx------"))
                }
                : new FileAttribute<?>[0];
    }

    private static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(digest().digest(bytes));
    }

    private static String sha256(InputStream in) throws IOException {
        MessageDigest digest = digest();
        byte[] buffer = new byte[1 << 16];
        for (int n; (n = in.read(buffer)) > 0; ) {
            digest.update(buffer, 0, n);
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
