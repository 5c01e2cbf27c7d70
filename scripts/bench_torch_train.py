#!/usr/bin/python3
"""The reference side of scripts/bench-core.sh: the seed program's training setup in
PyTorch on one thread (a 50-32-50 autoencoder with a sigmoid hidden layer, MSE, Adam lr
1e-3, batch 20, 30 epochs over the rows of CSV, shuffled each epoch).

usage: bench_torch_train.py DATA.csv        prints: torch_train_seconds S
Only the training loop is timed, as for aescore (whose figure includes reading the CSV).
"""
import sys
import time

import numpy as np
import torch
from torch import nn


def main():
    data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype=np.float32)
    x = torch.from_numpy(data)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n_in = x.shape[1]
    model = nn.Sequential(nn.Linear(n_in, 32), nn.Sigmoid(), nn.Linear(32, n_in))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=20,
                                         shuffle=True)
    t0 = time.perf_counter()
    for _ in range(30):
        for (xb,) in loader:
            loss = loss_fn(model(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    print("torch_train_seconds %.3f" % (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
