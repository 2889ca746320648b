package io.github.tilewise.djl.encoder.checkpoint;

import ai.onnx.proto.OnnxMl.NodeProto;

/**
 * Bounds-checked access to the inputs and outputs of ONNX nodes read from a file, where a node may
 * have fewer of them than its operator needs.
 */
public final class OnnxNodes {

    private OnnxNodes() {}

    /**
     * Returns input {@code i} of a node.
     *
     * @param n the node
     * @param i the input's index
     * @return its value name, or {@code ""} (ONNX's name for an omitted input) if it has fewer
     */
    public static String input(NodeProto n, int i) {
        return i < n.getInputCount() ? n.getInput(i) : "";
    }

    /**
     * Returns output {@code i} of a node.
     *
     * @param n the node
     * @param i the output's index
     * @return its value name, or {@code ""} if it has fewer
     */
    public static String output(NodeProto n, int i) {
        return i < n.getOutputCount() ? n.getOutput(i) : "";
    }
}
