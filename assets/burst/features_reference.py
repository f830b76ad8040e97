#!/usr/bin/env python3
"""YAMNet's log-mel patches computed with TensorFlow's own ops, as YAMNet's features.py
(tensorflow/models, research/audioset/yamnet) calls them with params.py's values: the reference
that src/models/burst/features.rs is checked against.

Usage (in a throwaway venv: python3 -m venv v && v/bin/pip install tensorflow-cpu numpy):
    python features_reference.py OUT.f32            # the test signal (see signal() below)
    python features_reference.py OUT.f32 IN.wav     # a 16 kHz mono 16-bit WAV
Writes the patches as little-endian float32, [patches, 96, 64]. The test signal is made with
integer arithmetic only, so Rust makes exactly the same samples (features::tests::test_signal).
"""
import sys
import wave

import numpy as np
import tensorflow as tf


def signal(n=19_200):
    """A sawtooth at 330 Hz, then noise from a 32-bit LCG plus a 220 Hz sawtooth, 16-bit."""
    out = np.zeros(n, dtype=np.int64)
    state = 12345
    for i in range(n):
        state = (state * 1103515245 + 12345) % 2**31
        noise = (state >> 16) % 4001 - 2000
        if i < n // 2:
            out[i] = ((i * 330 * 65536 // 16_000) % 65536 - 32768) // 4
        else:
            out[i] = ((i * 220 * 65536 // 16_000) % 65536 - 32768) // 8 + noise
    return out.astype(np.int16)


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16_000 and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def patches(samples):
    x = samples.astype(np.float32) / 32768.0
    # pad_waveform: at least one patch, then whole 0.48 s hops.
    minimum, hop = 15_600, 7_680
    padded = max(len(x), minimum)
    padded += -(padded - minimum) % hop
    x = np.pad(x, (0, padded - len(x)))
    magnitude = tf.abs(tf.signal.stft(x, frame_length=400, frame_step=160, fft_length=512))
    weights = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=64, num_spectrogram_bins=257, sample_rate=16_000.0,
        lower_edge_hertz=125.0, upper_edge_hertz=7500.0)
    log_mel = tf.math.log(tf.matmul(magnitude, weights) + 0.001)
    return tf.signal.frame(log_mel, frame_length=96, frame_step=48, axis=0).numpy()


if __name__ == "__main__":
    samples = read_wav(sys.argv[2]) if len(sys.argv) > 2 else signal()
    out = patches(samples)
    out.astype("<f4").tofile(sys.argv[1])
    print(f"{out.shape[0]} patches of {out.shape[1]}x{out.shape[2]} written to {sys.argv[1]}")
