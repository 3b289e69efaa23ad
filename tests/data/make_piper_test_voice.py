"""Builds piper-test-voice.onnx: a voice model of piper's shape (inputs `input`,
`input_lengths`, `scales`; output audio) whose "voice" is a tone as long as piper asks
(256 samples per phoneme id, times the length scale). It stands in for the voice model
an administrator downloads, so the tests run piper itself (espeak phonemes, onnxruntime)
without one. Needs `pip install onnx`; run once, the files are kept in the repository:

    .venv/bin/python tests/data/make_piper_test_voice.py
"""

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).parent


def main() -> None:
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["n"], axis=0),
        helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["scales", "one"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["nf", "hop"], ["samples0"]),
        helper.make_node("Mul", ["samples0", "length_scale"], ["samples"]),
        helper.make_node("Floor", ["samples"], ["samples_floor"]),
        helper.make_node("Range", ["zero", "samples_floor", "onef"], ["t"]),
        helper.make_node("Mul", ["t", "omega"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "amp"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "out_shape"], ["output"]),
    ]
    constants = [
        helper.make_tensor("one", TensorProto.INT64, [], [1]),
        helper.make_tensor("hop", TensorProto.FLOAT, [], [256.0]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("onef", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("omega", TensorProto.FLOAT, [], [0.0628]),
        helper.make_tensor("amp", TensorProto.FLOAT, [], [0.3]),
        helper.make_tensor("out_shape", TensorProto.INT64, [3], [1, 1, -1]),
    ]
    graph = helper.make_graph(
        nodes,
        "loa-test-voice",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(HERE / "piper-test-voice.onnx"))
    symbols = ["_", "^", "$", " ", *"abcdefghijklmnopqrstuvwxyzɐɛɔəɯɤŋɲʔˈˌː0123456789"]
    config = {
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "vi"},
        "phoneme_type": "espeak",
        "num_symbols": len(symbols),
        "num_speakers": 1,
        "phoneme_id_map": {s: [i] for i, s in enumerate(symbols)},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
    }
    (HERE / "piper-test-voice.onnx.json").write_text(json.dumps(config, ensure_ascii=False))


if __name__ == "__main__":
    main()
