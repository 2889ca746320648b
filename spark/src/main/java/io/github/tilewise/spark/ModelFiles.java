package io.github.tilewise.spark;

import java.io.FileNotFoundException;
import java.net.InetAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.apache.spark.SparkFiles;

/**
 * Finds a model file or directory on the host a task runs on. The rule, in order:
 *
 * <ol>
 *   <li>the path itself ({@code /shared/models/minilm} or {@code file:/shared/models/minilm}), when
 *       it exists on this host: a path every executor shares (NFS, a mounted bucket, the same
 *       image);
 *   <li>{@code SparkFiles.get(name)} for the path's last name, when the driver called {@code
 *       SparkContext.addFile(path, true)} (a directory needs {@code recursive = true}) or {@code
 *       spark-submit --files} with it.
 * </ol>
 *
 * Anything else is an error naming the path, the host and the place in {@code SparkFiles} that was
 * tried.
 */
public final class ModelFiles {

    private ModelFiles() {}

    /**
     * Resolves a path as the class comment says.
     *
     * @param path the path as configured
     * @param param the parameter's name, for the message
     * @return the existing local path
     * @throws FileNotFoundException naming the path, the host and the {@code SparkFiles} place
     */
    public static Path resolve(String path, String param) throws FileNotFoundException {
        Path local = toPath(path);
        if (local != null && Files.exists(local)) {
            return local;
        }
        String name =
                local != null && local.getFileName() != null
                        ? local.getFileName().toString()
                        : path;
        String fromFiles = null;
        try {
            fromFiles = SparkFiles.get(name);
        } catch (RuntimeException | LinkageError e) {
            // no SparkEnv here (not inside Spark): only the path itself counts
        }
        if (fromFiles != null && Files.exists(Paths.get(fromFiles))) {
            return Paths.get(fromFiles);
        }
        throw new FileNotFoundException(
                param
                        + " "
                        + path
                        + " does not exist on host "
                        + host()
                        + (fromFiles != null
                                ? " and was not distributed with SparkContext.addFile (no "
                                        + fromFiles
                                        + ")"
                                : "")
                        + ": put the model on a path every executor shares, or call"
                        + " SparkContext.addFile(path, true) on the driver");
    }

    private static Path toPath(String path) {
        try {
            if (path.startsWith("file:")) {
                return Paths.get(URI.create(path));
            }
            return Paths.get(path);
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static String host() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            return "(unknown)";
        }
    }
}
