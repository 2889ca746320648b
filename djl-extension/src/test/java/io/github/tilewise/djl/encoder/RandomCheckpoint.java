package io.github.tilewise.djl.encoder;

import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/** Random encoder weights under Hugging Face names, for tests that need no real model. */
final class RandomCheckpoint {

    private RandomCheckpoint() {}

    /** Creates a checkpoint with random weights for {@code config} (layer norms near identity). */
    static EncoderCheckpoint create(EncoderConfig config, long seed) {
        Random random = new Random(seed);
        Map<String, CheckpointTensor> tensors = new LinkedHashMap<>();
        TextEncoderBlock shapes = new TextEncoderBlock(config, Pooling.CLS, false);
        for (CheckpointParameter p : shapes.getCheckpointParameters()) {
            long[] shape = p.getShape().getShape();
            int n = (int) p.getShape().size();
            float[] data = new float[n];
            // Norm scales (BERT's "LayerNorm.weight", ModernBERT's "attn_norm.weight", ...).
            boolean gamma =
                    p.getName().endsWith("LayerNorm.weight") || p.getName().endsWith("norm.weight");
            // Weights scaled like a trained model's (std ~ 1/sqrt(in)) so activations stay O(1).
            double scale = shape.length == 2 ? 1.0 / Math.sqrt(shape[1]) : 0.1;
            if (p.getName().contains("embeddings")) {
                scale = 0.5;
            }
            for (int i = 0; i < n; i++) {
                data[i] =
                        (float)
                                (gamma
                                        ? 1 + 0.2 * random.nextGaussian()
                                        : scale * random.nextGaussian());
            }
            tensors.put(p.getName(), new CheckpointTensor(p.getName(), shape, data));
        }
        return new EncoderCheckpoint(Path.of("random-" + seed), config, tensors, "test");
    }

    /** The tensors as plain arrays, for {@link NaiveBert}. */
    static Map<String, float[]> arrays(EncoderCheckpoint checkpoint) {
        Map<String, float[]> out = new LinkedHashMap<>();
        checkpoint.getTensors().forEach((k, v) -> out.put(k, v.getData()));
        return out;
    }
}
