package io.github.tilewise.djl.engine;

import ai.djl.Device;
import ai.djl.inference.Predictor;
import ai.djl.inference.streaming.StreamingTranslator;
import ai.djl.translate.TranslateException;
import ai.djl.translate.Translator;
import io.github.tilewise.djl.CallGuard;
import io.github.tilewise.djl.encoder.PyTorchThreads;
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
 * @param <I> the input type
 * @param <O> the output type
 */
final class ModelPredictor<I, O> extends Predictor<I, O> {

    private final CallGuard guard;

    ModelPredictor(
            TilewiseModel model, Translator<I, O> translator, Device device, CallGuard guard) {
        super(model, translator, device, false);
        this.guard = guard;
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
