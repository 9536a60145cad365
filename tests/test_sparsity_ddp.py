"""Two gloo processes: after broadcast_ every rank holds rank 0's mask, even when seeded per rank."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from parp.sparsity import Mask


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        gen = torch.Generator().manual_seed(0)
        params = {"a": torch.randn(32, 16, generator=gen), "b": torch.randn(50, generator=gen)}
        mask = Mask.random(params, 0.5, seed=100 + rank).broadcast_(src=0)
        mask.save(os.path.join(out_dir, f"rank{rank}.safetensors"))
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_broadcast_makes_masks_identical(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    m0, m1 = Mask.load(tmp_path / "rank0.safetensors"), Mask.load(tmp_path / "rank1.safetensors")
    gen = torch.Generator().manual_seed(0)
    params = {"a": torch.randn(32, 16, generator=gen), "b": torch.randn(50, generator=gen)}
    assert m0 == m1 == Mask.random(params, 0.5, seed=100)
    assert Mask.random(params, 0.5, seed=101) != m0  # rank 1's own mask really was different
