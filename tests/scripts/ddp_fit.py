"""Run `fit` on a toy regression under whatever process group the launcher set up; write the final weights.

Used by tests/test_training.py: `torchrun --nproc_per_node 2 ddp_fit.py OUT` (gloo on CPU) and a plain
single-process run must end with the same weights (DDP averages the gradients of the two half-batches).
"""

import json
import sys

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import Dataset

from talking_points.pipeline.training.config import TrainConfig
from talking_points.pipeline.training.loop import fit


class Toy(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        x = torch.randn(4, generator=torch.Generator().manual_seed(i))
        return {"x": x, "y": x.sum(0, keepdim=True)}


def step(model, batch):
    return ((model(batch["x"]) - batch["y"]) ** 2).mean(), {}


def main(out: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    acc = Accelerator(cpu=True)
    fit(model, step, Toy(), lambda items: {k: torch.stack([it[k] for it in items]) for k in items[0]},
        # fp32: bf16 products round differently on a half batch, and this compares the two launches to 1e-5
        TrainConfig(max_steps=4, batch_size=8, lr=0.1, log_every=1, checkpoint_every=100, mixed_precision="fp32"),
        f"{out}/ckpt", None,
        accelerator=acc)
    backend = torch.distributed.get_backend() if torch.distributed.is_initialized() else None
    with open(f"{out}/rank{acc.process_index}.json", "w") as f:
        json.dump({"world": acc.num_processes, "backend": backend, "w": model.weight.detach().flatten().tolist(),
                   "b": model.bias.detach().tolist()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
