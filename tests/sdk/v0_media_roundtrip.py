#!/usr/bin/env python3
"""Hume's own v0 Python SDK (hume==0.13.13) reading face, prosody and burst predictions.

Usage:
    HUME_ACTION_URL=http://127.0.0.1:8080 MEDIA_VIDEO_URL=... MEDIA_IMAGE_URL=... MEDIA_AUDIO_FILE=/path.mp3 \
        python v0_media_roundtrip.py

The server runs the `hume` backend against a fake of Hume's v1 API (tests/api/fake_v1.rs);
every response is parsed by the SDK's own pydantic models, so a shape the SDK cannot read fails.
Prints one PASS/FAIL line a step and "N passed, M failed".
"""
import io
import os
import sys
import time
import zipfile

from hume import HumeClient
from steps import check, run_steps
from hume.expression_measurement.batch import (
    BoundingBox,

    BurstPrediction,
    Face,
    FacePrediction,
    InferenceBaseRequest,
    Language,
    LanguagePrediction,
    InferenceSourcePredictResult,
    Models,
    Prosody,
    ProsodyPrediction,
    Source_File,
    Source_Url,
    StateInference_Completed,
    TimeInterval,
)

BASE_URL = os.environ.get("HUME_ACTION_URL", "").rstrip("/")
API_KEY = os.environ.get("HUME_API_KEY", "test-key")
EMOTIONS = 48
BURST_TYPES = 67


def wait_completed(batch, job_id, budget_s=120.0):
    deadline = time.monotonic() + budget_s
    while True:
        job = batch.get_job_details(job_id)
        if job.state.status in ("COMPLETED", "FAILED"):
            check(isinstance(job.state, StateInference_Completed), f"job ended {job.state}")
            return job
        check(time.monotonic() < deadline, f"job {job_id} not finished in {budget_s}s")
        time.sleep(0.3)


def check_scores(scores, count, where):
    check(len(scores) == count, f"{where}: {len(scores)} scores, expected {count}")
    check(all(isinstance(s.score, float) and 0.0 <= s.score <= 1.0 for s in scores), f"{where}: bad score")
    check(len({s.name for s in scores}) == count, f"{where}: duplicate names")


def check_voice(output, cls, where):
    check(output is not None and output.grouped_predictions, f"{where}: no output")
    n = 0
    for group in output.grouped_predictions:
        for p in group.predictions:
            n += 1
            check(isinstance(p, cls), f"{where}: {type(p).__name__} is not {cls.__name__}")
            check(isinstance(p.time, TimeInterval) and p.time.begin < p.time.end, f"{where}: time {p.time}")
            check_scores(p.emotions, EMOTIONS, f"{where}.emotions")
            if cls is BurstPrediction:
                check_scores(p.descriptions, BURST_TYPES, f"{where}.descriptions")
    check(n > 0, f"{where}: no predictions")
    return n


def main():
    client = HumeClient(api_key=API_KEY, base_url=BASE_URL, timeout=60.0)
    batch = client.expression_measurement.batch
    ctx = {}

    def step_a():
        urls = [os.environ["MEDIA_VIDEO_URL"], os.environ["MEDIA_IMAGE_URL"]]
        models = Models(face=Face(identify_faces=True, descriptions={}), prosody=Prosody(), burst={})
        job_id = batch.start_inference_job(urls=urls, models=models)
        job = wait_completed(batch, job_id)
        check(job.request.models.face.fps_pred == 3, f"echoed fps_pred {job.request.models.face.fps_pred}")
        ctx["url_job"] = job_id
        return f"job_id={job_id}, {job.state.num_predictions} predictions"

    def step_b():
        preds = batch.get_job_predictions(ctx["url_job"])
        check(len(preds) == 2, f"{len(preds)} results")
        video, image = preds
        for r in preds:
            check(isinstance(r, InferenceSourcePredictResult) and isinstance(r.source, Source_Url), "source")
            check(r.results.errors == [], f"errors {r.results.errors}")
        models = video.results.predictions[0].models
        faces = 0
        for group in models.face.grouped_predictions:
            check(group.id.startswith("face_"), f"identify_faces group id {group.id!r}")
            for f in group.predictions:
                faces += 1
                check(isinstance(f, FacePrediction), "face prediction type")
                check(isinstance(f.box, BoundingBox) and f.box.w > 0 and f.box.h > 0, f"box {f.box}")
                check(isinstance(f.frame, int) and isinstance(f.time, float) and 0 < f.prob <= 1, "frame/time/prob")
                check_scores(f.emotions, EMOTIONS, "face.emotions")
                check(f.descriptions, "face.descriptions requested but missing")
        prosody = check_voice(models.prosody, ProsodyPrediction, "video prosody")
        burst = check_voice(models.burst, BurstPrediction, "video burst")
        image_faces = image.results.predictions[0].models.face.grouped_predictions[0].predictions
        check(len(image_faces) == 1 and image_faces[0].frame == 0, "image face")
        return f"{faces} video faces, {prosody} prosody and {burst} burst windows, 1 image face"

    def step_c():
        path = os.environ["MEDIA_AUDIO_FILE"]
        with open(path, "rb") as fh:
            job_id = batch.start_inference_job_from_local_file(
                file=[fh], json=InferenceBaseRequest(models=Models(prosody=Prosody(), burst={})))
        wait_completed(batch, job_id)
        preds = batch.get_job_predictions(job_id)
        check(isinstance(preds[0].source, Source_File), "upload source")
        models = preds[0].results.predictions[0].models
        n = check_voice(models.prosody, ProsodyPrediction, "upload prosody")
        check_voice(models.burst, BurstPrediction, "upload burst")
        ctx["upload_job"] = job_id
        return f"{n} prosody windows from an uploaded file"

    def step_d():
        data = b"".join(batch.get_job_artifacts(ctx["url_job"]))
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = sorted(z.namelist())
        check(names == ["burst.csv", "face.csv", "prosody.csv", "timeline.csv"], f"artifacts {names}")
        return f"artifacts {names}"

    def step_e():
        path = os.environ["MEDIA_AUDIO_FILE"]
        with open(path, "rb") as fh:
            job_id = batch.start_inference_job_from_local_file(
                file=[fh], json=InferenceBaseRequest(models=Models(language=Language(granularity="sentence"))))
        wait_completed(batch, job_id)
        preds = batch.get_job_predictions(job_id)
        language = preds[0].results.predictions[0].models.language
        meta = language.metadata
        check(meta is not None and isinstance(meta.confidence, float), f"transcription metadata {meta}")
        sentences = [p for g in language.grouped_predictions for p in g.predictions]
        check(sentences, "no language predictions on speech")
        for p in sentences:
            check(isinstance(p, LanguagePrediction) and isinstance(p.time, TimeInterval), f"{type(p).__name__} time")
            check(len(p.emotions) == 53, f"{len(p.emotions)} language emotions")
        return f"{len(sentences)} spoken sentences, detected {meta.detected_language}"

    def step_f():
        path = os.environ["MEDIA_AUDIO_FILE"]
        models = Models(prosody=Prosody(), language=Language(granularity="utterance"))
        with open(path, "rb") as fh:
            job_id = batch.start_inference_job_from_local_file(file=[fh], json=InferenceBaseRequest(models=models))
        wait_completed(batch, job_id)
        prediction = batch.get_job_predictions(job_id)[0].results.predictions[0]
        n = check_voice(prediction.models.prosody, ProsodyPrediction, "prosody beside voice measures")
        # The voice measures are an extra field the SDK's models keep without knowing them.
        voice = getattr(prediction, "voice", None)
        check(isinstance(voice, list) and voice, f"voice measures on the prediction: {voice!r}")
        check(all(isinstance(v, dict) and v.get("speaker") == "unknown" and "pitch_hz" in v for v in voice), f"{voice}")
        return f"{n} prosody windows and {len(voice)} voice rows, read by the SDK"

    steps = [
        ("a", "start_inference_job(urls=[video, image], face+prosody+burst) to COMPLETED", step_a),
        ("b", "get_job_predictions: face, prosody, burst typed", step_b),
        ("c", "start_inference_job_from_local_file(audio) prosody+burst typed", step_c),
        ("d", "get_job_artifacts: one CSV per model", step_d),
        ("e", "language on a transcribed upload: metadata and times typed", step_e),
        ("f", "prosody + language on an upload: the extra voice list does not break the SDK", step_f),
    ]
    return run_steps(steps)


if __name__ == "__main__":
    sys.exit(main())
