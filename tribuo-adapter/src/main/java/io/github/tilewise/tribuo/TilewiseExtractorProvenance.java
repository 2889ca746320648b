package io.github.tilewise.tribuo;

import com.oracle.labs.mlrg.olcut.provenance.PrimitiveProvenance;
import com.oracle.labs.mlrg.olcut.provenance.Provenance;
import com.oracle.labs.mlrg.olcut.provenance.ProvenanceException;
import com.oracle.labs.mlrg.olcut.provenance.ProvenanceUtil;
import com.oracle.labs.mlrg.olcut.provenance.impl.SkeletalConfiguredObjectProvenance;
import com.oracle.labs.mlrg.olcut.provenance.primitives.HashProvenance;
import com.oracle.labs.mlrg.olcut.provenance.primitives.StringProvenance;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Provenance of a {@link TilewiseBERTFeatureExtractor}: its configuration (precision included) plus
 * the SHA-256 of the model and tokenizer files it read, so that swapping a file behind an unchanged
 * path shows up in every Tribuo model trained on its features.
 */
public final class TilewiseExtractorProvenance extends SkeletalConfiguredObjectProvenance {

    private static final long serialVersionUID = 1L;

    /** Instance-value key of the model file's SHA-256. */
    public static final String MODEL_HASH = "model-sha256";

    /** Instance-value key of the tokenizer file's SHA-256. */
    public static final String TOKENIZER_HASH = "tokenizer-sha256";

    /** Instance-value key of what CLS pooling reads ({@code pooler} or {@code first-token}). */
    public static final String CLS_SOURCE = "cls-source";

    private final HashProvenance modelHash;
    private final HashProvenance tokenizerHash;
    private final StringProvenance clsSource;

    TilewiseExtractorProvenance(
            TilewiseBERTFeatureExtractor<?> host,
            String modelHash,
            String tokenizerHash,
            String clsSource) {
        super(host, "FeatureExtractor");
        this.modelHash = new HashProvenance(ProvenanceUtil.HashType.SHA256, MODEL_HASH, modelHash);
        this.tokenizerHash =
                new HashProvenance(ProvenanceUtil.HashType.SHA256, TOKENIZER_HASH, tokenizerHash);
        this.clsSource = new StringProvenance(CLS_SOURCE, clsSource);
    }

    /**
     * Rebuilds the provenance from its marshalled form (used by OLCUT's provenance serialization).
     *
     * @param map the provenance entries
     * @throws ProvenanceException if an instance value is missing or has the wrong type
     */
    public TilewiseExtractorProvenance(Map<String, Provenance> map) {
        this(extract(map));
    }

    private TilewiseExtractorProvenance(ExtractedInfo info) {
        super(info);
        this.modelHash = checkAndExtractProvenance(info, MODEL_HASH, HashProvenance.class, "model");
        this.tokenizerHash =
                checkAndExtractProvenance(info, TOKENIZER_HASH, HashProvenance.class, "tokenizer");
        this.clsSource =
                checkAndExtractProvenance(info, CLS_SOURCE, StringProvenance.class, "cls source");
    }

    private static ExtractedInfo extract(Map<String, Provenance> map) {
        Map<String, Provenance> configured = new HashMap<>(map);
        String className = take(configured, CLASS_NAME).toString();
        String hostName = take(configured, HOST_SHORT_NAME).toString();
        Map<String, PrimitiveProvenance<?>> instance = new HashMap<>();
        for (String key : new String[] {MODEL_HASH, TOKENIZER_HASH, CLS_SOURCE}) {
            Provenance p = take(configured, key);
            if (!(p instanceof PrimitiveProvenance)) {
                throw new ProvenanceException(key + " is not a primitive provenance: " + p);
            }
            instance.put(key, (PrimitiveProvenance<?>) p);
        }
        return new ExtractedInfo(className, hostName, configured, instance);
    }

    private static Provenance take(Map<String, Provenance> map, String key) {
        Provenance p = map.remove(key);
        if (p == null) {
            throw new ProvenanceException("provenance has no '" + key + "' entry");
        }
        return p;
    }

    /**
     * Returns the SHA-256 of the model file.
     *
     * @return the hash in hexadecimal, as OLCUT writes it
     */
    public String getModelHash() {
        return modelHash.getValue();
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof TilewiseExtractorProvenance) || !super.equals(o)) {
            return false;
        }
        TilewiseExtractorProvenance other = (TilewiseExtractorProvenance) o;
        return modelHash.equals(other.modelHash)
                && tokenizerHash.equals(other.tokenizerHash)
                && clsSource.equals(other.clsSource);
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), modelHash, tokenizerHash, clsSource);
    }

    @Override
    public Map<String, PrimitiveProvenance<?>> getInstanceValues() {
        Map<String, PrimitiveProvenance<?>> values = new HashMap<>(super.getInstanceValues());
        values.put(MODEL_HASH, modelHash);
        values.put(TOKENIZER_HASH, tokenizerHash);
        values.put(CLS_SOURCE, clsSource);
        return values;
    }
}
