#!/usr/bin/env python3
"""PyTorch models exported by torch.onnx.export (Debian's python3-torch), loaded by fusegrad.

    onnx_import.py <fusegrad_onnx_import binary> <work dir> [fusegrad export dir]

Writes, per case, <case>.onnx (opset 17), the input <case>.x.npy, PyTorch's output <case>.y.npy,
a weight <case>.w.npy and the gradients of sum(y * w) with respect to x and to every parameter
(<case>.grad.<name>.npy), then runs the binary, which loads each model, runs it forward and
backward and compares (and fine-tunes one). The export dir, when given, holds the models of
tests/io/onnx_export.cpp, which the binary loads back too.
"""
import os
import subprocess
import sys

import numpy as np
import torch
from torch import nn


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.features(x)


class Recurrent(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.rnn = cell(8, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        y, state = self.rnn(self.embed(tokens))
        h = state[0] if isinstance(state, tuple) else state
        return torch.cat([self.head(h[-1]), y[-1]], 1)


def cases():
    cnn = CNN()
    with torch.no_grad():  # running statistics that are not the defaults
        cnn.features[1].running_mean.uniform_(-0.5, 0.5)
        cnn.features[1].running_var.uniform_(0.5, 2.0)
        cnn.features[1].weight.uniform_(0.5, 1.5)
        cnn.features[1].bias.uniform_(-0.5, 0.5)
    encoder = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu",
                                         batch_first=True)
    with torch.no_grad():  # no two parameters alike (the exporter merges equal constants)
        for p in encoder.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    tokens = torch.randint(0, 10, (7, 4))
    # (name, model, input, constant folding: off keeps BatchNormalization and the parameters'
    # names; on folds BatchNorm into the convolution and transposes weights)
    return [
        ("torch_cnn", cnn, torch.randn(4, 1, 14, 14), False),
        ("torch_cnn_folded", cnn, torch.randn(4, 1, 14, 14), True),
        ("torch_lstm", Recurrent(nn.LSTM), tokens, True),
        ("torch_gru", Recurrent(nn.GRU), tokens, True),
        ("torch_encoder", encoder, torch.randn(2, 16, 32), True),
    ]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    names = []
    for name, model, x, fold in cases():
        model.eval()
        path = os.path.join(work, name)
        # (without folding, PRESERVE keeps BatchNormalization as a node of its own)
        torch.onnx.export(model, (x,), path + ".onnx", opset_version=17,
                          do_constant_folding=fold, input_names=["x"], output_names=["y"],
                          training=torch.onnx.TrainingMode.EVAL if fold
                          else torch.onnx.TrainingMode.PRESERVE)
        if x.is_floating_point():
            x.requires_grad_(True)
        y = model(x)
        w = torch.randn_like(y)
        model.zero_grad()  # (the two CNN cases share a model)
        (y * w).sum().backward()
        np.save(path + ".x.npy", x.detach().numpy())
        np.save(path + ".y.npy", y.detach().numpy())
        np.save(path + ".w.npy", w.numpy())
        if x.grad is not None:
            np.save(path + ".grad.x.npy", x.grad.numpy())
        for pname, p in model.named_parameters():
            np.save(f"{path}.grad.{pname}.npy", p.grad.numpy())
        names.append(name)
    with open(os.path.join(work, "cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    subprocess.run([binary, *sys.argv[2:]], check=True)


if __name__ == "__main__":
    main()
