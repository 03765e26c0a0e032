"""The run's CPU thread count: chosen once, recorded, kept by resume, restored afterwards."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import Crash, TIME_FACTOR, crash_after
from safetensors.torch import load_file

import digitnet.training.threads as threads
from digitnet.errors import ConfigError
from digitnet.runs import resume, train


def test_requests_resolve_to_a_count(monkeypatch):
    assert threads.resolve_threads(None) == torch.get_num_threads()
    assert threads.resolve_threads(3) == 3
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    for idle, chosen in [(0.0, 1), (0.3, 1), (0.9, 1), (1.6, 2), (2.0, 2), (7.5, 2)]:
        monkeypatch.setattr(threads, "idle_cores", lambda seconds=0.0, idle=idle: idle)
        assert threads.resolve_threads("auto") == chosen
    for bad in (0, -2, "x", 2.5, True):
        with pytest.raises(ConfigError, match="--threads .*: give a number of threads >= 1, or auto"):
            threads.resolve_threads(bad)


def test_idle_cores_is_measured_from_the_machine(monkeypatch):
    import os

    assert 0.0 <= threads.idle_cores(0.05) <= os.cpu_count() + 0.01
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)  # no /proc/stat: the load average decides
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert threads.idle_cores() == pytest.approx(max(0.0, os.cpu_count() - 1.5))


def test_a_run_computes_with_its_recorded_count_and_resume_keeps_it(tmp_path, synthetic_data, hand_over_data):
    outside = torch.get_num_threads()
    seen = []

    def watch(record, state):
        seen.append(torch.get_num_threads())

    common = dict(epochs=3, progress=False, threads=1)
    train("best", synthetic_data, out=tmp_path / "whole", on_epoch=watch, **common)
    assert seen == [1, 1, 1] and torch.get_num_threads() == outside
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["threads"] == 1
    with pytest.raises(Crash):
        train("best", synthetic_data, out=tmp_path / "cut", on_epoch=crash_after(1), **common)
    assert torch.get_num_threads() == outside  # restored after a crash too
    seen.clear()
    resume(tmp_path / "cut", progress=False, on_epoch=watch)
    assert seen == [1, 1]
    whole, cut = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("whole", "cut"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)


def test_the_cli_checks_threads_and_resume_refuses_another_count(tmp_path, synthetic_data):
    def digitnet(*args):
        return subprocess.run([sys.executable, "-m", "digitnet", *map(str, args)], capture_output=True, text=True,
                              timeout=120 * TIME_FACTOR)

    done = digitnet("train", "--threads", "0")
    assert done.returncode == 2 and "--threads: '0': give a number of threads >= 1, or auto" in done.stderr
    train("best", synthetic_data, epochs=1, out=tmp_path / "run", progress=False, threads=1)
    refused = digitnet("train", "--resume", tmp_path / "run", "--threads", "2")
    assert refused.returncode == 2 and "drop --threads" in refused.stderr and refused.stderr.count("\n") == 1
