package io.github.tilewise.djl.encoder.checkpoint;

import io.github.tilewise.djl.encoder.EncoderArchitecture;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Maps a family's Hugging Face tensor names onto the names Tilewise's blocks declare: BERT's for
 * every post-LayerNorm family ({@code transformer.layer.3.attention.q_lin.weight} of DistilBERT and
 * {@code encoder.layer.3.attention.attn.q.weight} of MPNet both become {@code
 * encoder.layer.3.attention.self.query.weight}), ModernBERT's own for ModernBERT. The prefix of
 * task models ({@code bert.}, {@code roberta.}, {@code distilbert.}, {@code mpnet.}, {@code
 * model.}) is dropped first.
 */
final class TensorNames {

    /** One renaming rule: a pattern over the whole name and its replacement. */
    private static final class Rule {
        final Pattern pattern;
        final String replacement;

        Rule(String regex, String replacement) {
            this.pattern = Pattern.compile(regex);
            this.replacement = replacement;
        }
    }

    private static final String LAYER = "encoder.layer.$1.";

    private static final List<Rule> DISTILBERT =
            List.of(
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.attention\\.q_lin\\.",
                            LAYER + "attention.self.query."),
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.attention\\.k_lin\\.",
                            LAYER + "attention.self.key."),
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.attention\\.v_lin\\.",
                            LAYER + "attention.self.value."),
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.attention\\.out_lin\\.",
                            LAYER + "attention.output.dense."),
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.sa_layer_norm\\.",
                            LAYER + "attention.output.LayerNorm."),
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.ffn\\.lin1\\.",
                            LAYER + "intermediate.dense."),
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.ffn\\.lin2\\.",
                            LAYER + "output.dense."),
                    new Rule(
                            "^transformer\\.layer\\.(\\d+)\\.output_layer_norm\\.",
                            LAYER + "output.LayerNorm."));

    private static final List<Rule> MPNET =
            List.of(
                    new Rule(
                            "^encoder\\.layer\\.(\\d+)\\.attention\\.attn\\.q\\.",
                            LAYER + "attention.self.query."),
                    new Rule(
                            "^encoder\\.layer\\.(\\d+)\\.attention\\.attn\\.k\\.",
                            LAYER + "attention.self.key."),
                    new Rule(
                            "^encoder\\.layer\\.(\\d+)\\.attention\\.attn\\.v\\.",
                            LAYER + "attention.self.value."),
                    new Rule(
                            "^encoder\\.layer\\.(\\d+)\\.attention\\.attn\\.o\\.",
                            LAYER + "attention.output.dense."),
                    new Rule(
                            "^encoder\\.layer\\.(\\d+)\\.attention\\.LayerNorm\\.",
                            LAYER + "attention.output.LayerNorm."));

    private TensorNames() {}

    /**
     * The weights of a family's linear layers in the order a forward computes them, for the
     * families whose layers may have no bias (and so cannot be named after it in an ONNX graph):
     * ModernBERT's {@code Wqkv}, {@code attn.Wo}, {@code Wi}, {@code mlp.Wo} per layer. Empty for
     * the others, whose every linear layer has a bias.
     *
     * @param architecture the family
     * @param layers the number of layers
     * @return the names, under the family's own (and Tilewise's) names
     */
    static List<String> unbiasedLinearsInOrder(EncoderArchitecture architecture, int layers) {
        if (architecture != EncoderArchitecture.MODERNBERT) {
            return List.of();
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            for (String linear : List.of("attn.Wqkv", "attn.Wo", "mlp.Wi", "mlp.Wo")) {
                names.add("layers." + i + "." + linear + ".weight");
            }
        }
        return names;
    }

    /**
     * Renames a checkpoint's tensors.
     *
     * @param architecture the checkpoint's family
     * @param tensors the tensors under their file names
     * @return the tensors under Tilewise's names, in the same order
     */
    static Map<String, CheckpointTensor> canonical(
            EncoderArchitecture architecture, Map<String, CheckpointTensor> tensors) {
        Map<String, CheckpointTensor> out = new LinkedHashMap<>();
        for (CheckpointTensor t : tensors.values()) {
            String name = rename(architecture, withoutTaskPrefix(architecture, t.getName()));
            out.put(name, name.equals(t.getName()) ? t : t.rename(name));
        }
        return out;
    }

    private static String withoutTaskPrefix(EncoderArchitecture architecture, String name) {
        String prefix;
        switch (architecture) {
            case ROBERTA:
            case XLM_ROBERTA:
                prefix = "roberta.";
                break;
            case DISTILBERT:
                prefix = "distilbert.";
                break;
            case MPNET:
                prefix = "mpnet.";
                break;
            case MODERNBERT:
                prefix = "model.";
                break;
            default:
                prefix = "bert.";
        }
        return name.startsWith(prefix) ? name.substring(prefix.length()) : name;
    }

    private static String rename(EncoderArchitecture architecture, String name) {
        List<Rule> rules =
                architecture == EncoderArchitecture.DISTILBERT
                        ? DISTILBERT
                        : architecture == EncoderArchitecture.MPNET ? MPNET : List.of();
        for (Rule r : rules) {
            Matcher m = r.pattern.matcher(name);
            if (m.find()) {
                return m.replaceFirst(r.replacement);
            }
        }
        return name;
    }
}
