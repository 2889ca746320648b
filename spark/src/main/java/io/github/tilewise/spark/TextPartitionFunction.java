package io.github.tilewise.spark;

import io.github.tilewise.djl.encoder.text.TextEncoder;
import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;

/**
 * Runs one partition through an encoder: rows are read in windows of {@code 32 × batchSize}, the
 * texts of a window cut into batches of {@code batchSize} (sorted by length in characters with
 * {@code sortByLength}, the default, so a batch holds texts of similar length; else in row order),
 * and the outputs are put back in the rows' order. The encoder comes from the executor's {@link
 * ModelCache}; the lease is released by a task completion listener (whether the task succeeds,
 * fails or is killed).
 */
final class TextPartitionFunction implements MapPartitionsFunction<Row, Row> {

    private static final long serialVersionUID = 1L;

    /** Batches per window of rows sorted together. */
    static final int WINDOW_BATCHES = 32;

    /** What a transformer appends to each row. */
    interface Outputs extends Serializable {
        /**
         * Computes the appended values of each text.
         *
         * @param encoder the encoder
         * @param texts the texts of one batch
         * @return per text, the values to append
         */
        Object[][] compute(TextEncoder encoder, List<String> texts);

        /**
         * Returns how many values are appended.
         *
         * @return the count
         */
        int width();
    }

    private final String uid;
    private final EncoderSpec spec;
    private final int inputIndex;
    private final int batchSize;
    private final boolean sortByLength;
    private final String handleInvalid;
    private final Outputs outputs;

    TextPartitionFunction(
            String uid,
            EncoderSpec spec,
            int inputIndex,
            int batchSize,
            boolean sortByLength,
            String handleInvalid,
            Outputs outputs) {
        this.uid = uid;
        this.spec = spec;
        this.inputIndex = inputIndex;
        this.batchSize = batchSize;
        this.sortByLength = sortByLength;
        this.handleInvalid = handleInvalid;
        this.outputs = outputs;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> input) {
        return new Rows(input);
    }

    private final class Rows implements Iterator<Row> {
        private final Iterator<Row> input;
        private final ArrayDeque<Row> ready = new ArrayDeque<>();
        private final TaskContext context = TaskContext.get();
        private final int partition = context != null ? context.partitionId() : -1;
        private ModelCache.Lease lease;
        private long rowsRead;

        Rows(Iterator<Row> input) {
            this.input = input;
        }

        @Override
        public boolean hasNext() {
            while (ready.isEmpty() && input.hasNext()) {
                nextWindow();
            }
            if (ready.isEmpty() && lease != null && context == null) {
                lease.close(); // outside a task: release at the end of the partition
            }
            return !ready.isEmpty();
        }

        @Override
        public Row next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            return ready.poll();
        }

        private TextEncoder encoder() {
            if (lease == null) {
                ExecutorThreads.configure(context);
                try {
                    lease = ModelCache.acquire(spec);
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new IllegalStateException(
                            uid + " could not load the model (" + spec + "): " + e.getMessage(), e);
                }
                if (context != null) {
                    ModelCache.Lease held = lease;
                    context.addTaskCompletionListener((TaskCompletionListener) c -> held.close());
                }
            }
            return lease.encoder();
        }

        private void nextWindow() {
            int window = batchSize * WINDOW_BATCHES;
            List<Row> rows = new ArrayList<>(window);
            while (rows.size() < window && input.hasNext()) {
                rows.add(input.next());
            }
            long first = rowsRead;
            rowsRead += rows.size();
            Object[][] results = new Object[rows.size()][];
            List<Integer> order = new ArrayList<>(rows.size());
            for (int i = 0; i < rows.size(); i++) {
                Row row = rows.get(i);
                if (row.isNullAt(inputIndex)) {
                    if ("error".equals(handleInvalid)) {
                        throw new IllegalArgumentException(
                                uid
                                        + ": row "
                                        + (first + i)
                                        + " of partition "
                                        + partition
                                        + " has a null text (handleInvalid = error; 'keep' gives"
                                        + " null outputs, 'skip' drops the row)");
                    }
                } else {
                    order.add(i);
                }
            }
            if (!order.isEmpty()) {
                TextEncoder encoder = encoder();
                if (sortByLength) {
                    order.sort(
                            Comparator.comparingInt(
                                    i -> rows.get(i).getString(inputIndex).length()));
                }
                for (int from = 0; from < order.size(); from += batchSize) {
                    List<Integer> batch =
                            order.subList(from, Math.min(order.size(), from + batchSize));
                    List<String> texts = new ArrayList<>(batch.size());
                    for (int i : batch) {
                        texts.add(rows.get(i).getString(inputIndex));
                    }
                    Object[][] values = run(encoder, texts, batch, first);
                    for (int k = 0; k < batch.size(); k++) {
                        results[batch.get(k)] = values[k];
                    }
                }
            }
            for (int i = 0; i < rows.size(); i++) {
                if (results[i] == null && "skip".equals(handleInvalid)) {
                    continue;
                }
                ready.add(append(rows.get(i), results[i]));
            }
        }

        /** Runs one batch; on failure, finds the row that fails alone and names it. */
        private Object[][] run(
                TextEncoder encoder, List<String> texts, List<Integer> rowsOfBatch, long first) {
            try {
                return outputs.compute(encoder, texts);
            } catch (RuntimeException batchFailure) {
                for (int k = 0; k < texts.size(); k++) {
                    try {
                        outputs.compute(encoder, List.of(texts.get(k)));
                    } catch (RuntimeException e) {
                        throw new TextRowException(
                                uid, partition, first + rowsOfBatch.get(k), texts.get(k), e);
                    }
                }
                throw new IllegalStateException(
                        uid
                                + " failed on a batch of "
                                + texts.size()
                                + " rows of partition "
                                + partition
                                + " (each row alone runs): "
                                + batchFailure,
                        batchFailure);
            }
        }

        private Row append(Row row, Object[] values) {
            int n = row.length();
            Object[] out = new Object[n + outputs.width()];
            for (int i = 0; i < n; i++) {
                out[i] = row.get(i);
            }
            if (values != null) {
                System.arraycopy(values, 0, out, n, values.length);
            } else {
                Arrays.fill(out, n, out.length, null);
            }
            return RowFactory.create(out);
        }
    }
}
