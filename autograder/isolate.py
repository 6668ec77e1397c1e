"""Runs INSIDE the sandbox: one submission's own namespaces, uid and system-call filter.

The template process (autograder.harness) imports the assignment's libraries once and never
runs learner code. For each submission a child of it calls `enter`, which makes new mount, PID
and IPC namespaces with a fresh size-capped tmpfs on /tmp and /dev/shm (read-only mounts below
/tmp, such as a repository or virtualenv cloned there, are carried over onto the fresh one),
and forks PID 1 of the new PID namespace: when it ends, the kernel kills every process left in
it (threads whose leader exited included). PID 1 mounts its own /proc and forks the
submission's process, which drops to the submission's own uid (no capabilities, no new
privileges, killed if its parent goes) and installs a seccomp filter that refuses new user
namespaces: `unshare` and `clone` with CLONE_NEWUSER and `setns` fail with EPERM, `clone3` with
ENOSYS (libc then uses clone). Each generation waits and ends the way the next one ended.
Linux, x86-64 or arm64.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import signal
import struct

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
CLONE_NEWUSER = 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 32, 4096, 8192, 0x4000, 1 << 18
FRESH = "/tmp/.fresh"  # where the next /tmp is built before it is moved onto /tmp
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 1, 38, 22, 2
_SYSCALLS = {  # arch audit id, (unshare, clone, clone3, setns)
    "x86_64": (0xC000003E, (272, 56, 435, 308)),
    "aarch64": (0xC00000B7, (97, 220, 435, 268)),
}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]  # fmt: skip
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]  # fmt: skip


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = ""):
    encode = lambda s: s.encode() if s else None  # noqa: E731
    _check(_libc.mount(encode(source), target.encode(), encode(fstype), flags, encode(data)),
           f"mount {target}")  # fmt: skip


def enter(uid: int, tmp_bytes: int, processes: int, keep: tuple[str, ...] = ()) -> None:
    """Called in a fresh child of the template; returns only in the submission's process.

    `keep`: read-only mounts below /tmp (course_lib's view, the Python installation) that
    the fresh /tmp must still show. Three generations: this child sets up the mount namespace
    and waits; its child is PID 1 of the new PID namespace (an init that only waits); its
    grandchild drops every privilege and runs the submission (as PID 2, so it can still kill
    itself like a kernel can).
    """
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    size, flags = f"size={tmp_bytes},mode=1777", _MS_NOSUID | _MS_NODEV
    os.makedirs(FRESH, exist_ok=True)  # an empty folder of the template's /tmp
    _mount("tmpfs", FRESH, "tmpfs", flags, size)
    for path in keep:
        target = FRESH + path.removeprefix("/tmp")
        os.makedirs(target, exist_ok=True)  # owned by root: the learner cannot replace it
        _mount(path, target, None, _MS_BIND | _MS_REC)
        _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | flags)
    _mount(FRESH, "/tmp", None, _MS_MOVE)
    _mount("tmpfs", "/dev/shm", "tmpfs", flags, size)
    pid = os.fork()
    if pid:
        _wait(pid, mirror=True)
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    os.makedirs("/tmp/work", mode=0o700)
    os.chown("/tmp/work", uid, uid)
    pid = os.fork()
    if pid:
        _wait(pid, mirror=False)
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root: every capability is gone
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    _no_user_namespaces()


def _wait(pid: int, mirror: bool) -> None:
    """Wait for `pid` and end like it: PID 1 exits with 128 + signal (nothing can signal it
    from inside), the child outside the namespace turns that back into the signal."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            done, status = os.waitpid(-1, 0)  # PID 1 also collects orphans
        except ChildProcessError:
            os._exit(1)
        if done == pid:
            break
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    if mirror and code > 128:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL needs no reset
            signal.signal(code - 128, signal.SIG_DFL)
        os.kill(os.getpid(), code - 128)
    os._exit(code)


def _no_user_namespaces() -> None:
    """A seccomp filter: no new user namespaces, no joining other namespaces."""
    arch, (unshare, clone, clone3, setns) = _SYSCALLS[platform.machine()]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, errno, kill = 0x7FFF0000, 0x00050000, 0x80000000
    program = [
        (ld, 0, 0, 4),  # 0: A = arch
        (jeq, 1, 0, arch),  # 1
        (ret, 0, 0, kill),  # 2: another ABI (e.g. i386 on x86-64)
        (ld, 0, 0, 0),  # 3: A = syscall number
        (jge, 8, 0, 0x40000000),  # 4: x32 ABI -> 13
        (jeq, 0, 1, clone3),  # 5
        (ret, 0, 0, errno | 38),  # 6: ENOSYS
        (jeq, 5, 0, setns),  # 7: -> 13
        (jeq, 1, 0, unshare),  # 8: -> 10
        (jeq, 0, 2, clone),  # 9: else -> 12
        (ld, 0, 0, 16),  # 10: A = flags (first argument, low 32 bits)
        (jset, 1, 0, CLONE_NEWUSER),  # 11: -> 13
        (ret, 0, 0, allow),  # 12
        (ret, 0, 0, errno | 1),  # 13: EPERM
    ]
    code = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxP", len(program), ctypes.addressof(buffer))
    fbuffer = ctypes.create_string_buffer(fprog)
    _check(_libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fbuffer), 0, 0),
           "seccomp")  # fmt: skip
