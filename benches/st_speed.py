"""sentence-transformers (PyTorch, CPU) speed on the sentences given on stdin (JSON list).

Prints one JSON line: {"batch32": sentences/s, "single": sentences/s, "torch": version}.
Used by `cargo bench --bench load -- language` for the ratio; needs `pip install sentence-transformers`
(about 6 GB with torch), so it is not part of CI.
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

sentences = json.load(sys.stdin)
model_dir = sys.argv[1]
torch.set_num_threads(2)
model = SentenceTransformer(model_dir, device="cpu")
model.encode(sentences[:32], batch_size=32)  # warm-up
start = time.perf_counter()
model.encode(sentences, batch_size=32)
batch = len(sentences) / (time.perf_counter() - start)
few = sentences[:64]
start = time.perf_counter()
for s in few:
    model.encode([s], batch_size=1)
single = len(few) / (time.perf_counter() - start)
print(json.dumps({"batch32": batch, "single": single, "torch": torch.__version__}))
