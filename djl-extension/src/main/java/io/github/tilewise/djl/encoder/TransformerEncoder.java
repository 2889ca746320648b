package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearOperatorFactory;
import io.github.tilewise.djl.encoder.linear.SharedInputLinear;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What every Tilewise encoder shares, whatever its family: input checks, the packing of padded
 * batches into sequences without padding, position numbering, the lifecycle, and the plumbing of
 * its linear layers. A family ({@link BertEncoder}, {@link ModernBertEncoder}) supplies its layers
 * through {@link #forwardPacked}.
 *
 * <p>Inputs ({@link NDList}, integer arrays {@code [batch, seq]}): {@code input_ids}, optionally
 * {@code attention_mask} (1 keeps a token; a text's vectors do not depend on the padding around it)
 * and {@code token_type_ids}. Outputs: {@code last_hidden_state [batch, seq, hidden]} (zero at
 * padding) and, with a pooler, {@code pooler_output [batch, hidden]}.
 *
 * <p>Each forward runs in a scoped sub-manager (only the outputs survive it) and with PyTorch's
 * intra-op pool limited as {@link PyTorchThreads} explains. {@link #close()} waits for forwards in
 * flight and frees the native memory of the linear layers; later calls throw {@link
 * IllegalStateException}.
 *
 * <p>The layers' intermediate activations live in {@code ActivationBuffers} kept from call to call
 * (one set per concurrent forward, freed by {@link #close()}); only the outputs are new arrays.
 */
public abstract class TransformerEncoder extends AbstractBlock implements AutoCloseable {

    /** Name of the token-embedding output. */
    public static final String LAST_HIDDEN_STATE = "last_hidden_state";

    /** Name of the pooler output. */
    public static final String POOLER_OUTPUT = "pooler_output";

    /** The configuration. */
    protected final EncoderConfig config;

    private volatile ComputePrecision attentionPrecision = ComputePrecision.DATA;
    private final CallGuard guard;
    private final ActivationBuffers.Pool buffers = new ActivationBuffers.Pool();

    /**
     * Creates the shared part of an encoder.
     *
     * @param version the block's version
     * @param config the configuration
     */
    protected TransformerEncoder(byte version, EncoderConfig config) {
        super(version);
        this.config = config;
        this.guard = new CallGuard(getClass().getSimpleName());
    }

    /**
     * Creates the encoder of a configuration's family, with uninitialised parameters.
     *
     * @param config the configuration, from the checkpoint
     * @return a {@link BertEncoder} or a {@link ModernBertEncoder}
     */
    public static TransformerEncoder create(EncoderConfig config) {
        return config.getArchitecture().isBertLayout()
                ? new BertEncoder(config)
                : new ModernBertEncoder(config);
    }

    /**
     * Returns the configuration.
     *
     * @return the configuration
     */
    public EncoderConfig getConfig() {
        return config;
    }

    /**
     * Encodes a batch.
     *
     * @param inputIds {@code [batch, seq]} token ids
     * @param attentionMask {@code [batch, seq]} 1 for tokens, 0 for padding; null: no padding
     * @param tokenTypeIds {@code [batch, seq]} segment ids, or null for all 0
     * @return {@code last_hidden_state} and, with a pooler, {@code pooler_output}, attached to
     *     {@code inputIds}' manager
     * @throws IllegalArgumentException naming the problem for bad shapes, types or ids, or a
     *     sequence longer than the model allows
     * @throws IllegalStateException if the encoder is closed
     */
    public NDList encode(NDArray inputIds, NDArray attentionMask, NDArray tokenTypeIds) {
        try (CallGuard.Lease lease = guard.enter()) {
            return encodeLive(inputIds, attentionMask, tokenTypeIds);
        }
    }

    /**
     * Encodes packed sequences: the tokens of every text one after another, with no padding, so
     * that no layer computes a padded row. Sequence {@code s} owns tokens {@code [offsets[s],
     * offsets[s + 1])}, has its own positions and attends only to its own tokens.
     *
     * @param inputIds {@code [tokens]} token ids
     * @param tokenTypeIds {@code [tokens]} segment ids, or null for all 0
     * @param offsets {@code numSequences + 1} offsets from 0 to {@code tokens}, each sequence
     *     holding 1 to {@link EncoderConfig#getMaxSequenceLength()} tokens
     * @return {@code last_hidden_state [tokens, hidden]} and, with a pooler, {@code pooler_output
     *     [numSequences, hidden]} (of each sequence's first token), attached to {@code inputIds}'
     *     manager
     * @throws IllegalArgumentException naming the problem for bad shapes, ids or offsets
     * @throws IllegalStateException if the encoder is closed
     */
    public NDList encodePacked(NDArray inputIds, NDArray tokenTypeIds, int[] offsets) {
        try (CallGuard.Lease lease = guard.enter()) {
            return encodePackedLive(inputIds, tokenTypeIds, offsets);
        }
    }

    /**
     * Runs the embeddings and layers on packed sequences.
     *
     * @param ids {@code [tokens]} token ids, checked
     * @param types {@code [tokens]} token types, or null
     * @param positions each token's position id (as the family numbers them)
     * @param offsets sequence boundaries, checked
     * @param attentionPrecision the precision of the attention dot products
     * @return {@code [tokens, hidden]}, attached to {@code ids}' manager (a scope the caller
     *     closes)
     */
    protected abstract NDArray forwardPacked(
            NDArray ids,
            NDArray types,
            long[] positions,
            int[] offsets,
            ComputePrecision attentionPrecision);

    /**
     * Runs a batch with its padding, for families that have a padded path (BERT's): used when
     * packing is off ({@code -Dtilewise.packed=false}), for full batches, and for masks that are
     * not right padding. The default packs whatever is right-padded and refuses other masks.
     *
     * @param ids {@code [batch, seq]} token ids, checked and attached to the call's scope
     * @param mask {@code [batch, seq]} attention mask, or null
     * @param types token types, or null
     * @param positions {@code [batch * seq]} position ids
     * @param attentionPrecision the precision of the attention dot products
     * @return {@code [batch, seq, hidden]}, or null to have the batch packed instead
     */
    protected NDArray forwardPadded(
            NDArray ids,
            NDArray mask,
            NDArray types,
            long[] positions,
            ComputePrecision attentionPrecision) {
        return null;
    }

    /**
     * Lends a forward activation memory of its own, kept from call to call ({@link
     * ActivationBuffers}); give it back with {@link #releaseBuffers} when the forward returns.
     *
     * @param like an input of the forward
     * @return the buffers, or null where reuse is off
     */
    ActivationBuffers acquireBuffers(NDArray like) {
        return buffers.acquire(like);
    }

    /**
     * Takes a forward's buffers back.
     *
     * @param lent what {@link #acquireBuffers} returned (null is ignored)
     */
    void releaseBuffers(ActivationBuffers lent) {
        buffers.release(lent);
    }

    /**
     * Returns the pooler, {@code tanh(dense(h[0]))} of each text's first token, if the model has
     * one.
     *
     * @return the pooler, or null
     */
    protected LinearBlock getPooler() {
        return null;
    }

    /**
     * Whether {@link #encode} runs padded batches as packed sequences (default true; {@code
     * -Dtilewise.packed=false} keeps the padded computation where the family has one).
     */
    private static boolean packed() {
        return Boolean.parseBoolean(System.getProperty("tilewise.packed", "true"));
    }

    /**
     * The largest activation of one packed forward, in bytes, that the default token budget allows:
     * 16 MiB. glibc serves blocks above 32 MiB (its largest mmap threshold) with a fresh mmap per
     * allocation, and trims a heap whose free top exceeds twice the threshold, so bigger chunks
     * page-fault on every layer's activations. Measured on Zen 5 with MiniLM (the 32 longest texts
     * of the mixed corpus, 14,326 tokens, one thread): chunks of 2,048–4,096 tokens ran at 163–228
     * µs per token (fp32) and 69–74 (INT8) with 0–26 thousand page faults per call; chunks of 8,192
     * at 261–368 and 103–113, with 42–129 thousand; the step comes where the 1,536-wide
     * intermediate passes 32 MiB (between budgets of 5,632 and 6,144), a smaller one above 16 MiB.
     */
    private static final long PACKED_ACTIVATION_BYTES = 16L << 20;

    /**
     * The most tokens one packed forward holds ({@code -Dtilewise.packedTokens}): a larger batch
     * runs in chunks of whole sequences. By default as many tokens as keep the widest per-token
     * activation (the feed-forward's input to its activation, {@code intermediate} wide, twice that
     * for the gated ModernBERT layers, or the fused QKV, {@code 3 × hidden}) within {@link
     * #PACKED_ACTIVATION_BYTES}, at most 8,192: 2,730 tokens for MiniLM, 1,365 for BERT-base. So
     * peak activation memory stays near {@code packedTokens × (intermediate + 4 × hidden) × 4}
     * bytes (about 25 MB for MiniLM) however many texts a batch holds, and per-token time does not
     * grow with the batch. A sequence longer than this runs alone.
     */
    private int packedTokens() {
        Integer set = Integer.getInteger("tilewise.packedTokens");
        if (set != null) {
            return Math.max(1, set);
        }
        int ff = config.getIntermediateSize();
        long widest =
                Math.max(
                        3L * config.getHiddenSize(),
                        config.getArchitecture().isBertLayout() ? ff : 2L * ff);
        return (int) Math.max(1, Math.min(8192, PACKED_ACTIVATION_BYTES / (Float.BYTES * widest)));
    }

    private NDList encodeLive(NDArray inputIds, NDArray attentionMask, NDArray tokenTypeIds) {
        Shape shape = checkInputs(inputIds, attentionMask, tokenTypeIds);
        int batch = Math.toIntExact(shape.get(0));
        int seq = Math.toIntExact(shape.get(1));
        int[] lengths = prefixLengths(attentionMask, batch, seq);
        boolean padding = lengths != null && Arrays.stream(lengths).anyMatch(n -> n < seq);
        if (padding && packed()) {
            return encodeUnpadded(inputIds, tokenTypeIds, seq, lengths);
        }
        NDManager parent = inputIds.getManager();
        try (PyTorchThreads limit = PyTorchThreads.limit();
                NDManager scope = parent.newSubManager()) {
            if (attentionMask != null) {
                attentionMask.tempAttach(scope);
            }
            long[] ids = attachAndCheckIds(scope, inputIds, tokenTypeIds);
            int[] rows = new int[batch + 1];
            for (int b = 0; b <= batch; b++) {
                rows[b] = b * seq;
            }
            NDArray hidden =
                    forwardPadded(
                            inputIds,
                            attentionMask,
                            tokenTypeIds,
                            positionIds(ids, rows),
                            attentionPrecision);
            if (hidden != null) {
                hidden.setName(LAST_HIDDEN_STATE);
                NDList out = new NDList(hidden);
                LinearBlock pooler = getPooler();
                if (pooler != null) {
                    long[] firsts = new long[batch];
                    for (int b = 0; b < batch; b++) {
                        firsts[b] = (long) b * seq;
                    }
                    NDArray flat = hidden.reshape(-1, config.getHiddenSize());
                    NDArray pooled = pooler.apply(rows(flat, scope.create(firsts)), null);
                    pooled.setName(POOLER_OUTPUT);
                    out.add(pooled);
                }
                return scope.ret(out);
            }
        }
        if (lengths == null) {
            throw new IllegalArgumentException(
                    getClass().getSimpleName()
                            + " needs right-padded attention masks (each row: 1s, then only 0s,"
                            + " at least one 1)");
        }
        return encodeUnpadded(inputIds, tokenTypeIds, seq, lengths);
    }

    /**
     * The tokens of each row of a right-padded mask (1s, then only 0s: what tokenizers produce);
     * every row full when there is no mask; null when a row has a hole or no token at all.
     */
    private static int[] prefixLengths(NDArray mask, int batch, int seq) {
        int[] lengths = new int[batch];
        if (mask == null) {
            Arrays.fill(lengths, seq);
            return lengths;
        }
        long[] values = longs(mask);
        for (int b = 0; b < batch; b++) {
            int n = 0;
            while (n < seq && values[b * seq + n] != 0) {
                n++;
            }
            for (int t = n; t < seq; t++) {
                if (values[b * seq + t] != 0) {
                    return null;
                }
            }
            if (n == 0) {
                return null;
            }
            lengths[b] = n;
        }
        return lengths;
    }

    /**
     * A right-padded batch computed as packed sequences, in chunks of at most {@link
     * #packedTokens()} tokens; the outputs are shaped as the padded ones ({@code last_hidden_state}
     * zero at padded positions), so callers cannot tell, except that no padded row was computed.
     */
    private NDList encodeUnpadded(NDArray ids, NDArray types, int seq, int[] lengths) {
        int batch = lengths.length;
        int hiddenSize = config.getHiddenSize();
        int[] offsets = new int[batch + 1];
        for (int b = 0; b < batch; b++) {
            offsets[b + 1] = offsets[b] + lengths[b];
        }
        int tokens = offsets[batch];
        long[] idValues = packRows(longs(ids), lengths, seq, offsets);
        long[] typeValues = types == null ? null : packRows(longs(types), lengths, seq, offsets);
        NDManager parent = ids.getManager();
        try (NDManager scope = parent.newSubManager()) {
            NDList hiddenParts = new NDList();
            NDList pooledParts = new NDList();
            int budget = packedTokens();
            for (int first = 0; first < batch; ) {
                int last = first + 1;
                while (last < batch && offsets[last + 1] - offsets[first] <= budget) {
                    last++;
                }
                int from = offsets[first];
                int to = offsets[last];
                int[] chunk = new int[last - first + 1];
                for (int b = first; b <= last; b++) {
                    chunk[b - first] = offsets[b] - from;
                }
                NDList out =
                        encodePackedLive(
                                scope.create(Arrays.copyOfRange(idValues, from, to)),
                                typeValues == null
                                        ? null
                                        : scope.create(Arrays.copyOfRange(typeValues, from, to)),
                                chunk);
                hiddenParts.add(out.get(0));
                if (out.size() > 1) {
                    pooledParts.add(out.get(1));
                }
                first = last;
            }
            // Back to [batch, seq, hidden]: each padded position reads its packed row, padding
            // reads an extra zero row.
            NDArray table =
                    NDArrays.concat(
                            new NDList(concat(hiddenParts), scope.zeros(new Shape(1, hiddenSize))));
            long[] index = new long[batch * seq];
            for (int b = 0; b < batch; b++) {
                for (int t = 0; t < seq; t++) {
                    index[b * seq + t] = t < lengths[b] ? offsets[b] + t : tokens;
                }
            }
            NDArray hidden = rows(table, scope.create(index)).reshape(batch, seq, hiddenSize);
            hidden.setName(LAST_HIDDEN_STATE);
            NDList result = new NDList(hidden);
            if (!pooledParts.isEmpty()) {
                NDArray pooled = concat(pooledParts);
                pooled.setName(POOLER_OUTPUT);
                result.add(pooled);
            }
            return scope.ret(result);
        }
    }

    private NDList encodePackedLive(NDArray inputIds, NDArray tokenTypeIds, int[] offsets) {
        checkPacked(inputIds, tokenTypeIds, offsets);
        int sequences = offsets.length - 1;
        long[] firsts = new long[sequences];
        for (int s = 0; s < sequences; s++) {
            firsts[s] = offsets[s];
        }
        NDManager parent = inputIds.getManager();
        try (PyTorchThreads limit = PyTorchThreads.limit();
                NDManager scope = parent.newSubManager()) {
            long[] positions =
                    positionIds(attachAndCheckIds(scope, inputIds, tokenTypeIds), offsets);
            NDArray hidden =
                    forwardPacked(inputIds, tokenTypeIds, positions, offsets, attentionPrecision);
            hidden.setName(LAST_HIDDEN_STATE);
            NDList out = new NDList(hidden);
            LinearBlock pooler = getPooler();
            if (pooler != null) {
                NDArray pooled = pooler.apply(rows(hidden, scope.create(firsts)), null);
                pooled.setName(POOLER_OUTPUT);
                out.add(pooled);
            }
            return scope.ret(out);
        }
    }

    /**
     * Each token's position id. Sequence {@code s} holds tokens {@code [offsets[s], offsets[s +
     * 1])}: BERT-style models number them 0, 1, ...; RoBERTa-style ones count the non-padding
     * tokens from {@code pad_token_id + 1} and put padding tokens at {@code pad_token_id}, as
     * Hugging Face's {@code create_position_ids_from_input_ids} does.
     *
     * @param ids the token ids, concatenated
     * @param offsets sequence boundaries
     * @return the position ids
     */
    protected long[] positionIds(long[] ids, int[] offsets) {
        long[] positions = new long[ids.length];
        boolean afterPadding = config.getArchitecture().positionsAfterPadding();
        long pad = config.getPadTokenId();
        for (int s = 0; s + 1 < offsets.length; s++) {
            long count = 0;
            for (int t = offsets[s]; t < offsets[s + 1]; t++) {
                if (!afterPadding) {
                    positions[t] = t - offsets[s];
                } else if (ids[t] != pad) {
                    count++;
                    positions[t] = pad + count;
                } else {
                    positions[t] = pad;
                }
            }
        }
        return positions;
    }

    /** The first {@code lengths[b]} values of each row of a padded {@code [batch, seq]} array. */
    private static long[] packRows(long[] padded, int[] lengths, int seq, int[] offsets) {
        long[] packed = new long[offsets[lengths.length]];
        for (int b = 0; b < lengths.length; b++) {
            System.arraycopy(padded, b * seq, packed, offsets[b], lengths[b]);
        }
        return packed;
    }

    private static long[] longs(NDArray array) {
        try (NDArray copy = array.toType(DataType.INT64, true)) {
            return copy.toLongArray();
        }
    }

    private static NDArray concat(NDList parts) {
        return parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts);
    }

    /**
     * Rows {@code index} of a matrix (a gather, through the embedding lookup).
     *
     * @param matrix {@code [rows, width]}
     * @param index integer row indices
     * @return {@code index}' shape plus {@code width}
     */
    protected static NDArray rows(NDArray matrix, NDArray index) {
        return index.getNDArrayInternal()
                .embedding(index, matrix, SparseFormat.DENSE)
                .singletonOrThrow();
    }

    /** Checks a packed batch's arrays and offsets. */
    private void checkPacked(NDArray ids, NDArray types, int[] offsets) {
        Shape shape = ids.getShape();
        if (shape.dimension() != 1 || !ids.getDataType().isInteger()) {
            throw new IllegalArgumentException(
                    "packed input_ids must be an integer [tokens] array, got "
                            + ids.getDataType()
                            + " "
                            + shape);
        }
        checkCompanion("token_type_ids", types, shape);
        if (offsets == null || offsets.length < 2 || offsets[0] != 0) {
            throw new IllegalArgumentException(
                    "offsets must start at 0 and hold numSequences + 1 >= 2 entries");
        }
        int longest = config.getMaxSequenceLength();
        for (int s = 0; s + 1 < offsets.length; s++) {
            int length = offsets[s + 1] - offsets[s];
            if (length < 1 || length > longest) {
                throw new IllegalArgumentException(
                        "packed sequence "
                                + s
                                + " has "
                                + length
                                + " tokens; each must hold 1 to "
                                + longest
                                + " (the model's longest sequence)");
            }
        }
        if (offsets[offsets.length - 1] != shape.get(0)) {
            throw new IllegalArgumentException(
                    "offsets end at "
                            + offsets[offsets.length - 1]
                            + " but input_ids holds "
                            + shape.get(0)
                            + " tokens");
        }
    }

    private Shape checkInputs(NDArray ids, NDArray mask, NDArray types) {
        Shape shape = ids.getShape();
        if (shape.dimension() != 2) {
            throw new IllegalArgumentException(
                    "input_ids must be [batch, seq], got shape " + shape);
        }
        if (!ids.getDataType().isInteger()) {
            throw new IllegalArgumentException(
                    "input_ids must be an integer array, got " + ids.getDataType());
        }
        int longest = config.getMaxSequenceLength();
        if (shape.get(1) > longest) {
            throw new IllegalArgumentException(
                    "the input has "
                            + shape.get(1)
                            + " tokens but the model takes at most "
                            + longest
                            + " (its position table or trained context): truncate the input to at"
                            + " most "
                            + longest
                            + " tokens");
        }
        if (shape.get(1) == 0) {
            throw new IllegalArgumentException("input_ids has no tokens (seq = 0)");
        }
        checkCompanion("attention_mask", mask, shape);
        checkCompanion("token_type_ids", types, shape);
        return shape;
    }

    private static void checkCompanion(String name, NDArray array, Shape shape) {
        if (array == null) {
            return;
        }
        if (!array.getShape().equals(shape)) {
            throw new IllegalArgumentException(
                    name + " has shape " + array.getShape() + ", input_ids has " + shape);
        }
        if (!array.getDataType().isInteger() && array.getDataType() != DataType.BOOLEAN) {
            throw new IllegalArgumentException(
                    name + " must be an integer array, got " + array.getDataType());
        }
    }

    /**
     * Lends the ids to the call's scope, checks they index the model's tables and returns the input
     * ids. The range is checked on the one copy the forward needs anyway (positions are computed
     * from it): reading min and max through PyTorch cost four more native calls per forward.
     */
    private long[] attachAndCheckIds(NDManager scope, NDArray inputIds, NDArray tokenTypeIds) {
        inputIds.tempAttach(scope);
        long[] ids = longs(inputIds);
        checkIdRange("input_ids", ids, config.getVocabSize());
        if (tokenTypeIds != null) {
            tokenTypeIds.tempAttach(scope);
            checkIdRange(
                    "token_type_ids", longs(tokenTypeIds), Math.max(1, config.getTypeVocabSize()));
        }
        return ids;
    }

    private static void checkIdRange(String name, long[] ids, int size) {
        if (ids.length == 0) {
            return;
        }
        long min = Long.MAX_VALUE;
        long max = Long.MIN_VALUE;
        for (long id : ids) {
            min = Math.min(min, id);
            max = Math.max(max, id);
        }
        if (min < 0 || max >= size) {
            throw new IllegalArgumentException(
                    name
                            + " holds ids in ["
                            + min
                            + ", "
                            + max
                            + "], outside the model's table of "
                            + size
                            + " rows");
        }
    }

    /**
     * Returns the precision of the attention dot products.
     *
     * @return {@link ComputePrecision#DATA} (fp32, the default) or {@link ComputePrecision#BF16}
     */
    public ComputePrecision getAttentionPrecision() {
        return attentionPrecision;
    }

    /**
     * Sets the precision of the attention dot products: {@link ComputePrecision#BF16} roughly
     * doubles the attention's arithmetic rate on CPUs with AVX512-BF16, at bf16's 8-bit mantissa
     * (low-precision conversions choose it there, see {@link
     * io.github.tilewise.djl.encoder.linear.LinearOperatorFactory#attentionPrecision}).
     *
     * @param precision the precision; null means {@link ComputePrecision#DATA}
     */
    public void setAttentionPrecision(ComputePrecision precision) {
        this.attentionPrecision = precision == null ? ComputePrecision.DATA : precision;
    }

    /**
     * Returns every linear projection, layer by layer, then the pooler, for converters.
     *
     * @return the projections
     */
    public abstract List<LinearBlock> getLinearBlocks();

    /**
     * Returns the groups of projections that read the same input (per layer: query, key, value),
     * which a converter may compute as one {@link SharedInputLinear}.
     *
     * @return the groups; empty where a family already fuses them
     */
    protected List<List<LinearBlock>> getSharedInputGroups() {
        return List.of();
    }

    /**
     * Returns every parameter with its checkpoint name (without a task model's prefix such as
     * {@code bert.}) and shape, in checkpoint order.
     *
     * @return the parameters
     */
    public abstract List<CheckpointParameter> getCheckpointParameters();

    /**
     * Substitutes the arithmetic of the linear projections, e.g. by INT8 kernels. The factory is
     * first offered each group of projections that read one input ({@link
     * LinearOperatorFactory#createShared}); where it fuses them they become the parts of one {@link
     * SharedInputLinear}. Then it is asked once per remaining projection and may return null to
     * keep a layer as it is. The factory may also choose the attention's precision ({@link
     * LinearOperatorFactory#attentionPrecision}).
     *
     * @param factory makes an operator from a layer's fp32 weights
     * @return the number of layers that got a new operator
     */
    public int replaceLinearOperators(LinearOperatorFactory factory) {
        ComputePrecision attention = factory.attentionPrecision();
        if (attention != null) {
            setAttentionPrecision(attention);
        }
        int replaced = 0;
        List<LinearBlock> shared = new ArrayList<>();
        for (List<LinearBlock> group : getSharedInputGroups()) {
            LinearOperator fused = factory.createShared(group);
            if (fused != null) {
                int[] widths = group.stream().mapToInt(LinearBlock::getOutFeatures).toArray();
                SharedInputLinear parts = new SharedInputLinear(fused, widths);
                for (int i = 0; i < group.size(); i++) {
                    group.get(i).setOperator(parts.part(i));
                }
                shared.addAll(group);
                replaced += group.size();
            }
        }
        for (LinearBlock layer : getLinearBlocks()) {
            if (shared.contains(layer)) {
                continue;
            }
            LinearOperator op = factory.create(layer);
            if (op != null) {
                layer.setOperator(op);
                replaced++;
            }
        }
        return replaced;
    }

    /**
     * Drops the operators built over replaced parameter arrays (after a checkpoint load), so the
     * next forward builds fp32 ones over the new arrays.
     */
    public void resetLinearOperators() {
        for (LinearBlock layer : getLinearBlocks()) {
            layer.setOperator(null);
        }
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        if (inputs.isEmpty()) {
            throw new IllegalArgumentException(
                    getClass().getSimpleName() + " needs at least input_ids");
        }
        NDArray ids = find(inputs, "input_ids", 0);
        NDArray mask = find(inputs, "attention_mask", 1);
        NDArray types = find(inputs, "token_type_ids", 2);
        return encode(ids, mask, types);
    }

    private static NDArray find(NDList inputs, String name, int index) {
        NDArray named = inputs.get(name);
        if (named != null) {
            return named;
        }
        return inputs.size() > index ? inputs.get(index) : null;
    }

    /**
     * Frees the native memory of the linear operators and the activation buffers after the forwards
     * in flight have returned; later forwards throw {@link IllegalStateException}. The parameters
     * themselves belong to the manager they were created on, which the owner (a model, a {@code
     * TextEncoder}) closes after this.
     */
    @Override
    public void close() {
        guard.close(
                () -> {
                    resetLinearOperators();
                    buffers.close();
                });
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape ids = inputShapes[0];
        Shape hidden = ids.add(config.getHiddenSize());
        if (getPooler() == null) {
            return new Shape[] {hidden};
        }
        return new Shape[] {hidden, new Shape(ids.get(0), config.getHiddenSize())};
    }
}
