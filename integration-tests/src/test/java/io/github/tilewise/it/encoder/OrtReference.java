package io.github.tilewise.it.encoder;

import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import io.github.tilewise.djl.encoder.text.TokenBatch;
import io.github.tilewise.it.models.OrtEncoder;
import java.util.List;

/** Sentence embeddings computed from ONNX Runtime's token vectors, in float64. */
final class OrtReference {

    private OrtReference() {}

    /**
     * Mean-pools ONNX Runtime's last hidden state of each text (run alone, no padding).
     *
     * @param ort the session
     * @param tokenizer the tokenizer
     * @param texts the texts
     * @param hidden the hidden size
     * @param normalize whether to L2-normalise
     * @return one vector per text
     * @throws Exception if ONNX Runtime fails
     */
    static double[][] meanPooled(
            OrtEncoder ort,
            EncoderTokenizer tokenizer,
            List<String> texts,
            int hidden,
            boolean normalize)
            throws Exception {
        double[][] out = new double[texts.size()][hidden];
        for (int i = 0; i < texts.size(); i++) {
            TokenBatch alone = tokenizer.encode(List.of(texts.get(i)));
            float[] tokens = ort.run(alone)[0];
            int len = alone.getSequenceLength();
            for (int t = 0; t < len; t++) {
                for (int h = 0; h < hidden; h++) {
                    out[i][h] += tokens[t * hidden + h] / (double) len;
                }
            }
            if (normalize) {
                double norm = 0;
                for (double v : out[i]) {
                    norm += v * v;
                }
                norm = Math.sqrt(norm);
                for (int h = 0; h < hidden; h++) {
                    out[i][h] /= norm;
                }
            }
        }
        return out;
    }

    static double cosine(double[] a, float[] b) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }

    static double maxAbsDiff(double[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
