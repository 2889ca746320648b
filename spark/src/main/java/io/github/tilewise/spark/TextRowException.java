package io.github.tilewise.spark;

/**
 * A row whose text the encoder refused or failed on (for example a text longer than {@code
 * maxLength} tokens with {@code truncation} off). The message names the transformer, the row's
 * place (partition and row number within it, both from 0), the text's length and beginning, and the
 * cause; the task fails with it and Spark reports it on the driver. Only that row's task fails: the
 * executor JVM goes on.
 */
public final class TextRowException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int partition;
    private final long row;

    /**
     * Creates the exception.
     *
     * @param transformer the transformer's uid
     * @param partition the partition index
     * @param row the row number within the partition, from 0
     * @param text the row's text
     * @param cause what failed
     */
    public TextRowException(
            String transformer, int partition, long row, String text, Throwable cause) {
        super(
                transformer
                        + " failed on row "
                        + row
                        + " of partition "
                        + partition
                        + " (text of "
                        + text.length()
                        + " characters: \""
                        + preview(text)
                        + "\"): "
                        + cause,
                cause);
        this.partition = partition;
        this.row = row;
    }

    /**
     * Returns the partition index of the failing row.
     *
     * @return the partition index
     */
    public int getPartition() {
        return partition;
    }

    /**
     * Returns the row number within its partition, from 0.
     *
     * @return the row number
     */
    public long getRow() {
        return row;
    }

    private static String preview(String text) {
        String t = text.length() <= 60 ? text : text.substring(0, 60) + "...";
        return t.replace('\n', ' ').replace('\r', ' ');
    }
}
