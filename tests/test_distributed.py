"""Data-parallel training: 2 processes on 127.0.0.1 with gloo, launched by torchrun.

Tolerance: the two ranks each sum half of every batch's gradient and DistributedDataParallel
adds the halves, a different float32 summation order from one process's (and one process uses
the hand-fused step, the ranks autograd); over 32 steps this moves weights by about 1e-6 while
training moves them by 2e-3 to 1e-2 (measured: at most 0.06% of each tensor's movement). We allow
1% of each tensor's movement and 1e-4 relative on the epoch losses; summing the ranks' gradients
instead of averaging them (the learning rate doubled) would be off by about 100%.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file
from conftest import TIME_FACTOR, Crash, crash_after

from digitnet.checkpoint import load_checkpoint

from digitnet.model import build_model
from digitnet.runs import read_metrics
from digitnet.runs import train

pytestmark = pytest.mark.slow
SHARE_OF_MOVEMENT = 0.01
LOSS_RTOL = 1e-4


def _torchrun(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
            "-m", "digitnet", "train", *map(str, args)]


def _compare(one_dir, two_dir):
    one, two = load_file(str(one_dir / "model.safetensors")), load_file(str(two_dir / "model.safetensors"))
    initial = build_model(seed=0).state_dict()
    shares = {k: ((one[k] - two[k]).abs().max() / (one[k] - initial[k]).abs().max()).item() for k in one}
    losses = [(a["train_loss"], b["train_loss"]) for a, b in zip(read_metrics(one_dir), read_metrics(two_dir))]
    return shares, losses


def test_two_processes_reach_the_weights_of_one(tmp_path, mnist_t10k_dir):
    common = ["--dataset", "mnist-10k", "--data-dir", mnist_t10k_dir, "--epochs", 2, "--no-progress"]
    done = subprocess.run(_torchrun(*common, "--out", tmp_path / "two"), capture_output=True, text=True, timeout=300 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("final test accuracy") == 1 and done.stdout.count("epoch  train loss") == 1
    train("tutorial", "mnist-10k", data_dir=mnist_t10k_dir, epochs=2, out=tmp_path / "one", progress=False)
    shares, losses = _compare(tmp_path / "one", tmp_path / "two")
    print("distributed vs one process, share of movement:", shares, "losses:", losses)
    assert max(shares.values()) <= SHARE_OF_MOVEMENT, shares
    assert all(abs(a - b) <= LOSS_RTOL * abs(a) for a, b in losses), losses
    assert {p.name for p in (tmp_path / "two").iterdir()} >= {"config.json", "checkpoint.safetensors",
                                                              "model.safetensors", "metrics.csv", "summary.md"}


def test_both_ranks_resume_from_the_same_checkpoint(tmp_path, mnist_t10k_dir):
    with pytest.raises(Crash):
        train("best", "mnist-10k", data_dir=mnist_t10k_dir, epochs=2, out=tmp_path / "run", progress=False,
              on_epoch=crash_after(1))
    done = subprocess.run(_torchrun("--resume", tmp_path / "run", "--no-progress"), capture_output=True, text=True,
                          timeout=300 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == [1, 2]
    train("best", "mnist-10k", data_dir=mnist_t10k_dir, epochs=2, out=tmp_path / "whole", progress=False)
    shares, _ = _compare(tmp_path / "whole", tmp_path / "run")
    assert max(shares.values()) <= SHARE_OF_MOVEMENT, shares


def test_a_killed_rank_ends_the_run_with_a_message(tmp_path, mnist_t10k_dir):
    run = tmp_path / "run"
    proc = subprocess.Popen(_torchrun("--recipe", "best", "--dataset", "mnist-10k", "--data-dir", mnist_t10k_dir,
                                      "--epochs", 500, "--out", run, "--no-progress"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120 * TIME_FACTOR
    while not (run / "checkpoint.safetensors").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 2
    os.kill(int(children[-1]), signal.SIGKILL)
    try:
        out, err = proc.communicate(timeout=90 * TIME_FACTOR)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert "another process of this run failed or stopped answering" in err
    assert f"--resume {run}" in err
    assert load_checkpoint(run)["epoch"] >= 1  # the folder stays usable


def test_only_rank_zero_downloads(tmp_path, mnist_t10k_dir, monkeypatch):
    import http.server
    import threading

    requests = []

    class Counting(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(mnist_t10k_dir), **kwargs)

        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = dict(os.environ, DIGITNET_MIRRORS=f"http://127.0.0.1:{server.server_address[1]}/",
                   DIGITNET_HOME=str(tmp_path / "home"))
        done = subprocess.run(_torchrun("--dataset", "mnist-10k", "--epochs", 1, "--out", tmp_path / "run",
                                        "--no-progress"), capture_output=True, text=True, timeout=300 * TIME_FACTOR, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(requests) == ["/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]  # once each


def test_only_collective_errors_count_as_a_peer_failure():
    import torch

    from digitnet.distributed import is_collective_failure

    gloo = RuntimeError("[third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer")
    assert is_collective_failure(gloo)
    assert is_collective_failure(torch.distributed.DistBackendError("NCCL communicator was aborted"))
    assert not is_collective_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"))
    assert not is_collective_failure(torch.OutOfMemoryError("CUDA out of memory"))
