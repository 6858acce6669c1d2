"""A disk the kernel remounts read-only under the running ``redis-shipper run``, as production
meets it: an ext4 mounted with ``errors=remount-ro`` hits an error, and every later write fails
with EROFS while the agent still holds its files open (``mount -o remount,ro`` would be refused
with EBUSY instead). The agent keeps running, ``/ready`` names the read-only part, the error is
logged once; SIGTERM exits cleanly. Such a mount only becomes writable again after umount,
``e2fsck -fy`` and mount, so recovery is a restart: nothing lost, duplicates at most one batch,
``redis-shipper verify`` passes.

The error is forced through ``/sys/fs/ext4/<loop>/trigger_fs_error`` on a small ext4 image on a
loop device. These tests need root, ``losetup`` and ``mkfs.ext4``: skipped locally when missing,
a failure in CI (CI runs as root).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from test_full_disk_run import free_port, get, wait_for

from servers import require

SAMPLES = Path(__file__).resolve().parent.parent / "sample-logs" / "redis-7.0"
#: real one-line events, written again and again (each write has its own byte offset)
SAMPLE_FILES = ("misc.log", "replication-master.log", "bgsave-aof.log")
LINES = 6000


class Ext4Disk:
    """A 64 MiB ext4 image on a loop device, mounted at ``mnt`` with ``errors=remount-ro``."""

    def __init__(self, parent: Path) -> None:
        self.image, self.mnt = parent / "ext4.img", parent / "ro-disk"
        self.loop = ""
        self.mounted = False

    def create(self) -> None:
        with open(self.image, "wb") as f:
            f.truncate(64 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True)
        self.loop = subprocess.run(["losetup", "-f", "--show", str(self.image)], check=True,
                                   capture_output=True, text=True).stdout.strip()
        self.mnt.mkdir()
        self.mount()

    def mount(self) -> None:
        subprocess.run(["mount", "-o", "errors=remount-ro", self.loop, str(self.mnt)], check=True)
        self.mounted = True

    def trigger_error(self) -> None:
        """What a failing disk does: the kernel remounts the filesystem read-only (emergency_ro)."""
        Path(f"/sys/fs/ext4/{os.path.basename(self.loop)}/trigger_fs_error").write_text("test\n")
        assert "emergency_ro" in self.mount_options(), self.mount_options()

    def mount_options(self) -> str:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if fields[1] == str(self.mnt):
                return fields[3]
        return ""

    def recover(self) -> None:
        """What an operator does: umount, ``e2fsck -fy`` (exit 1: errors corrected), mount."""
        subprocess.run(["umount", str(self.mnt)], check=True)
        self.mounted = False
        fsck = subprocess.run(["e2fsck", "-fy", self.loop], capture_output=True, text=True)
        assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr
        self.mount()

    def remove(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.mnt)], check=False)
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], check=False)


@pytest.fixture
def ext4_disk(tmp_path: Path) -> Iterator[Ext4Disk]:
    require("root (to attach a loop device and mount ext4)", os.geteuid() == 0)
    require("losetup and mkfs.ext4 and e2fsck",
            all(shutil.which(t) for t in ("losetup", "mkfs.ext4", "e2fsck")))
    require("the ext4 trigger_fs_error knob", Path("/sys/fs/ext4").is_dir())
    disk = Ext4Disk(tmp_path)
    try:
        try:
            disk.create()
        except subprocess.CalledProcessError as e:
            require("a loop device with ext4", False, str(e))
        yield disk
    finally:
        disk.remove()


class Writer(threading.Thread):
    """Appends ``LINES`` real Redis 7.0 log lines at ``rate`` lines/s, remembering each offset."""

    def __init__(self, log: Path, rate: int = 1500) -> None:
        super().__init__(daemon=True)
        self.log, self.rate = log, rate
        self.samples = [line + b"\n" for name in SAMPLE_FILES
                        for line in (SAMPLES / name).read_bytes().splitlines()
                        if re.match(rb"^\d+:[MSCX] \d", line)]
        self.offsets: list[int] = []

    def run(self) -> None:
        t0 = time.monotonic()
        with open(self.log, "ab", buffering=0) as f:
            offset = f.tell()
            while len(self.offsets) < LINES:
                due = min(LINES, int((time.monotonic() - t0) * self.rate))
                chunk = []
                for i in range(len(self.offsets), due):
                    line = self.samples[i % len(self.samples)]
                    self.offsets.append(offset)
                    chunk.append(line)
                    offset += len(line)
                f.write(b"".join(chunk))
                time.sleep(0.01)


def shipped(out: Path, log: Path) -> Counter[int]:
    """How often each byte offset of ``log`` arrived in the sink file (torn lines fail here)."""
    found: Counter[int] = Counter()
    if not out.exists():
        return found
    for line in out.read_bytes().splitlines():
        event = orjson.loads(line)  # a torn or glued line raises: the sink never writes one
        if "offset" in event:  # events read from the file (the agent's own events have none)
            found[int(event["offset"])] += 1
    return found


def write_config(tmp_path: Path, state: Path, out: Path, extra: str = "") -> tuple[Path, Path, str]:
    log = tmp_path / "redis.log"
    log.touch()
    port = free_port()
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {state}\ntimezone: UTC\nmetrics: {{listen: '127.0.0.1:{port}'}}\n"
                   f"shutdown_timeout: 5\n{extra}"
                   f"sources:\n  - type: file\n    path: {log}\nsinks:\n  - type: file\n    path: {out}\n")
    return cfg, log, f"http://127.0.0.1:{port}"


def start(cfg: Path, url: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for(lambda: get(f"{url}/healthz")[0] == 200, 30)
    return p


def stop(p: subprocess.Popen[bytes]) -> tuple[int, str]:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    code = p.wait(60)
    return code, p.stderr.read().decode() if p.stderr else ""


def reason_of(url: str, part: str) -> str:
    code, body = get(f"{url}/ready")
    if code != 503:
        return ""
    return next((x["reason"] for x in orjson.loads(body)["not_ready"] if x["part"] == part), "")


def write_errors(url: str, component: str) -> float:
    m = re.search(rf'redis_shipper_state_write_errors_total\{{component="{component}"\}} (\S+)',
                  get(f"{url}/metrics")[1])
    return float(m.group(1)) if m else 0.0


def read_only(reason: str) -> bool:
    return "EROFS" in reason or "read-only" in reason.lower() or "readonly" in reason.lower()


def assert_clean(code: int, err: str) -> None:
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "never retrieved" not in err, err[-3000:]


def assert_every_line_once(seen: Counter[int], offsets: list[int]) -> None:
    assert sorted(seen) == offsets, f"{len(set(offsets) - set(seen))} of {len(offsets)} lines lost"
    dupes = sum(n - 1 for n in seen.values())
    assert dupes <= 2000, f"{dupes} duplicates: at most one batch"


def verify(cfg: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "shipper.cli", "verify", "--config", str(cfg), "--from", "file"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_a_state_dir_remounted_read_only_keeps_the_agent_up_and_a_restart_after_fsck_loses_nothing(
        tmp_path: Path, ext4_disk: Ext4Disk) -> None:
    out = tmp_path / "sink" / "out.jsonl"
    cfg, log, url = write_config(tmp_path, ext4_disk.mnt / "state", out)
    p = start(cfg, url)
    writer = Writer(log)
    try:
        writer.start()
        assert wait_for(lambda: len(shipped(out, log)) >= 1000, 60)
        ext4_disk.trigger_error()
        # the agent stays up and names the read-only state write
        assert wait_for(lambda: read_only(reason_of(f"{url}", "state:spool")), 60), get(f"{url}/ready")
        assert get(f"{url}/healthz")[0] == 200
        before = write_errors(url, "spool")
        assert before >= 1
        assert wait_for(lambda: write_errors(url, "spool") > before, 30), "the failed writes are retried, counted"
        writer.join(60)
        assert p.poll() is None, "the agent keeps running on a read-only state_dir"
    finally:
        code, err = stop(p)
    # SIGTERM exits cleanly although the spool cannot be written
    assert_clean(code, err)
    assert len(re.findall(r"spool cannot write", err)) == 1, "logged once per episode, not per retry:\n" + err[-3000:]

    ext4_disk.recover()
    p = start(cfg, url)
    try:
        assert wait_for(lambda: len(shipped(out, log)) >= LINES, 120), \
            f"{len(shipped(out, log))} of {LINES} shipped"
        assert wait_for(lambda: get(f"{url}/ready")[0] == 200, 60), get(f"{url}/ready")
    finally:
        code, err = stop(p)
    assert_clean(code, err)
    assert_every_line_once(shipped(out, log), writer.offsets)
    verify(cfg)


def test_a_sink_dir_remounted_read_only_is_retried_without_torn_lines_and_nothing_is_lost(
        tmp_path: Path, ext4_disk: Ext4Disk) -> None:
    out = ext4_disk.mnt / "out.jsonl"
    # a sink refused by its disk is named once it has acknowledged nothing for ready.stall_after
    cfg, log, url = write_config(tmp_path, tmp_path / "state", out, "ready: {stall_after: 3s}\n")
    p = start(cfg, url)
    writer = Writer(log)
    try:
        writer.start()
        assert wait_for(lambda: len(shipped(out, log)) >= 1000, 60)
        ext4_disk.trigger_error()
        assert wait_for(lambda: reason_of(url, "sink:file") != "", 60), get(f"{url}/ready")
        assert get(f"{url}/healthz")[0] == 200
        writer.join(60)
        assert p.poll() is None, "the agent keeps running on a read-only sink dir"
        ext4_disk.recover()
        # the sink opens its file per batch: the fresh mount takes the retried batch, no restart
        assert wait_for(lambda: len(shipped(out, log)) >= LINES, 120), \
            f"{len(shipped(out, log))} of {LINES} shipped"
        assert wait_for(lambda: get(f"{url}/ready")[0] == 200, 60), get(f"{url}/ready")
    finally:
        code, err = stop(p)
    assert_clean(code, err)
    # the sink's warning carries the kernel's reason, once per episode, not per retry
    failed = [line for line in err.splitlines() if "sink file: delivery failed" in line]
    assert len(failed) == 1 and "Read-only file system" in failed[0], err[-3000:]
    assert_every_line_once(shipped(out, log), writer.offsets)
    verify(cfg)
