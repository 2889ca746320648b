package io.github.tilewise.djl.engine;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.engine.StandardCapabilities;
import ai.djl.ndarray.NDManager;

/**
 * The hybrid DJL engine {@code "Tilewise"}: its models are Tilewise encoder blocks loaded from ONNX
 * files or Hugging Face directories, and all NDArray work is delegated to DJL's PyTorch engine (the
 * {@link #getAlternativeEngine() alternative engine}), the way DJL's ONNX Runtime engine leans on
 * it. A DJL user switches by changing only the {@code Criteria}: {@code optEngine("Tilewise")}.
 *
 * <p>CPU only for now: GPU devices are refused with a clear message.
 */
public final class TilewiseEngine extends Engine {

    /** The engine's name for {@code Criteria.optEngine} and {@code Engine.getEngine}. */
    public static final String ENGINE_NAME = "Tilewise";

    /** Ranked after PyTorch so it never becomes DJL's default engine by accident. */
    static final int RANK = 20;

    private static final String PYTORCH = "PyTorch";

    TilewiseEngine() {}

    private static Engine pytorch() {
        if (!Engine.hasEngine(PYTORCH)) {
            throw new IllegalStateException(
                    "the Tilewise engine needs DJL's PyTorch engine (ai.djl.pytorch:pytorch-engine)"
                            + " on the classpath");
        }
        return Engine.getEngine(PYTORCH);
    }

    @Override
    public Engine getAlternativeEngine() {
        return pytorch();
    }

    @Override
    public String getEngineName() {
        return ENGINE_NAME;
    }

    @Override
    public int getRank() {
        return RANK;
    }

    @Override
    public String getVersion() {
        String v = TilewiseEngine.class.getPackage().getImplementationVersion();
        return v == null ? "0.1.0-SNAPSHOT" : v;
    }

    @Override
    public boolean hasCapability(String capability) {
        if (StandardCapabilities.CUDA.equals(capability)
                || StandardCapabilities.CUDNN.equals(capability)) {
            return false;
        }
        return pytorch().hasCapability(capability);
    }

    @Override
    public Device defaultDevice() {
        return Device.cpu();
    }

    @Override
    public Model newModel(String name, Device device) {
        return new TilewiseModel(name, newBaseManager(device));
    }

    @Override
    public NDManager newBaseManager() {
        return newBaseManager(null);
    }

    @Override
    public NDManager newBaseManager(Device device) {
        if (device != null && !Device.Type.CPU.equals(device.getDeviceType())) {
            throw new IllegalArgumentException(
                    "the Tilewise engine runs encoders on the CPU only, got device " + device);
        }
        return pytorch().newBaseManager(Device.cpu());
    }

    @Override
    public void setRandomSeed(int seed) {
        pytorch().setRandomSeed(seed);
    }

    @Override
    public String toString() {
        return ENGINE_NAME + ':' + getVersion() + " (NDArrays on " + PYTORCH + ")";
    }
}
