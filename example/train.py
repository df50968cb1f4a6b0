"""Trains the small MLP classifier of this workspace and saves it in two formats.

LayerLens only reads this file (to link the save/export calls to the model files);
it is never run as part of the extension or its tests.
"""

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from safetensors.torch import save_file

MODELS_DIR = Path(__file__).parent / "models"


class MlpClassifier(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.fc1 = nn.Linear(features, hidden)
        self.encoder.norm = nn.LayerNorm(hidden)
        self.head = nn.Module()
        self.head.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.encoder.norm(self.encoder.fc1(x)))
        return self.head.fc2(hidden)


def synthetic_data(samples: int, features: int, classes: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(samples, features, generator=generator)
    projection = torch.randn(features, classes, generator=generator)
    labels = (inputs @ projection).argmax(dim=1)
    return TensorDataset(inputs, labels)


def train(model: nn.Module, loader: DataLoader, epochs: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for inputs, labels in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), labels)
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: loss {total / len(loader):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    model = MlpClassifier()
    loader = DataLoader(synthetic_data(4096, 32, 10), batch_size=64, shuffle=True)
    train(model, loader, args.epochs)

    MODELS_DIR.mkdir(exist_ok=True)
    state = model.state_dict()
    # The head is stored in half precision, like the example file.
    state = {name: (t.half() if name.startswith("head.") else t) for name, t in state.items()}
    save_file(state, MODELS_DIR / "mlp_classifier.safetensors", metadata={"format": "pt"})

    model.eval()
    torch.onnx.export(
        model,
        torch.randn(1, 32),
        MODELS_DIR / "mlp_classifier.onnx",
        input_names=["features"],
        output_names=["logits"],
        dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
    )


if __name__ == "__main__":
    main()
