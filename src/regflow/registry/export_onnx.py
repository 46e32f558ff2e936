"""`--format onnx`: the linear model as a float64 ONNX graph with one named input per feature.

The graph is nn.Linear's computation, x @ W.T + b, on the registry's coefficients in
original units: Concat(one [N, 1] input per feature, in signature order) -> MatMul(coef
[d, 1]) -> Add(intercept) -> `predicted` [N, 1].

Built with the `onnx` helper API rather than `torch.onnx.export` because:
- the registry holds the model as float64 coefficients in original units; the trained
  nn.Linear is float32 on standardised data, so exporting it would change the predictions;
- torch 2.13's exporter is the dynamo one, which needs `onnxscript` (and torch) at export
  time, while these three nodes need only `onnx`;
- the helper API names every input after its feature exactly.

Opset 17 with IR version 8 keeps the file loadable by runtimes a few years old. The source
record is in the model's metadata_props (`regflow.source.*`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from regflow.registry.export import ExportResult, write_atomically
from regflow.registry.predictor import Predictor

OPSET = 17
IR_VERSION = 8  # the IR version that introduced opset 17
OUTPUT = "predicted"  # never a feature: training refuses that column name (reserved_column)


def _internal(name: str, taken: set[str]) -> str:
    """`regflow/<name>`, suffixed until it is no feature's name."""
    candidate, n = f"regflow/{name}", 1
    while candidate in taken:
        candidate, n = f"regflow/{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def metadata(predictor: Predictor, source: dict[str, Any]) -> dict[str, str]:
    """metadata_props: the source record, the feature order and the target."""
    props = {f"regflow.source.{key}": str(value) for key, value in source.items()}
    props["regflow.features"] = json.dumps(predictor.feature_names)
    props["regflow.target"] = predictor.target
    return props


def to_onnx(predictor: Predictor, source: dict[str, Any]) -> Any:
    """The checked `onnx.ModelProto` of `predictor`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    features = predictor.feature_names
    taken = {*features, OUTPUT}
    concat, weight, bias, product = (
        _internal(n, taken) for n in ("features", "weight", "bias", "product")
    )
    coef = np.asarray(predictor.weights.coef, dtype=np.float64).reshape(-1, 1)
    intercept = np.array([predictor.weights.intercept], dtype=np.float64)
    graph = helper.make_graph(
        nodes=[
            helper.make_node("Concat", features, [concat], axis=1),
            helper.make_node("MatMul", [concat, weight], [product]),
            helper.make_node("Add", [product, bias], [OUTPUT]),
        ],
        name=predictor.name,
        inputs=[helper.make_tensor_value_info(f, TensorProto.DOUBLE, ["N", 1]) for f in features],
        outputs=[helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, ["N", 1])],
        initializer=[
            numpy_helper.from_array(coef, name=weight),
            numpy_helper.from_array(intercept, name=bias),
        ],
        doc_string=f"{predictor.target} = intercept + sum of coef * feature ({predictor.ref})",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="regflow",
        producer_version=str(source.get("regflow_version", "")),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata(predictor, source))
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(predictor: Predictor, out: Path, source: dict[str, Any]) -> ExportResult:
    data = to_onnx(predictor, source).SerializeToString()
    write_atomically(out, lambda tmp: Path(tmp).write_bytes(data))
    return ExportResult("onnx", out, source)
