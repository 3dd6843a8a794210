"""Scale-out for ``stripe train``: PyTorch DDP under ``torchrun``, mixed precision, ``torch.compile``.

``torchrun --nproc-per-node N -m harmonize train ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
``DistContext.from_env`` then joins the process group (NCCL on CUDA, gloo on CPU). Without torchrun
(or with one process) the context is a no-op and training is exactly the single-process loop.

How a run under N processes equals a single-process run with the same global batch:

- every rank walks the same seeded epoch order (``train.epoch_order``); a ``DistributedSampler``
  (no shuffling of its own) deals it out by stride, so the union of the ranks' k-th local batches is
  the single-process k-th batch (``--batch-size`` is the global batch, split evenly across ranks);
  the sampler pads the last batch with repeated items, which get a zero loss weight;
- each rank's loss is its masked sum over the *global* number of masked steps, times N: DDP averages
  gradients over N, so the update is the gradient of the global masked mean;
- the curriculum crops every rank's batch to the length the global batch would have.

Rank 0 alone logs, validates, shows progress and writes checkpoints; every rank reads the same
checkpoint on ``--resume``. Dropout masks are drawn per process and so differ from a single process:
equality holds with ``dropout=0`` (the DDP test) and in distribution otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import StripeError

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_precision(precision: str, device: torch.device) -> bool:
    """Whether to autocast to bf16: ``auto`` = on CUDA only; ``bf16`` needs CUDA; ``fp32`` never."""
    if precision not in PRECISIONS:
        raise StripeError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "bf16" and device.type != "cuda":
        raise StripeError("--precision bf16 needs a CUDA device (on CPU, train in fp32)")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def maybe_compile(model, enabled: bool, device: torch.device):
    """``torch.compile`` the model when asked; refused on CPU (slower to build than it saves there)."""
    if not enabled:
        return model
    if device.type != "cuda":
        raise StripeError("--compile needs a CUDA device (torch.compile does not pay off for this model on CPU)")
    return torch.compile(model)


@dataclass
class DistContext:
    """Who this process is in a DDP run; ``world == 1`` is the plain single-process run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device, env=None) -> DistContext:
        """Join the process group torchrun describes in the environment (gloo on CPU, NCCL on CUDA)."""
        env = os.environ if env is None else env
        world = int(env.get("WORLD_SIZE", "1") or 1)
        if world <= 1:
            return cls()
        rank, local_rank = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
        import torch.distributed as dist

        if not dist.is_available():
            raise StripeError("this torch build has no torch.distributed: run without torchrun")
        owns = False
        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
            owns = True
        return cls(rank=rank, world=world, local_rank=local_rank, owns_group=owns)

    def device(self, device: torch.device) -> torch.device:
        """One GPU per rank (``cuda:LOCAL_RANK``); CPU stays CPU."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise StripeError(f"--batch-size {batch_size} is the global batch: it must be a multiple of the "
                              f"{self.world} processes")

    # -- collectives (no-ops in a single process)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def _all_reduce(self, value: torch.Tensor, op: str = "sum") -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(value, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return value

    def agree(self, flag: bool) -> bool:
        """True on every rank when any rank says True (a wall-clock stop must be taken by all at once)."""
        if not self.enabled:
            return flag
        return bool(self._all_reduce(torch.tensor([int(flag)]), "max").item())

    def mean(self, value: torch.Tensor) -> float:
        """The sum over ranks of a scaled per-rank loss, over N: the global loss (for the log)."""
        if not self.enabled:
            return float(value.item())
        return float(self._all_reduce(value.detach().float().cpu().reshape(1)).item()) / self.world

    def global_length(self, length: int) -> int:
        """The longest window of the global batch (the curriculum crops to a share of it)."""
        if not self.enabled:
            return length
        return int(self._all_reduce(torch.tensor([length]), "max").item())

    def loss_scale(self, loss_mask: torch.Tensor) -> torch.Tensor | float:
        """Turns a rank's masked-mean loss into its share of the global masked mean (×N for DDP's average)."""
        if not self.enabled:
            return 1.0
        local = loss_mask.sum().float()
        total = self._all_reduce(local.detach().cpu().reshape(1).clone())[0].to(local.device)
        return local * self.world / total.clamp(min=1.0)

    # -- model and data

    def wrap(self, model, device: torch.device):
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    @staticmethod
    def unwrap(model):
        model = getattr(model, "_orig_mod", model)  # torch.compile
        return getattr(model, "module", model)  # DDP

    def batches(self, dataset, order: list[int], batch_size: int):
        """This rank's share of each global batch of ``order`` (``batch_size`` is the global batch)."""
        from .train import batches

        if not self.enabled:
            yield from batches(dataset, order, batch_size)
            return
        from torch.utils.data import DistributedSampler

        from .data.dataset import collate

        sampler = DistributedSampler(order, num_replicas=self.world, rank=self.rank, shuffle=False)
        picks = list(sampler)  # positions in ``order``: rank, rank + N, ... then repeats as padding
        local = batch_size // self.world
        for i in range(0, len(picks), local):
            items, weights = [], []
            for j in range(i, min(i + local, len(picks))):
                items.append(dataset[order[picks[j]]])
                weights.append(self.rank + self.world * j < len(order))  # past the end: a padding repeat
            batch = collate(items)
            batch["loss_mask"] = batch["mask"] & torch.tensor(weights)[:, None]
            yield batch

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False

