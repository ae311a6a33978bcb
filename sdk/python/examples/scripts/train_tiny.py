"""A tiny PyTorch training run, written to give the same bytes on every node.

Reads /inputs/data.csv (x,y rows), fits y = w·x + b, and writes /outputs/metrics.json.
Replicas of a container job must return identical outputs, so the script seeds
everything, asks for deterministic kernels, runs on the CPU (GPU models differ in
floating-point order) and rounds what it reports.
"""

import argparse
import csv
import json
import os

import torch

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=10)
args = p.parse_args()

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
with open("/inputs/data.csv") as f:
    rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
x = torch.tensor([[r[0]] for r in rows])
y = torch.tensor([[r[1]] for r in rows])

model = torch.nn.Linear(1, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for _ in range(args.epochs):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()

os.makedirs("/outputs", exist_ok=True)
with open("/outputs/metrics.json", "w") as f:
    json.dump(
        {
            "epochs": args.epochs,
            "loss": round(loss.item(), 4),
            "w": round(model.weight.item(), 3),
            "b": round(model.bias.item(), 3),
            "cuda_available": torch.cuda.is_available(),
        },
        f,
        sort_keys=True,
    )
    f.write("\n")
