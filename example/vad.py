"""Finds speech in a 16 kHz WAV file with the Silero voice-activity detector (ONNX), and
defines the detector's network in PyTorch as the released model is built.

LayerLens only reads this file (to link each layer to its weights in the ONNX model and
the InferenceSession call to the file); it is never run as part of the extension or its tests.
"""

import argparse
import wave
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

MODELS_DIR = Path(__file__).parent / "models"
SILERO_MODEL = MODELS_DIR / "silero_vad_v5.onnx"
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 512
HIDDEN = 128


class SileroVadBlock(nn.Module):
    """One encoder stage: a 3-tap convolution over the spectrogram frames."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.reparam_conv = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.reparam_conv(x))


class SileroVadDecoder(nn.Module):
    """An LSTM cell carried from window to window, then a 1x1 convolution to a probability."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.rnn = nn.LSTMCell(hidden, hidden)
        self.decoder = nn.Sequential(
            nn.Dropout(0.1),
            nn.ReLU(),
            nn.Conv1d(hidden, 1, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = self.rnn(x.squeeze(-1), state)
        return self.decoder(h.unsqueeze(-1)), (h, c)


class SileroVad(nn.Module):
    """The 16 kHz network: 129 STFT bins in, four encoder stages, the recurrent decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            SileroVadBlock(129, 128),
            SileroVadBlock(128, 64),
            SileroVadBlock(64, 64),
            SileroVadBlock(64, HIDDEN),
        )
        self.decoder = SileroVadDecoder()


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        if wav.getframerate() != SAMPLE_RATE or wav.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16 kHz mono audio")
        frames = wav.readframes(wav.getnframes())
    return np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0


def speech_probabilities(audio: np.ndarray) -> list[float]:
    session = ort.InferenceSession(str(SILERO_MODEL), providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, HIDDEN), dtype=np.float32)
    sample_rate = np.array(SAMPLE_RATE, dtype=np.int64)
    probabilities = []
    for start in range(0, len(audio) - WINDOW_SAMPLES + 1, WINDOW_SAMPLES):
        window = audio[start : start + WINDOW_SAMPLES][np.newaxis, :]
        output, state = session.run(None, {"input": window, "state": state, "sr": sample_rate})
        probabilities.append(float(output[0, 0]))
    return probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("wav", type=Path)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()

    for index, probability in enumerate(speech_probabilities(read_wav(args.wav))):
        if probability >= args.threshold:
            seconds = index * WINDOW_SAMPLES / SAMPLE_RATE
            print(f"{seconds:7.2f} s  speech ({probability:.2f})")


if __name__ == "__main__":
    main()
