"""Data-parallel training: 2 gloo ranks on loopback average to the single-process gradient."""
import json
import os

import pytest
import torch

from course_lib.efficiency import ddp


def _no_children_left(pid_before: set[int]) -> None:
    """No process started by the test is still alive (children of this process)."""
    try:
        kids = open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()
    except OSError:
        return
    assert set(kids) <= {str(p) for p in pid_before}, f"processes left behind: {kids}"


def _processes_with(marker: str) -> list[str]:
    """Command lines of live processes that contain ``marker`` (this test process excluded)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                found.append(f"{d}: {cmd}")
    return found


@pytest.fixture
def children_before():
    try:
        return set(map(int, open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()))
    except OSError:
        return set()


def test_two_ranks_average_to_single_process_gradient(tmp_path, children_before):
    out = tmp_path / "ddp.json"
    run = ddp.launch_torchrun("course_lib.efficiency.ddp_train",
                              ["--mode", "both", "--steps", "3", "--n-chars", "4000", "--out", str(out)], timeout=180)
    result = json.loads(out.read_text())
    check, train = result["check"], result["train"]
    assert check["world_size"] == 2 and check["rows_per_rank"] == 4
    assert check["max_diff_manual"] < 1e-12 and check["max_diff_ddp"] < 1e-12       # float64: round-off only
    assert check["max_abs_grad"] > 1e-3                                              # the gradients are not trivially 0
    assert train["weights_identical"] and len(train["losses"]) == 3
    assert "weights identical on all ranks: True" in run.stdout
    _no_children_left(children_before)


def test_launcher_kills_ranks_on_timeout(children_before):
    with pytest.raises(RuntimeError, match="did not finish within"):
        ddp.launch_torchrun("course_lib.efficiency.ddp_train", ["--mode", "train", "--steps", "100000",
                                                                "--seed", "914273"], timeout=12)
    _no_children_left(children_before)
    import time
    time.sleep(0.5)                                               # let the kernel reap the killed group
    assert not [p for p in _processes_with("914273") if "<defunct>" not in p], "ranks left running"


def test_launcher_reports_errors():
    with pytest.raises(RuntimeError, match="exited with code"):
        ddp.launch_torchrun("course_lib.efficiency.ddp_train", ["--mode", "nonsense"], nproc_per_node=1, timeout=60)


def test_shard_and_args():
    batch = (torch.arange(8).view(4, 2), torch.arange(8).view(4, 2))
    assert ddp.shard(batch, 1, 2)[0].tolist() == [[4, 5], [6, 7]]
    with pytest.raises(ValueError, match="does not split evenly over 3 ranks"):
        ddp.shard(batch, 0, 3)
    with pytest.raises(ValueError, match="nproc_per_node must be a positive int"):
        ddp.torchrun_command("x", nproc_per_node=0)
    cmd = ddp.torchrun_command("course_lib.efficiency.ddp_train", ["--mode", "check"], 2, port=29511)
    assert cmd[cmd.index("--master_addr") + 1] == "127.0.0.1" and "29511" in cmd
    assert 1024 < ddp.free_port() < 65536


def test_init_needs_torchrun(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="start this script with torchrun"):
        ddp.init_from_env()


@pytest.mark.slow
def test_hf_trainer_under_torchrun(tmp_path, children_before):
    out = tmp_path / "trainer.json"
    ddp.launch_torchrun("course_lib.efficiency.ddp_trainer",
                        ["--max-steps", "2", "--n-examples", "32", "--average-tokens-across-devices", "0",
                         "--out", str(out)], timeout=300)
    result = json.loads(out.read_text())
    assert result["world_size"] == 2 and result["backend"] == "gloo"
    assert result["model_wrapped"] == "DistributedDataParallel"
    assert len(result["history"]) == 2
    assert abs(result["history"][0]["loss"] - torch.log(torch.tensor(6.0)).item()) < 0.3    # ~ln 6 for a new head
    _no_children_left(children_before)


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_nccl_two_gpus(tmp_path):
    out = tmp_path / "ddp.json"
    ddp.launch_torchrun("course_lib.efficiency.ddp_train", ["--mode", "check", "--backend", "nccl", "--out", str(out)])
    assert json.loads(out.read_text())["check"]["max_diff_ddp"] < 1e-12
