package io.github.tilewise.djl.engine;

import ai.djl.engine.Engine;
import ai.djl.engine.EngineProvider;

/** Registers the {@link TilewiseEngine} with DJL through {@code ServiceLoader}. */
public final class TilewiseEngineProvider implements EngineProvider {

    /** Creates the provider (called by {@code ServiceLoader}). */
    public TilewiseEngineProvider() {}

    @Override
    public String getEngineName() {
        return TilewiseEngine.ENGINE_NAME;
    }

    @Override
    public int getEngineRank() {
        return TilewiseEngine.RANK;
    }

    @Override
    public Engine getEngine() {
        return InstanceHolder.INSTANCE;
    }

    private static final class InstanceHolder {
        static final Engine INSTANCE = new TilewiseEngine();
    }
}
