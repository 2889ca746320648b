package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.attention.ComputePrecision;
import io.github.tilewise.djl.encoder.linear.LinearActivation;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.LinearOperatorFactory;
import io.github.tilewise.djl.encoder.linear.SharedInputLinear;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A BERT-family encoder (BERT, MiniLM, and other checkpoints with BERT's layout): {@link
 * BertEmbeddings}, {@code N} {@link BertLayer}s and, when the checkpoint has one, the pooler {@code
 * tanh(dense(h[:, 0]))}.
 *
 * <p>Inputs ({@link NDList}, integer arrays {@code [batch, seq]}): {@code input_ids}, optionally
 * {@code attention_mask} (1 keeps a token; padding keys are masked in attention, so a text's
 * vectors do not depend on the padding around it) and {@code token_type_ids}. Outputs: {@code
 * last_hidden_state [batch, seq, hidden]} and, with a pooler, {@code pooler_output [batch,
 * hidden]}.
 *
 * <p>Each forward runs in a scoped sub-manager (only the outputs survive it) and with PyTorch's
 * intra-op pool limited as {@link PyTorchThreads} explains.
 */
public final class BertEncoder extends AbstractBlock implements AutoCloseable {

    /** Name of the token-embedding output. */
    public static final String LAST_HIDDEN_STATE = "last_hidden_state";

    /** Name of the pooler output. */
    public static final String POOLER_OUTPUT = "pooler_output";

    private static final byte VERSION = 1;

    private final EncoderConfig config;
    private final BertEmbeddings embeddings;
    private final List<BertLayer> layers;
    private final LinearBlock pooler;
    private volatile ComputePrecision attentionPrecision = ComputePrecision.DATA;
    private final CallGuard guard = new CallGuard("BertEncoder");

    /**
     * Creates an encoder with uninitialised parameters; load a checkpoint into it or call {@link
     * #initialize}.
     *
     * @param config the configuration, from the checkpoint
     */
    public BertEncoder(EncoderConfig config) {
        super(VERSION);
        this.config = config;
        embeddings = addChildBlock("embeddings", new BertEmbeddings(config));
        List<BertLayer> list = new ArrayList<>();
        for (int i = 0; i < config.getNumLayers(); i++) {
            list.add(addChildBlock("layer" + i, new BertLayer(config, i)));
        }
        layers = Collections.unmodifiableList(list);
        pooler =
                config.hasPooler()
                        ? addChildBlock(
                                "pooler",
                                new LinearBlock(
                                        "pooler.dense",
                                        config.getHiddenSize(),
                                        config.getHiddenSize(),
                                        LinearActivation.TANH))
                        : null;
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
     *     sequence longer than the position table
     * @throws IllegalStateException if the encoder is closed
     */
    public NDList encode(NDArray inputIds, NDArray attentionMask, NDArray tokenTypeIds) {
        try (CallGuard.Lease lease = guard.enter()) {
            return encodeLive(inputIds, attentionMask, tokenTypeIds);
        }
    }

    /**
     * Whether {@link #encode} runs padded batches as packed sequences (default true; {@code
     * -Dtilewise.packed=false} keeps the padded computation, for comparisons).
     */
    private static boolean packed() {
        return Boolean.parseBoolean(System.getProperty("tilewise.packed", "true"));
    }

    /**
     * The most tokens one packed forward holds ({@code -Dtilewise.packedTokens}, default 8192): a
     * larger batch runs in chunks of whole sequences, so its peak activation memory stays near
     * {@code packedTokens × (intermediate + 4 × hidden) × 4} bytes (about 70 MB for MiniLM, 200 MB
     * for BERT-base) however many texts it holds. A sequence longer than this runs alone.
     */
    private static int packedTokens() {
        return Math.max(1, Integer.getInteger("tilewise.packedTokens", 8192));
    }

    /**
     * The tokens of each row of a right-padded mask (1s, then only 0s: what tokenizers produce), or
     * null when there is nothing to unpad — no padding at all (a full batch runs as fast padded:
     * measured on 32 × 128 MiniLM batches, packing them only added per-sequence attention calls) —
     * or when the mask has another shape or a row has no token (the padded path handles those).
     */
    private static int[] rightPaddedLengths(NDArray mask, Shape shape) {
        int batch = Math.toIntExact(shape.get(0));
        int seq = Math.toIntExact(shape.get(1));
        int[] lengths = new int[batch];
        boolean padded = false;
        if (mask == null) {
            return null;
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
            padded |= n < seq;
        }
        return padded ? lengths : null;
    }

    /**
     * A right-padded batch computed as packed sequences, in chunks of at most {@link
     * #packedTokens()} tokens; the outputs are shaped as the padded ones ({@code last_hidden_state}
     * zero at padded positions), so callers cannot tell, except that no padded row was computed.
     */
    private NDList encodeUnpadded(NDArray ids, NDArray types, Shape shape, int[] lengths) {
        int batch = lengths.length;
        int seq = Math.toIntExact(shape.get(1));
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
     * Encodes packed sequences: the tokens of every text one after another, with no padding, so
     * that no layer computes a padded row. Sequence {@code s} owns tokens {@code [offsets[s],
     * offsets[s + 1])}, has positions 0, 1, ... and attends only to its own tokens.
     *
     * @param inputIds {@code [tokens]} token ids
     * @param tokenTypeIds {@code [tokens]} segment ids, or null for all 0
     * @param offsets {@code numSequences + 1} offsets from 0 to {@code tokens}, each sequence
     *     holding 1 to {@code maxPositions} tokens
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

    private NDList encodePackedLive(NDArray inputIds, NDArray tokenTypeIds, int[] offsets) {
        long tokens = checkPacked(inputIds, tokenTypeIds, offsets);
        int sequences = offsets.length - 1;
        long[] positions = new long[(int) tokens];
        long[] firsts = new long[sequences];
        for (int s = 0; s < sequences; s++) {
            firsts[s] = offsets[s];
            for (int t = offsets[s]; t < offsets[s + 1]; t++) {
                positions[t] = t - offsets[s];
            }
        }
        NDManager parent = inputIds.getManager();
        try (PyTorchThreads limit = PyTorchThreads.limit();
                NDManager scope = parent.newSubManager()) {
            attachAndCheckIds(scope, inputIds, tokenTypeIds);
            AttentionOptions attention =
                    AttentionOptions.builder().optComputePrecision(attentionPrecision).build();
            NDArray hidden = embeddings.apply(inputIds, tokenTypeIds, scope.create(positions));
            for (BertLayer layer : layers) {
                NDArray next = layer.applyPacked(hidden, offsets, attention);
                hidden.close();
                hidden = next;
            }
            hidden.setName(LAST_HIDDEN_STATE);
            NDList out = new NDList(hidden);
            if (pooler != null) {
                NDArray pooled = pooler.apply(rows(hidden, scope.create(firsts)), null);
                pooled.setName(POOLER_OUTPUT);
                out.add(pooled);
            }
            return scope.ret(out);
        }
    }

    /** Rows {@code index} of a matrix (a gather, through the embedding lookup). */
    static NDArray rows(NDArray matrix, NDArray index) {
        return index.getNDArrayInternal()
                .embedding(index, matrix, SparseFormat.DENSE)
                .singletonOrThrow();
    }

    /** The token count of a packed batch, after checking its arrays and offsets. */
    private long checkPacked(NDArray ids, NDArray types, int[] offsets) {
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
        for (int s = 0; s + 1 < offsets.length; s++) {
            int length = offsets[s + 1] - offsets[s];
            if (length < 1 || length > config.getMaxPositions()) {
                throw new IllegalArgumentException(
                        "packed sequence "
                                + s
                                + " has "
                                + length
                                + " tokens; each must hold 1 to "
                                + config.getMaxPositions()
                                + " (the position table)");
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
        return shape.get(0);
    }

    private NDList encodeLive(NDArray inputIds, NDArray attentionMask, NDArray tokenTypeIds) {
        Shape shape = checkInputs(inputIds, attentionMask, tokenTypeIds);
        int[] lengths = packed() ? rightPaddedLengths(attentionMask, shape) : null;
        if (lengths != null) {
            return encodeUnpadded(inputIds, tokenTypeIds, shape, lengths);
        }
        NDManager parent = inputIds.getManager();
        try (PyTorchThreads limit = PyTorchThreads.limit();
                NDManager scope = parent.newSubManager()) {
            if (attentionMask != null) {
                attentionMask.tempAttach(scope);
            }
            attachAndCheckIds(scope, inputIds, tokenTypeIds);
            AttentionOptions attention = attentionOptions(attentionMask, shape, attentionPrecision);
            NDArray hidden = embeddings.apply(inputIds, tokenTypeIds);
            for (BertLayer layer : layers) {
                NDArray next = layer.apply(hidden, attention);
                hidden.close();
                hidden = next;
            }
            hidden.setName(LAST_HIDDEN_STATE);
            NDList out = new NDList(hidden);
            if (pooler != null) {
                NDArray first = hidden.get(new NDIndex(":, 0, :"));
                NDArray pooled = pooler.apply(first, null);
                pooled.setName(POOLER_OUTPUT);
                out.add(pooled);
            }
            return scope.ret(out);
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
     * Returns the encoder layers, first to last.
     *
     * @return the layers (unmodifiable)
     */
    public List<BertLayer> getLayers() {
        return layers;
    }

    /**
     * Returns every linear projection (per layer: query, key, value, attention output,
     * intermediate, output; then the pooler), for converters.
     *
     * @return the projections
     */
    public List<LinearBlock> getLinearBlocks() {
        List<LinearBlock> all = new ArrayList<>();
        for (BertLayer layer : layers) {
            all.addAll(layer.getLinearBlocks());
        }
        if (pooler != null) {
            all.add(pooler);
        }
        return all;
    }

    /**
     * Substitutes the arithmetic of the linear projections, e.g. by INT8 kernels. Per layer the
     * factory is first offered the query, key and value projections together ({@link
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
        for (BertLayer layer : layers) {
            List<LinearBlock> qkv = layer.getAttentionProjections();
            LinearOperator fused = factory.createShared(qkv);
            if (fused != null) {
                int[] widths = qkv.stream().mapToInt(LinearBlock::getOutFeatures).toArray();
                SharedInputLinear group = new SharedInputLinear(fused, widths);
                for (int i = 0; i < qkv.size(); i++) {
                    qkv.get(i).setOperator(group.part(i));
                }
                shared.addAll(qkv);
                replaced += qkv.size();
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
     * Returns every parameter with its Hugging Face checkpoint name (without a {@code bert.}
     * prefix) and shape, in checkpoint order.
     *
     * @return the parameters
     */
    public List<CheckpointParameter> getCheckpointParameters() {
        List<CheckpointParameter> out = new ArrayList<>();
        embeddings.collectCheckpointParameters(out);
        for (BertLayer layer : layers) {
            layer.collectCheckpointParameters(out);
        }
        if (pooler != null) {
            BertLayer.collectLinear(pooler, out);
        }
        return out;
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
            throw new IllegalArgumentException("BertEncoder needs at least input_ids");
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
     * Frees the native memory of the linear operators after the forwards in flight have returned;
     * later forwards throw {@link IllegalStateException}. The parameters themselves belong to the
     * manager they were created on, which the owner (a model, a {@code TextEncoder}) closes after
     * this.
     */
    @Override
    public void close() {
        guard.close(this::resetLinearOperators);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape ids = inputShapes[0];
        Shape hidden = ids.add(config.getHiddenSize());
        if (pooler == null) {
            return new Shape[] {hidden};
        }
        return new Shape[] {hidden, new Shape(ids.get(0), config.getHiddenSize())};
    }

    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape ids = inputShapes[0];
        embeddings.initialize(manager, dataType, ids);
        Shape hidden = ids.add(config.getHiddenSize());
        for (BertLayer layer : layers) {
            layer.initialize(manager, dataType, hidden);
        }
        if (pooler != null) {
            pooler.initialize(manager, dataType, new Shape(ids.get(0), config.getHiddenSize()));
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
        if (shape.get(1) > config.getMaxPositions()) {
            throw new IllegalArgumentException(
                    "the input has "
                            + shape.get(1)
                            + " tokens but the model's position table has "
                            + config.getMaxPositions()
                            + " rows: truncate the input to at most "
                            + config.getMaxPositions()
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

    /** Lends the ids to the call's scope and checks they index the model's tables. */
    private void attachAndCheckIds(NDManager scope, NDArray inputIds, NDArray tokenTypeIds) {
        inputIds.tempAttach(scope);
        checkIdRange("input_ids", inputIds, config.getVocabSize());
        if (tokenTypeIds != null) {
            tokenTypeIds.tempAttach(scope);
            checkIdRange("token_type_ids", tokenTypeIds, Math.max(1, config.getTypeVocabSize()));
        }
    }

    private static void checkIdRange(String name, NDArray ids, int size) {
        long min = ids.min().getLong();
        long max = ids.max().getLong();
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
     * Turns an attention mask into attention options: right-padded masks (the tokenizer's) become
     * key valid lengths, which let the kernel skip padded tiles; any other mask is passed as a key
     * padding mask.
     */
    static AttentionOptions attentionOptions(
            NDArray mask, Shape shape, ComputePrecision precision) {
        AttentionOptions.Builder options =
                AttentionOptions.builder()
                        .optLayout(AttentionLayout.BATCH_SEQ_HEADS_DIM)
                        .optComputePrecision(precision);
        if (mask == null) {
            return options.build();
        }
        int batch = (int) shape.get(0);
        int seq = (int) shape.get(1);
        int[] values;
        if (mask.getDataType() == DataType.INT32) {
            values = mask.toIntArray();
        } else {
            try (NDArray asInt = mask.toType(DataType.INT32, true)) {
                values = asInt.toIntArray();
            }
        }
        int[] lengths = new int[batch];
        boolean prefix = true;
        for (int b = 0; b < batch && prefix; b++) {
            int len = 0;
            while (len < seq && values[b * seq + len] != 0) {
                len++;
            }
            for (int t = len; t < seq; t++) {
                if (values[b * seq + t] != 0) {
                    prefix = false;
                    break;
                }
            }
            lengths[b] = len;
        }
        return prefix
                ? options.optKeyValidLengths(lengths).build()
                : options.optKeyPaddingMask(mask).build();
    }
}
