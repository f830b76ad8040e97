#!/usr/bin/env python3
"""Round-trip test of hume-action against Hume's own v0 Python SDK (hume==0.13.13).

Usage:
    HUME_ACTION_URL=http://127.0.0.1:8080 [HUME_API_KEY=test-key] python v0_roundtrip.py

Every call goes through ``client.expression_measurement.batch`` (the SDK's
``BatchClientWithUtils``), so requests have exactly the wire format a real user
of the SDK produces, and every response is parsed by the SDK's own pydantic
models. See docs/api.md for what the server must return.
"""
import hashlib
import io
import os
import sys
import tempfile
import time
import uuid
import zipfile

from hume import HumeClient
from steps import Skip, check, run_steps
from hume.core.api_error import ApiError
from hume.expression_measurement.batch import (
    EmotionScore,
    GroupedPredictionsLanguagePrediction,
    InferenceBaseRequest,
    InferenceJob,
    InferencePrediction,
    InferenceRequest,
    InferenceResults,
    InferenceSourcePredictResult,
    Language,
    LanguagePrediction,
    Models,
    ModelsPredictions,
    Prosody,
    PositionInterval,
    PredictionsOptionalTranscriptionMetadataLanguagePrediction,
    Source_File,
    Source_Text,
    StateInference_Completed,
    StateInference_Failed,
    StateInference_InProgress,
    StateInference_Queued,
)
from hume.expression_measurement.batch import File as JobFile

BASE_URL = os.environ.get("HUME_ACTION_URL", "").rstrip("/")
API_KEY = os.environ.get("HUME_API_KEY", "test-key")
POLL_INTERVAL_S = 0.5
POLL_BUDGET_S = 120.0

TEXTS = [
    "I am so happy with the help I got today, thank you!",
    "This is the third time my order is late and I am furious.",
]
FILE_TEXT = "The package arrived early and everything works. I could not be more pleased!\n"
REQUIRED_EMOTIONS = {"Joy", "Anger", "Gratitude", "Sarcasm"}
STATE_CLASSES = (StateInference_Queued, StateInference_InProgress, StateInference_Completed, StateInference_Failed)


def is_type(obj, cls, what):
    names = "/".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
    check(isinstance(obj, cls), f"{what}: expected {names}, got {type(obj).__module__}.{type(obj).__name__}")


def wait_completed(batch, job_id):
    """Poll get_job_details until COMPLETED/FAILED (bounded); return the final typed job."""
    deadline = time.monotonic() + POLL_BUDGET_S
    seen = []
    while True:
        job = batch.get_job_details(job_id)
        is_type(job, InferenceJob, "get_job_details()")
        is_type(job.state, STATE_CLASSES, "job.state")
        status = job.state.status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("COMPLETED", "FAILED"):
            break
        check(status in ("QUEUED", "IN_PROGRESS"), f"unexpected state.status {status!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not finished after {POLL_BUDGET_S:.0f}s (states seen: {seen})")
        time.sleep(POLL_INTERVAL_S)
    check(status == "COMPLETED", f"job {job_id} ended {status}: {getattr(job.state, 'message', '')!r}")
    st = job.state
    is_type(st, StateInference_Completed, "job.state")
    for f in ("created_timestamp_ms", "started_timestamp_ms", "ended_timestamp_ms", "num_predictions", "num_errors"):
        check(isinstance(getattr(st, f), int), f"state.{f} is not int")
    check(st.created_timestamp_ms <= st.started_timestamp_ms <= st.ended_timestamp_ms,
          f"timestamps out of order: {st.created_timestamp_ms} {st.started_timestamp_ms} {st.ended_timestamp_ms}")
    check(st.created_timestamp_ms > 1_500_000_000_000, "created_timestamp_ms is not Unix epoch milliseconds")
    check(st.num_errors == 0, f"num_errors={st.num_errors}")
    check(job.job_id == job_id, f"job.job_id {job.job_id!r} != {job_id!r}")
    check(job.type == "INFERENCE", f"job.type {job.type!r} != 'INFERENCE'")
    is_type(job.request, InferenceRequest, "job.request")
    check(isinstance(job.request.files, list), "job.request.files is not a list")
    is_type(job.request.models, Models, "job.request.models (models echo)")
    is_type(job.request.models.language, Language, "job.request.models.language")
    check(job.request.models.language.granularity == "sentence",
          f"echoed language.granularity {job.request.models.language.granularity!r} != 'sentence'")
    return job, seen


def check_language_prediction(pred, source_texts, where):
    """Checks one InferencePrediction carrying language output; returns the index of the matching source text."""
    is_type(pred, InferencePrediction, f"{where}")
    check(isinstance(pred.file, str), f"{where}.file is not str")
    is_type(pred.models, ModelsPredictions, f"{where}.models")
    lang = pred.models.language
    is_type(lang, PredictionsOptionalTranscriptionMetadataLanguagePrediction, f"{where}.models.language")
    check(len(lang.grouped_predictions) >= 1, f"{where}: no grouped_predictions")
    n = 0
    matches = set(range(len(source_texts)))
    for g in lang.grouped_predictions:
        is_type(g, GroupedPredictionsLanguagePrediction, f"{where} grouped_predictions[]")
        check(isinstance(g.id, str), "grouped_predictions[].id is not str")
        for p in g.predictions:
            n += 1
            is_type(p, LanguagePrediction, f"{where} prediction")
            check(isinstance(p.text, str) and p.text, "prediction.text empty")
            is_type(p.position, PositionInterval, "prediction.position")
            check(0 <= p.position.begin < p.position.end, f"bad position {p.position}")
            # position: 0-based character offsets, end exclusive
            matches &= {i for i, t in enumerate(source_texts) if t[p.position.begin:p.position.end] == p.text}
            check(len(p.emotions) == 53, f"expected 53 emotions, got {len(p.emotions)}")
            for e in p.emotions:
                is_type(e, EmotionScore, "emotions[]")
                check(isinstance(e.score, float) and 0.0 <= e.score <= 1.0, f"score {e.name}={e.score!r}")
            names = [e.name for e in p.emotions]
            check(len(set(names)) == 53, "duplicate emotion names")
            missing = REQUIRED_EMOTIONS - set(names)
            check(not missing, f"emotion names missing {sorted(missing)}")
    check(n >= 1, f"{where}: grouped_predictions contain no predictions")
    check(matches, f"{where}: prediction text/position do not match any input text "
                   f"(text must equal input[position.begin:position.end])")
    return min(matches)


def main():
    if not BASE_URL:
        print("HUME_ACTION_URL is not set (e.g. http://127.0.0.1:8080)", file=sys.stderr)
        return 2
    client = HumeClient(api_key=API_KEY, base_url=BASE_URL, timeout=30.0)
    batch = client.expression_measurement.batch
    models = Models(language=Language(granularity="sentence"))
    ctx = {}
    tmp = tempfile.TemporaryDirectory(prefix="hume_v0_sdk_")

    def step_a():
        job_id = batch.start_inference_job(text=TEXTS, models=models)
        check(isinstance(job_id, str) and job_id, f"job_id {job_id!r} is not a non-empty str")
        ctx["text_job"] = job_id
        return f"job_id={job_id}"

    def step_b():
        if "text_job" not in ctx:
            raise Skip("needs step a")
        job, seen = wait_completed(batch, ctx["text_job"])
        check(job.request.files == [], f"text job request.files should be [], got {job.request.files}")
        ctx["text_job_done"] = True
        return f"states seen {'->'.join(seen)}; num_predictions={job.state.num_predictions}"

    def step_c():
        if not ctx.get("text_job_done"):
            raise Skip("needs step b")
        preds = batch.get_job_predictions(ctx["text_job"])
        check(isinstance(preds, list), "predictions is not a list")
        check(len(preds) == len(TEXTS), f"expected {len(TEXTS)} results (one per text), got {len(preds)}")
        matched = []
        for i, r in enumerate(preds):
            is_type(r, InferenceSourcePredictResult, f"predictions[{i}]")
            is_type(r.source, Source_Text, f"predictions[{i}].source")
            check(r.error is None, f"predictions[{i}].error = {r.error!r}")
            is_type(r.results, InferenceResults, f"predictions[{i}].results")
            check(r.results.errors == [], f"predictions[{i}].results.errors = {r.results.errors}")
            check(len(r.results.predictions) >= 1, f"predictions[{i}].results.predictions is empty")
            for j, p in enumerate(r.results.predictions):
                matched.append(check_language_prediction(p, TEXTS, f"predictions[{i}].results.predictions[{j}]"))
        check(sorted(matched) == list(range(len(TEXTS))), f"results do not map one-to-one onto the texts: {matched}")
        return f"{len(preds)} results, 53 emotions each"

    def step_d():
        path = os.path.join(tmp.name, "sample.txt")
        data = FILE_TEXT.encode("utf-8")
        with open(path, "wb") as fh:
            fh.write(data)
        md5 = hashlib.md5(data).hexdigest()
        with open(path, "rb") as fh:
            job_id = batch.start_inference_job_from_local_file(
                file=[fh], json=InferenceBaseRequest(models=Models(language=Language(granularity="sentence"))))
        check(isinstance(job_id, str) and job_id, f"job_id {job_id!r} is not a non-empty str")
        ctx["file_job"] = job_id
        job, seen = wait_completed(batch, job_id)
        ctx["file_job_completed"] = True
        check(len(job.request.files) == 1, f"request.files should list 1 uploaded file, got {job.request.files}")
        f = job.request.files[0]
        is_type(f, JobFile, "request.files[0]")
        check(f.md_5_sum == md5, f"request.files[0].md5sum {f.md_5_sum!r} != {md5!r}")
        preds = batch.get_job_predictions(job_id)
        check(len(preds) == 1, f"expected 1 result (one uploaded file), got {len(preds)}")
        r = preds[0]
        is_type(r, InferenceSourcePredictResult, "predictions[0]")
        is_type(r.source, Source_File, "predictions[0].source")
        check(r.source.type == "file", f"source.type {r.source.type!r}")
        check(r.source.md_5_sum == md5, f"source.md5sum {r.source.md_5_sum!r} != md5 of upload {md5!r}")
        check(r.source.filename in (None, "sample.txt"), f"source.filename {r.source.filename!r} != 'sample.txt'")
        check(r.error is None, f"predictions[0].error = {r.error!r}")
        is_type(r.results, InferenceResults, "predictions[0].results")
        check(r.results.errors == [], f"results.errors = {r.results.errors}")
        check(len(r.results.predictions) >= 1, "results.predictions is empty")
        for j, p in enumerate(r.results.predictions):
            check_language_prediction(p, [FILE_TEXT], f"predictions[0].results.predictions[{j}]")
        return f"job_id={job_id}; states seen {'->'.join(seen)}; source md5sum={md5}"

    def step_e():
        need = [ctx[k] for k in ("text_job", "file_job") if k in ctx]
        if len(need) < 2 or not (ctx.get("text_job_done") and ctx.get("file_job_completed")):
            raise Skip("needs steps b and d")
        # SDK sends status as repeated query keys: ?limit=10&status=COMPLETED
        jobs = batch.list_jobs(limit=10, status=["COMPLETED"])
        check(isinstance(jobs, list), "list_jobs did not return a list")
        check(len(jobs) <= 10, f"limit=10 not honoured: {len(jobs)} jobs")
        for j in jobs:
            is_type(j, InferenceJob, "list_jobs()[]")
            is_type(j.state, StateInference_Completed, f"list_jobs(status=COMPLETED) job {j.job_id} state")
        ids = {j.job_id for j in jobs}
        missing = [i for i in need if i not in ids]
        check(not missing, f"job ids missing from list_jobs: {missing}")
        queued = batch.list_jobs(limit=10, status=["QUEUED", "IN_PROGRESS"])
        qids = {j.job_id for j in queued}
        check(not (qids & set(need)), "status filter ignored: completed jobs listed under QUEUED/IN_PROGRESS")
        return f"{len(jobs)} COMPLETED jobs listed, both ids present"

    def step_f():
        if not ctx.get("text_job_done"):
            raise Skip("needs step b")
        data = b"".join(batch.get_job_artifacts(ctx["text_job"]))
        check(data[:2] == b"PK", f"artifacts do not start with b'PK': {data[:16]!r}")
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            check(z.testzip() is None, "corrupt member in artifacts zip")
            names = z.namelist()
        return f"{len(data)} bytes, zip members {names}"

    def step_g():
        bogus = str(uuid.uuid4())
        out = []
        calls = [
            ("get_job_details", lambda: batch.get_job_details(bogus)),
            ("get_job_predictions", lambda: batch.get_job_predictions(bogus)),
            ("get_job_artifacts", lambda: b"".join(batch.get_job_artifacts(bogus))),
        ]
        for name, fn in calls:
            try:
                fn()
            except ApiError as e:
                check(e.status_code == 404, f"{name}(unknown id): ApiError status {e.status_code}, expected 404")
                out.append(f"{name}->404")
                continue
            raise AssertionError(f"{name}(unknown id) did not raise ApiError")
        return ", ".join(out)

    def step_h():
        path = os.environ.get("MEDIA_AUDIO_FILE")
        if not path:
            raise Skip("MEDIA_AUDIO_FILE is not set")
        with open(path, "rb") as fh:
            job_id = batch.start_inference_job_from_local_file(
                file=[fh], json=InferenceBaseRequest(models=Models(prosody=Prosody())))
        deadline = time.monotonic() + POLL_BUDGET_S
        while (job := batch.get_job_details(job_id)).state.status not in ("COMPLETED", "FAILED"):
            check(time.monotonic() < deadline, f"job {job_id} not finished")
            time.sleep(POLL_INTERVAL_S)
        is_type(job.state, StateInference_Completed, "prosody-only job on local")
        check(job.state.num_errors == 1, f"num_errors={job.state.num_errors}: prosody's own error")
        r = batch.get_job_predictions(job_id)[0]
        check("hume backend" in r.results.errors[0].message, f"{r.results.errors[0].message}")
        p = r.results.predictions[0]
        check(p.models.prosody is None, "nothing is labelled prosody on local")
        lang = p.models.language
        is_type(lang, PredictionsOptionalTranscriptionMetadataLanguagePrediction, "models.language")
        spoken = [x for g in lang.grouped_predictions for x in g.predictions]
        check(spoken and all(isinstance(x, LanguagePrediction) for x in spoken), "language predictions typed")
        voice = getattr(p, "voice", None)
        check(isinstance(voice, list) and voice and "loudness_lufs" in voice[0], f"voice measures: {voice!r}")
        return f"{len(spoken)} utterances scored by the language model, {len(voice)} voice rows; error: prosody"

    steps = [
        ("a", "start_inference_job(text=..., models=language/sentence)", step_a),
        ("b", "get_job_details polled to COMPLETED, typed", step_b),
        ("c", "get_job_predictions for text job, typed", step_c),
        ("d", "start_inference_job_from_local_file + wait + predictions", step_d),
        ("e", "list_jobs(limit=10, status=['COMPLETED'])", step_e),
        ("f", "get_job_artifacts is a zip", step_f),
        ("g", "unknown job id -> ApiError 404", step_g),
        ("h", "prosody only on speech (local): COMPLETED with language, voice and prosody's error", step_h),
    ]
    try:
        return run_steps(steps)
    finally:
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
