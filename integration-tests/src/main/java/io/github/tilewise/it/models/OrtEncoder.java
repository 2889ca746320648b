package io.github.tilewise.it.models;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** ONNX Runtime running an encoder's ONNX file on token batches: the reference and the peer. */
public final class OrtEncoder implements AutoCloseable {

    private final OrtEnvironment env;
    private final OrtSession session;

    /**
     * Opens a session.
     *
     * @param onnxFile the model
     * @param intraOpThreads ONNX Runtime's intra-op threads
     * @throws OrtException if ONNX Runtime cannot load it
     */
    public OrtEncoder(Path onnxFile, int intraOpThreads) throws OrtException {
        env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(intraOpThreads);
            options.setInterOpNumThreads(1);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = env.createSession(onnxFile.toString(), options);
        }
    }

    /**
     * Runs a batch and returns every float output flattened (row-major), by output position.
     *
     * @param batch the tokens
     * @return the outputs, e.g. {@code [last_hidden_state [B*S*H], pooler [B*H]]}
     * @throws OrtException if the run fails
     */
    public float[][] run(TokenBatch batch) throws OrtException {
        long[] shape = {batch.getBatchSize(), batch.getSequenceLength()};
        Map<String, OnnxTensor> inputs = new HashMap<>();
        try {
            inputs.put("input_ids", tensor(batch.getInputIds(), shape));
            inputs.put("attention_mask", tensor(batch.getAttentionMask(), shape));
            if (session.getInputNames().contains("token_type_ids")) {
                inputs.put("token_type_ids", tensor(batch.getTokenTypeIds(), shape));
            }
            try (OrtSession.Result result = session.run(inputs)) {
                float[][] out = new float[result.size()][];
                for (int i = 0; i < result.size(); i++) {
                    OnnxTensor t = (OnnxTensor) result.get(i);
                    FloatBuffer fb = t.getFloatBuffer();
                    out[i] = new float[fb.remaining()];
                    fb.get(out[i]);
                }
                return out;
            }
        } finally {
            inputs.values().forEach(OnnxTensor::close);
        }
    }

    private OnnxTensor tensor(long[] data, long[] shape) throws OrtException {
        return OnnxTensor.createTensor(env, LongBuffer.wrap(data), shape);
    }

    @Override
    public void close() throws OrtException {
        session.close();
    }
}
