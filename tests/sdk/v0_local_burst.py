#!/usr/bin/env python3
"""Hume's own v0 Python SDK (hume==0.13.13) reading vocal bursts measured on the local backend.

Usage:
    HUME_ACTION_URL=http://127.0.0.1:8080 MEDIA_AUDIO_FILE=/path/Laugh.ogg python v0_local_burst.py

The local burst model (YAMNet) fills `descriptions` with AudioSet class names and leaves
`emotions` empty (no local model measures a burst's emotions): the SDK's pydantic models must
read that. Prints one PASS/FAIL line a step and "N passed, M failed".
"""
import os
import sys
import time

from hume import HumeClient
from steps import check, run_steps
from hume.expression_measurement.batch import (
    BurstPrediction,
    InferenceBaseRequest,
    Models,
    StateInference_Completed,
    TimeInterval,
)

BASE_URL = os.environ.get("HUME_ACTION_URL", "").rstrip("/")


def main():
    client = HumeClient(api_key="test-key", base_url=BASE_URL, timeout=60.0)
    batch = client.expression_measurement.batch
    ctx = {}

    def step_a():
        with open(os.environ["MEDIA_AUDIO_FILE"], "rb") as fh:
            job_id = batch.start_inference_job_from_local_file(file=[fh], json=InferenceBaseRequest(models=Models(burst={})))
        deadline = time.monotonic() + 120.0
        while True:
            job = batch.get_job_details(job_id)
            if job.state.status in ("COMPLETED", "FAILED"):
                break
            check(time.monotonic() < deadline, f"job {job_id} not finished")
            time.sleep(0.3)
        check(isinstance(job.state, StateInference_Completed), f"job ended {job.state}")
        ctx["job"] = job_id
        return f"job_id={job_id}"

    def step_b():
        preds = batch.get_job_predictions(ctx["job"])
        check(preds[0].results.errors == [], f"errors {preds[0].results.errors}")
        burst = preds[0].results.predictions[0].models.burst
        found = [p for g in burst.grouped_predictions for p in g.predictions]
        check(found, "no burst in a laugh")
        for p in found:
            check(isinstance(p, BurstPrediction) and isinstance(p.time, TimeInterval), f"{type(p).__name__}")
            check(p.emotions == [], f"emotions {p.emotions}")
            check(all(0.0 <= d.score <= 1.0 for d in p.descriptions), "description scores")
        top = max(found[0].descriptions, key=lambda d: d.score)
        check("Laugh" in top.name or top.name in ("Giggle", "Snicker", "Chuckle, chortle"), f"top {top}")
        return f"{len(found)} bursts, top {top.name} {top.score:.2f}"

    return run_steps([
        ("a", "start_inference_job_from_local_file(laugh) burst to COMPLETED", step_a),
        ("b", "get_job_predictions: BurstPrediction with empty emotions, AudioSet descriptions", step_b),
    ])


if __name__ == "__main__":
    sys.exit(main())
