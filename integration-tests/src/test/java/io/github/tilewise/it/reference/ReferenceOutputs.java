package io.github.tilewise.it.reference;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Hugging Face transformers' outputs for one architecture's seeded checkpoint ({@code outputs.json}
 * short texts, {@code outputs-batch.json} a right-padded batch, {@code outputs-long.json} a ~300
 * token text and the long inputs), as made by {@code make_reference_models.py}.
 *
 * <p>Compare {@code last_hidden_state} at the recorded {@link Case#getRows() rows} of the real
 * tokens ({@code attention_mask == 1}); padded rows are recorded as null. The fidelity target of
 * issue 16 is 1e-4 absolute against the fp32 values.
 */
public final class ReferenceOutputs {

    /** One input (a text, or a padded batch of texts) and transformers' outputs for it. */
    public static final class Case {
        private final String file;
        private final JsonObject json;

        private Case(String file, JsonObject json) {
            this.file = file;
            this.json = json;
        }

        /** The reference file it came from. */
        public String getFile() {
            return file;
        }

        /** e.g. {@code short-0}, {@code batch-padded}, {@code long-4000}. */
        public String getName() {
            return json.get("name").getAsString();
        }

        /** {@code single} or {@code batch}. */
        public String getKind() {
            return json.get("kind").getAsString();
        }

        /** The texts, one per batch row. */
        public List<String> getTexts() {
            List<String> out = new ArrayList<>();
            for (JsonElement e : json.getAsJsonArray("texts")) {
                out.add(e.getAsString());
            }
            return out;
        }

        /** Token ids {@code [batch][seq]} (right-padded with the pad id), specials included. */
        public long[][] getInputIds() {
            return longMatrix(json.getAsJsonArray("input_ids"));
        }

        /** Attention mask {@code [batch][seq]}: 1 for real tokens. */
        public long[][] getAttentionMask() {
            return longMatrix(json.getAsJsonArray("attention_mask"));
        }

        /** Real tokens per batch row. */
        public int[] getLengths() {
            JsonArray a = json.getAsJsonArray("lengths");
            int[] out = new int[a.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = a.get(i).getAsInt();
            }
            return out;
        }

        /** Padded sequence length. */
        public int getSeqLen() {
            return json.get("seq_len").getAsInt();
        }

        /** The recorded sequence positions (every position for short inputs). */
        public int[] getRows() {
            JsonElement r = json.get("rows");
            if (r.isJsonPrimitive()) {
                int[] all = new int[getSeqLen()];
                for (int i = 0; i < all.length; i++) {
                    all[i] = i;
                }
                return all;
            }
            JsonArray a = r.getAsJsonArray();
            int[] out = new int[a.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = a.get(i).getAsInt();
            }
            return out;
        }

        /** Whether transformers' tokenizer and the raw tokenizer.json gave the same ids. */
        public boolean tokenizerIdsMatch() {
            return json.get("tokenizer_ids_match").getAsBoolean();
        }

        /**
         * The expected last hidden state at {@link #getRows()}: {@code [batch][row][hidden]}, null
         * rows for padding.
         *
         * @param precision {@code fp32} or {@code fp64}
         * @return the values
         */
        public double[][][] getLastHiddenState(String precision) {
            JsonArray batch = json.getAsJsonObject(precision).getAsJsonArray("last_hidden_state");
            double[][][] out = new double[batch.size()][][];
            for (int b = 0; b < out.length; b++) {
                JsonArray rows = batch.get(b).getAsJsonArray();
                out[b] = new double[rows.size()][];
                for (int r = 0; r < rows.size(); r++) {
                    out[b][r] =
                            rows.get(r).isJsonNull() ? null : vector(rows.get(r).getAsJsonArray());
                }
            }
            return out;
        }

        /**
         * The mean of the last hidden state over each row's real tokens (all of them, not only the
         * recorded rows): {@code [batch][hidden]}.
         *
         * @param precision {@code fp32} or {@code fp64}
         * @return the values
         */
        public double[][] getMeanPooled(String precision) {
            JsonArray a = json.getAsJsonObject(precision).getAsJsonArray("mean_pooled");
            double[][] out = new double[a.size()][];
            for (int b = 0; b < out.length; b++) {
                out[b] = vector(a.get(b).getAsJsonArray());
            }
            return out;
        }

        /** max |fp32 - fp64| over real tokens, as transformers computed it. */
        public double getMaxAbsFp32VsFp64() {
            return json.get("max_abs_fp32_vs_fp64").getAsDouble();
        }

        /** The raw JSON of the case. */
        public JsonObject getJson() {
            return json.deepCopy();
        }
    }

    private final String arch;
    private final List<JsonObject> files = new ArrayList<>();
    private final List<Case> cases = new ArrayList<>();

    private ReferenceOutputs(String arch) {
        this.arch = arch;
        for (String f : SeededCheckpoint.load(arch).getFiles()) {
            if (f.startsWith("outputs") && f.endsWith(".json")) {
                JsonObject doc = SeededCheckpoint.readJson(arch + "/" + f).getAsJsonObject();
                files.add(doc);
                for (JsonElement e : doc.getAsJsonArray("cases")) {
                    cases.add(new Case(f, e.getAsJsonObject()));
                }
            }
        }
    }

    /**
     * Reads every outputs file of an architecture.
     *
     * @param arch one of {@link SeededCheckpoint#ARCHITECTURES}
     * @return the outputs
     */
    public static ReferenceOutputs load(String arch) {
        return new ReferenceOutputs(arch);
    }

    /** The architecture. */
    public String getArch() {
        return arch;
    }

    /** Every case of every outputs file. */
    public List<Case> getCases() {
        return Collections.unmodifiableList(cases);
    }

    /**
     * One case by name.
     *
     * @param name e.g. {@code long-4000}
     * @return the case
     */
    public Case getCase(String name) {
        for (Case c : cases) {
            if (c.getName().equals(name)) {
                return c;
            }
        }
        throw new IllegalArgumentException(arch + " has no reference case " + name);
    }

    /**
     * The run's summary (ONNX export, window probe, sentence-transformers, loading info...), from
     * the first outputs file.
     */
    public JsonObject getSummary() {
        return files.get(0).getAsJsonObject("summary").deepCopy();
    }

    private static long[][] longMatrix(JsonArray a) {
        long[][] out = new long[a.size()][];
        for (int i = 0; i < out.length; i++) {
            JsonArray row = a.get(i).getAsJsonArray();
            out[i] = new long[row.size()];
            for (int j = 0; j < out[i].length; j++) {
                out[i][j] = row.get(j).getAsLong();
            }
        }
        return out;
    }

    private static double[] vector(JsonArray a) {
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsDouble();
        }
        return out;
    }
}
