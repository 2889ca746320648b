package io.github.tilewise.it.bench;

import ai.onnx.proto.OnnxMl;

/** The graph inputs and outputs of the ONNX models the benchmarks build for ONNX Runtime. */
final class OnnxValueInfo {

    private OnnxValueInfo() {}

    /**
     * A tensor's name, element type and shape.
     *
     * @param name the name
     * @param type the element type
     * @param dims each a {@code Number} (fixed) or a {@code String} (symbolic)
     * @return the value info
     */
    static OnnxMl.ValueInfoProto of(String name, OnnxMl.TensorProto.DataType type, Object... dims) {
        OnnxMl.TensorShapeProto.Builder shape = OnnxMl.TensorShapeProto.newBuilder();
        for (Object dim : dims) {
            OnnxMl.TensorShapeProto.Dimension.Builder b =
                    OnnxMl.TensorShapeProto.Dimension.newBuilder();
            if (dim instanceof String) {
                b.setDimParam((String) dim);
            } else {
                b.setDimValue(((Number) dim).longValue());
            }
            shape.addDim(b);
        }
        return OnnxMl.ValueInfoProto.newBuilder()
                .setName(name)
                .setType(
                        OnnxMl.TypeProto.newBuilder()
                                .setTensorType(
                                        OnnxMl.TypeProto.Tensor.newBuilder()
                                                .setElemType(type.getNumber())
                                                .setShape(shape)))
                .build();
    }
}
