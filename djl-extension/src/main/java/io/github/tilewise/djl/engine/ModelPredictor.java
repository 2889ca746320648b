package io.github.tilewise.djl.engine;

import ai.djl.Device;
import ai.djl.inference.Predictor;
import ai.djl.inference.streaming.StreamingTranslator;
import ai.djl.ndarray.NDList;
import ai.djl.translate.TranslateException;
import ai.djl.translate.Translator;
import ai.djl.translate.TranslatorContext;
import ai.djl.util.PairList;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.encoder.PyTorchThreads;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import java.util.List;

/**
 * DJL's predictor for a {@link TilewiseModel}, with each call inside the model's {@link CallGuard}:
 * closing the model waits for predictions in flight (their translators included, which read arrays
 * of the model's manager), and predictions after the close throw {@link IllegalStateException}
 * instead of touching freed memory. Each call also holds {@link PyTorchThreads#limit()} for the
 * translator's pre- and post-processing (tokens to arrays, pooling): PyTorch's first parallel op
 * after the forward's limit is lifted costs about 1 ms (its OpenMP team grows again), which was 15%
 * of a one-text prediction of all-MiniLM-L6-v2.
 *
 * <p>DJL's own {@code TextEmbeddingTranslator} pools and normalizes {@code last_hidden_state}
 * itself and reads no other output, so with it the block skips its own pooling ({@link
 * TextEncoderBlock#hiddenStatesOnly()}): on a one-text prediction of all-MiniLM-L6-v2 that pooling
 * was about 4% of the call.
 *
 * @param <I> the input type
 * @param <O> the output type
 */
final class ModelPredictor<I, O> extends Predictor<I, O> {

    /** DJL's translator that reads only {@code last_hidden_state} (or the first output). */
    private static final String DJL_TEXT_EMBEDDING =
            "ai.djl.huggingface.translator.TextEmbeddingTranslator";

    private final CallGuard guard;
    private final boolean hiddenStatesOnly;
    private final PairList<String, Object> hiddenStatesParams = TextEncoderBlock.hiddenStatesOnly();

    ModelPredictor(
            TilewiseModel model, Translator<I, O> translator, Device device, CallGuard guard) {
        super(model, translator, device, false);
        this.guard = guard;
        // The exact class: a subclass may read other outputs.
        hiddenStatesOnly =
                translator != null && DJL_TEXT_EMBEDDING.equals(translator.getClass().getName());
    }

    /**
     * Returns whether this predictor asks the block for the encoder's outputs only.
     *
     * @return true with DJL's {@code TextEmbeddingTranslator}
     */
    boolean isHiddenStatesOnly() {
        return hiddenStatesOnly;
    }

    @Override
    protected NDList predictInternal(TranslatorContext ctx, NDList ndList)
            throws TranslateException {
        if (hiddenStatesOnly && !ndList.isEmpty() && block instanceof TextEncoderBlock) {
            return block.forward(parameterStore, ndList, false, hiddenStatesParams);
        }
        return super.predictInternal(ctx, ndList);
    }

    @Override
    public List<O> batchPredict(List<I> inputs) throws TranslateException {
        try (CallGuard.Lease lease = guard.enter();
                PyTorchThreads limit = PyTorchThreads.limit()) {
            return super.batchPredict(inputs);
        }
    }

    @Override
    public O predict(I input) throws TranslateException {
        try (CallGuard.Lease lease = guard.enter();
                PyTorchThreads limit = PyTorchThreads.limit()) {
            return super.predict(input);
        }
    }

    /** Streaming would outlive the call; the encoders have nothing to stream. */
    @Override
    public StreamingTranslator.StreamOutput<O> streamingPredict(I input) {
        throw new UnsupportedOperationException("Tilewise models do not stream their outputs");
    }
}
