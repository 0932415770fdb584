"""Stand-in hosts for multi-party tests: one Linux network namespace per role.

A :class:`NetnsLab` builds, for each host it is asked for (``coordinator``,
``platform``, ``bank-a`` ...):

* a network namespace ``sh-<lab>-<name>`` with loopback up and one interface,
  ``eth0``, holding an address from a private ``10.x.y.0/24`` chosen at random
  among networks no interface, route or other lab uses;
* an OS user ``sh-<name>`` (a system user, created with ``useradd`` when absent)
  and a fresh home directory owned by it, mode 0700, so one party's files are
  out of another's reach (the namespaces share one filesystem: only ownership
  keeps them apart);
* optionally a private ``/tmp`` (a directory of its own bind-mounted on
  ``/tmp`` in every process of that host), as a separate machine would have,
  and a ``/proc`` mounted ``hidepid=invisible``, so one host's programs do
  not see another's processes or their command lines (one PID namespace stays
  shared: signals and PIDs are still global);
* an ``/etc/hosts`` naming every host of the lab (``ip netns exec`` mounts
  ``/etc/netns/<ns>/hosts`` over ``/etc/hosts``), so ``--advertise-host
  platform`` and certificates issued for ``--host platform`` work as in
  docker/compose.yaml.

Every host's ``eth0`` is one end of a veth pair whose other end sits on a
bridge inside a separate "switch" namespace, so nothing of the lab lives in
the root namespace unless ``root_link=True`` (a veth from the root namespace
onto the bridge, address ``.254``, for tests that talk to the lab from the
test process itself).

Processes start with ``ip netns exec NS /bin/sh -c PRELUDE ... setpriv
--reuid U --regid G --init-groups --pdeathsig=KILL --no-new-privs -- argv``
(parent-death signal: if the test process is SIGKILLed, its programs die
too, bar the first milliseconds of a start); the prelude (run as
root inside the per-exec mount namespace that ``ip netns exec`` creates) mounts
``/proc`` and the private ``/tmp`` and, when the interpreter behind the virtualenv lives in
a directory other users cannot traverse (``/root/.pyenv`` under ``/root``,
mode 0700), covers that directory with an empty tmpfs and binds just the
interpreter's prefix back read-only. Every ``exec`` in the chain keeps the PID,
so the ``Popen`` is the program itself, leader of its own session and process
group. The environment is exactly what :meth:`NetnsLab.env` builds plus what
the caller adds.

Teardown (:meth:`NetnsLab.stop`, also from ``__exit__``, ``atexit`` and a
SIGTERM/SIGHUP handler installed while the lab runs) signals every process
group it started, then kills whatever still runs in any of the lab's
namespaces (``ip netns pids``: workers started in sessions of their own too),
deletes the namespaces (which removes the bridge and veths), the
``/etc/netns`` files and the lab directory. A lab whose owner died without
cleaning up (SIGKILL) is reaped by the next lab that starts
(:func:`reap_stale`).

Use :func:`available` (``None`` when namespaces work, else the reason) or
:func:`require` (``pytest.skip`` with that reason) before building a lab.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import ipaddress
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

IP = "/usr/sbin/ip"
SETPRIV = "/usr/bin/setpriv"
# The virtualenv this test runs in: its interpreter and the installed `safehouse` command.
DEFAULT_VENV = Path(sys.prefix)
DEFAULT_BASE = Path("/var/tmp/safehouse-netns")
NS_PREFIX = "sh-"
SWITCH = "switch"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
_CAP_NET_ADMIN, _CAP_SYS_ADMIN = 12, 21
_TEARDOWN_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

# Runs as root inside the exec's own mount namespace, then becomes the program.
# $1 umask, $2 "hidepid" or "", $3 private tmp dir or "", $4 directory to hide or "",
# $5 path to keep visible under it, $6 an empty staging directory, $7 the checkout
# when it lies under /tmp (the private /tmp would hide it) or "", $8 its staging
# directory; the rest is setpriv's command line.
_PRELUDE = r"""set -e
umask "$1"; pids=$2 tmp=$3 hide=$4 keep=$5 stage=$6 tree=$7 tree_stage=$8; shift 8
if [ -n "$pids" ]; then /usr/bin/mount -t proc -o hidepid=invisible,nosuid,nodev,noexec netns-lab /proc; fi
if [ -n "$tmp" ] && [ -n "$tree" ]; then /usr/bin/mount --bind "$tree" "$tree_stage"; fi
if [ -n "$tmp" ]; then /usr/bin/mount --bind "$tmp" /tmp; fi
if [ -n "$tmp" ] && [ -n "$tree" ]; then
  /usr/bin/mkdir -p "$tree"
  /usr/bin/mount --bind "$tree_stage" "$tree"
  /usr/bin/mount -o remount,bind,ro "$tree"
fi
if [ -n "$hide" ]; then
  /usr/bin/mount --bind "$keep" "$stage"
  /usr/bin/mount -t tmpfs -o mode=0755,size=64k,nosuid,nodev netns-lab "$hide"
  /usr/bin/mkdir -p "$keep"
  /usr/bin/mount --bind "$stage" "$keep"
  /usr/bin/mount -o remount,bind,ro "$keep"
fi
exec "$@"
"""


class LabError(RuntimeError):
    """A lab could not be built, used or completely torn down."""


@dataclass(frozen=True)
class Host:
    """One stand-in machine: its namespace, address, user and directories."""

    name: str
    netns: str
    ip: str
    user: str
    uid: int
    gid: int
    home: Path  # $HOME, owned by ``user``, mode 0700
    tmp: Path | None  # what this host sees as /tmp, when private

    @property
    def safehouse_home(self) -> Path:
        """``$SAFEHOUSE_HOME`` of this host (``--home``), inside its home."""
        return self.home / "safehouse"

    def address(self, port: int) -> str:
        return f"{self.ip}:{port}"


@dataclass
class _Started:
    host: Host
    proc: subprocess.Popen[Any]
    log: IO[bytes] | None = None


# ---------------------------------------------------------------- availability


def _run(argv: Sequence[str], check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run an administrative command as this process; raise LabError naming it on failure."""
    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"`{' '.join(argv)}` failed: {e}") from None
    if check and p.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()}")
    return p


def _effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _missing_prerequisite() -> str | None:
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces (/proc/self/ns/net missing)"
    for tool in (IP, SETPRIV, "/usr/bin/mount", "/usr/sbin/useradd"):
        if not os.access(tool, os.X_OK):
            return f"{tool} is not installed (Debian: iproute2, util-linux, mount, passwd)"
    caps = _effective_caps()
    for bit, cap in ((_CAP_NET_ADMIN, "CAP_NET_ADMIN"), (_CAP_SYS_ADMIN, "CAP_SYS_ADMIN")):
        if not caps >> bit & 1:
            return f"{cap} missing (euid {os.geteuid()}, CapEff {caps:#x}): run as root with namespaces allowed"
    if os.geteuid() != 0:
        return f"not root (euid {os.geteuid()}): creating users and switching to them needs root"
    return None


@functools.cache
def available() -> str | None:
    """``None`` when this process can build a lab here, else the reason it cannot.

    Checks the tools and capabilities, then really creates two namespaces, a
    bridge and a veth pair, runs a command inside, and removes them again.
    """
    reason = _missing_prerequisite()
    if reason:
        return reason
    probe = f"{NS_PREFIX}probe-{secrets.token_hex(3)}"
    peer = f"{probe}-b"
    try:
        for argv in (
            [IP, "netns", "add", probe], [IP, "netns", "add", peer],
            [IP, "-n", probe, "link", "add", "br0", "type", "bridge"],
            [IP, "-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "eth0", "netns", peer],
            [IP, "netns", "exec", peer, "/bin/sh", "-c", "/usr/bin/mount -t tmpfs none /mnt && ip link set lo up"],
        ):  # fmt: skip
            _run(argv)
    except LabError as e:
        return str(e)
    finally:
        for ns in (probe, peer):
            _run([IP, "netns", "delete", ns], check=False)
    return None


def require() -> None:
    """Skip the calling pytest test, with the reason, when a lab cannot be built here."""
    reason = available()
    if reason is not None:
        import pytest

        pytest.skip(f"network namespaces unavailable: {reason}")


# ---------------------------------------------------------------- users, paths, addresses


def ensure_user(name: str) -> tuple[int, int]:
    """(uid, gid) of system user ``name``, created (no login, no home) when absent."""
    with contextlib.suppress(KeyError):
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    p = _run(["/usr/sbin/useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
              "--shell", "/usr/sbin/nologin", name], check=False)  # fmt: skip
    try:  # another lab may have created it meanwhile
        pw = pwd.getpwnam(name)
    except KeyError:
        raise LabError(f"cannot create user {name}: {p.stderr.strip()}") from None
    return pw.pw_uid, pw.pw_gid


def hidden_prefix(venv: Path) -> tuple[Path, Path] | None:
    """(untraversable directory, interpreter prefix under it) when other users cannot
    reach the interpreter behind ``venv`` (uv/pyenv under /root), else None."""
    real = (venv / "bin" / "python").resolve()
    cfg = venv / "pyvenv.cfg"
    prefix = real.parent.parent
    if cfg.is_file():
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                prefix = Path(value.strip()).resolve().parent
    for d in [*reversed(prefix.parents), prefix]:
        if not os.stat(d).st_mode & 0o001:
            if d == prefix:
                raise LabError(f"{prefix} itself is not traversable by other users")
            return d, prefix
    return None


def _used_networks(base: Path) -> list[ipaddress.IPv4Network]:
    nets: list[ipaddress.IPv4Network] = []
    for entry in json.loads(_run([IP, "-4", "-j", "addr"]).stdout):
        for a in entry.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for r in json.loads(_run([IP, "-4", "-j", "route", "show", "table", "all"]).stdout):
        dst = r.get("dst", "default")
        if dst != "default" and not dst.endswith("/0"):
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst, strict=False))
    for state in base.glob("*/lab.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            nets.append(ipaddress.IPv4Network(json.loads(state.read_text())["subnet"]))
    return nets


def pick_subnet(base: Path = DEFAULT_BASE, tries: int = 200) -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 overlapping no local address, route or other lab."""
    used = _used_networks(base)
    rng = random.SystemRandom()
    for _ in range(tries):
        net = ipaddress.IPv4Network(f"10.{rng.randint(16, 254)}.{rng.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise LabError(f"no free 10.x.y.0/24 after {tries} tries (in use: {used})")


def _process_start(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _kill_netns_processes(namespaces: Iterable[str], timeout: float = 10.0) -> list[str]:
    """SIGKILL everything running in ``namespaces`` until none is left; problems found."""
    namespaces = [ns for ns in namespaces if Path("/run/netns", ns).exists()]
    deadline = time.monotonic() + timeout
    while True:
        pids = [int(p) for ns in namespaces for p in _run([IP, "netns", "pids", ns], check=False).stdout.split()]
        pids = [p for p in pids if p != os.getpid()]
        if not pids:
            return []
        if time.monotonic() > deadline:
            return [f"processes survive SIGKILL in the lab's namespaces: {pids}"]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _remove_lab_state(state: Mapping[str, Any]) -> list[str]:
    """Delete what a lab's state names: processes, namespaces, links, files."""
    problems = _kill_netns_processes(state.get("namespaces", []))
    for link in state.get("root_links", []):
        if Path("/sys/class/net", link).exists():
            p = _run([IP, "link", "delete", link], check=False)
            if p.returncode:
                problems.append(f"ip link delete {link}: {p.stderr.strip()}")
    for ns in state.get("namespaces", []):
        if Path("/run/netns", ns).exists():
            p = _run([IP, "netns", "delete", ns], check=False)
            if p.returncode:
                problems.append(f"ip netns delete {ns}: {p.stderr.strip()}")
        shutil.rmtree(Path("/etc/netns", ns), ignore_errors=True)
    with contextlib.suppress(OSError):
        Path("/etc/netns").rmdir()  # only when empty: ours, or nobody else's left
    if state.get("dir") and not state.get("keep_dir"):
        shutil.rmtree(state["dir"], ignore_errors=True)
    return problems


def reap_stale(base: Path = DEFAULT_BASE) -> list[str]:
    """Tear down labs under ``base`` whose owning process is gone; their ids."""
    reaped = []
    for state_file in base.glob("*/lab.json"):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        if _process_start(int(state["owner_pid"])) == state["owner_start"]:
            continue
        _remove_lab_state(state)
        shutil.rmtree(state_file.parent, ignore_errors=True)
        reaped.append(state_file.parent.name)
    return reaped


# ---------------------------------------------------------------- the lab


@dataclass
class NetnsLab:
    """Hosts on one private /24, each in its own network namespace and user account.

    Use as a context manager; :meth:`add_host` every host before starting
    programs that resolve the others' names.
    """

    venv: Path = DEFAULT_VENV
    base: Path = DEFAULT_BASE
    private_tmp: bool = True
    root_link: bool = False
    user_prefix: str = "sh-"
    keep_dir: bool = False  # keep homes and logs after teardown, for a post-mortem
    umask: int = 0o022  # of every program started; 0o077 makes even files inside a home private
    hide_pids: bool = True  # a /proc with hidepid=invisible: a host's programs see only their user's processes
    lab_id: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)
    subnet: ipaddress.IPv4Network | None = None
    timings: dict[str, float] = field(default_factory=dict)
    _started: list[_Started] = field(default_factory=list)
    _state: dict[str, Any] = field(default_factory=dict)
    _hidden: tuple[Path, Path] | None = None
    _tree: Path | None = None
    _old_handlers: dict[int, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle

    @property
    def dir(self) -> Path:
        return self.base / self.lab_id

    @property
    def switch_ns(self) -> str:
        return f"{NS_PREFIX}{self.lab_id}-{SWITCH}"

    def start(self) -> NetnsLab:
        """Build the switch (a bridge in a namespace of its own); reap dead labs first."""
        if self._state:
            raise LabError("lab already started")
        reason = available()
        if reason:
            raise LabError(f"network namespaces unavailable: {reason}")
        t0 = time.monotonic()
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o711)
        reap_stale(self.base)
        self._hidden = hidden_prefix(self.venv)
        # A checkout under /tmp (a clone made there) would vanish behind each host's private /tmp.
        tree = self.venv.resolve().parent
        self._tree = tree if tree.is_relative_to("/tmp") else None
        self.subnet = self.subnet or pick_subnet(self.base)
        self.dir.mkdir(mode=0o711)
        os.chmod(self.dir, 0o711)  # others traverse to their homes, list nothing
        (self.dir / ".stage").mkdir(mode=0o700)
        (self.dir / ".stage-tree").mkdir(mode=0o700)
        self._state = {
            "owner_pid": os.getpid(), "owner_start": _process_start(os.getpid()), "dir": str(self.dir),
            "keep_dir": self.keep_dir, "subnet": str(self.subnet), "namespaces": [], "root_links": [],
        }  # fmt: skip
        atexit.register(self.stop)
        self._install_signal_handlers()
        try:
            self._add_namespace(self.switch_ns)
            _run([IP, "-n", self.switch_ns, "link", "add", "br0", "type", "bridge"])
            _run([IP, "-n", self.switch_ns, "link", "set", "br0", "up"])
            if self.root_link:
                self._link_root()
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - t0
        return self

    def _save_state(self) -> None:
        tmp = self.dir / ".lab.json.tmp"
        tmp.write_text(json.dumps(self._state))
        tmp.replace(self.dir / "lab.json")

    def _add_namespace(self, ns: str) -> None:
        self._state["namespaces"].append(ns)  # recorded first: teardown removes even a half-made one
        self._save_state()
        _run([IP, "netns", "add", ns])
        _run([IP, "-n", ns, "link", "set", "lo", "up"])

    def _link_root(self) -> None:
        if self.subnet is None:
            raise LabError("no subnet chosen")
        link = f"shl{self.lab_id}"
        self._state["root_links"].append(link)
        self._save_state()
        _run([IP, "link", "add", link, "type", "veth", "peer", "name", "root", "netns", self.switch_ns])
        _run([IP, "-n", self.switch_ns, "link", "set", "root", "master", "br0", "up"])
        _run([IP, "addr", "add", f"{self.subnet[254]}/{self.subnet.prefixlen}", "dev", link])
        _run([IP, "link", "set", link, "up"])

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def bail(signum: int, _frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)  # unwinds: finally blocks and __exit__ run

        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                self._old_handlers[sig] = signal.signal(sig, bail)

    def stop(self, grace: float = 10.0) -> None:
        """Stop every program, remove namespaces, links, files; raise LabError if anything is left."""
        with self._lock:
            if not self._state:
                return
            t0 = time.monotonic()
            deferred: list[int] = []
            main = threading.current_thread() is threading.main_thread()
            # A second Ctrl-C or SIGTERM waits until the lab is gone (masks would not do: any thread takes them).
            saved = {s: signal.signal(s, lambda n, _f: deferred.append(n)) for s in _TEARDOWN_SIGNALS} if main else {}
            try:
                self._terminate_started(grace)
                problems = _remove_lab_state(self._state)
                if not self.keep_dir:
                    shutil.rmtree(self.dir, ignore_errors=True)
                    with contextlib.suppress(OSError):
                        self.base.rmdir()  # only when no other lab is there
                self._state = {}
                atexit.unregister(self.stop)
                self.timings["stop"] = time.monotonic() - t0
            finally:
                for sig, old in [*saved.items(), *(self._old_handlers.items() if main else ())]:
                    signal.signal(sig, old)
                self._old_handlers.clear()
                if deferred:  # last: a signal held meanwhile now takes its usual course
                    signal.raise_signal(deferred[0])
        if problems:
            raise LabError("teardown incomplete: " + "; ".join(problems))

    def _terminate_started(self, grace: float) -> None:
        for s in self._started:
            if s.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(s.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for s in self._started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(s.proc.pid, signal.SIGKILL)  # stragglers left in the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.proc.wait(timeout=5)
            for f in (s.log, s.proc.stdin, s.proc.stdout, s.proc.stderr):
                if f is not None:
                    f.close()
        self._started.clear()

    def __enter__(self) -> NetnsLab:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- hosts

    def add_host(self, name: str, user: str | None = None) -> Host:
        """A new host ``name``: namespace, address, user ``sh-<name>``, home, /tmp."""
        if not self._state or self.subnet is None:
            raise LabError("start the lab before adding hosts")
        if not _NAME.match(name) or name == SWITCH or name in self.hosts:
            raise LabError(f"host name {name!r} is invalid or taken (use [a-z][a-z0-9-]*, max 24)")
        if len(self.hosts) >= 250:
            raise LabError("a lab holds at most 250 hosts")
        t0 = time.monotonic()
        user = user or f"{self.user_prefix}{name}"
        uid, gid = ensure_user(user)
        ns = f"{NS_PREFIX}{self.lab_id}-{name}"
        ip = str(self.subnet[len(self.hosts) + 1])
        host = Host(name, ns, ip, user, uid, gid, self.dir / "homes" / name,
                    self.dir / "tmp" / name if self.private_tmp else None)  # fmt: skip
        for d in (host.home, host.tmp):
            if d is not None:
                d.parent.mkdir(mode=0o711, exist_ok=True)
                d.mkdir(mode=0o700)
                os.chown(d, uid, gid)
        self._add_namespace(ns)
        veth = f"h{len(self.hosts) + 1}"
        _run([IP, "-n", self.switch_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        _run([IP, "-n", self.switch_ns, "link", "set", veth, "master", "br0", "up"])
        _run([IP, "-n", ns, "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", "eth0"])
        _run([IP, "-n", ns, "link", "set", "eth0", "up"])
        self.hosts[name] = host
        self._write_hosts_files()
        self.timings[f"add_host {name}"] = time.monotonic() - t0
        return host

    def _write_hosts_files(self) -> None:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines += [f"{h.ip}\t{h.name}" for h in self.hosts.values()]
        if self.root_link and self.subnet is not None:
            lines.append(f"{self.subnet[254]}\ttest-runner")
        text = "\n".join(lines) + "\n"
        for h in self.hosts.values():
            d = Path("/etc/netns", h.netns)
            d.mkdir(parents=True, exist_ok=True)
            with (d / "hosts").open("w") as f:  # rewritten in place: running programs see new hosts
                f.write(text)
            os.chmod(d / "hosts", 0o644)

    # -- programs

    def env(self, host: Host, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The whole environment a program on ``host`` gets (nothing is inherited);
        ``extra`` adds or overrides variables, ``None`` removes one."""
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(host.home), "USER": host.user, "LOGNAME": host.user, "SHELL": "/bin/sh",
            "LANG": "C.UTF-8", "TMPDIR": "/tmp",
            "SAFEHOUSE_HOME": str(host.safehouse_home),
            "XDG_CACHE_HOME": str(host.home / ".cache"), "XDG_CONFIG_HOME": str(host.home / ".config"),
            "MPLCONFIGDIR": str(host.home / ".config" / "matplotlib"),
            "PYTHONDONTWRITEBYTECODE": "1",  # the tree is root's: use its __pycache__, never try to write
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",  # hosts have no way out anyway
        }  # fmt: skip
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def command(self, host: Host, argv: Sequence[str], no_new_privs: bool = True) -> list[str]:
        """The command line that runs ``argv`` on ``host`` as its user."""
        hide, keep = self._hidden if self._hidden else ("", "")
        return [
            IP, "netns", "exec", host.netns, "/bin/sh", "-c", _PRELUDE, "netns-lab", f"{self.umask:04o}",
            "hidepid" if self.hide_pids else "",
            str(host.tmp or ""), str(hide), str(keep), str(self.dir / ".stage"),
            str(self._tree or ""), str(self.dir / ".stage-tree"),
            SETPRIV, f"--reuid={host.uid}", f"--regid={host.gid}", "--init-groups",
            "--pdeathsig=KILL", *(["--no-new-privs"] if no_new_privs else []), "--", *argv,
        ]  # fmt: skip

    def run(
        self, host: Host, argv: Sequence[str], env: Mapping[str, str | None] | None = None, *, log: Path | None = None,
        stdin: Any = subprocess.DEVNULL, stdout: Any = None, stderr: Any = None, cwd: Path | None = None,
    ) -> subprocess.Popen[Any]:  # fmt: skip
        """Start ``argv`` on ``host`` as its user, in a session of its own; the lab stops it.

        ``log`` (a file, appended to) takes stdout and stderr; else they go where
        ``stdout``/``stderr`` say. ``env`` adds to :meth:`env`. The working
        directory is the host's home unless ``cwd`` says otherwise.
        """
        if host.name not in self.hosts or not self._state:
            raise LabError(f"host {host.name!r} is not part of this running lab")
        logf = log.open("ab") if log is not None else None
        try:
            proc = subprocess.Popen(
                self.command(host, argv), env=self.env(host, env), cwd=cwd or host.home, stdin=stdin,
                stdout=logf or stdout, stderr=subprocess.STDOUT if logf else stderr, start_new_session=True,
            )  # fmt: skip
        except BaseException:
            if logf:
                logf.close()
            raise
        self._started.append(_Started(host, proc, logf))
        return proc

    def exec(
        self, host: Host, argv: Sequence[str], env: Mapping[str, str | None] | None = None, *,
        input: str | None = None, timeout: float = 120.0, check: bool = False,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run ``argv`` on ``host`` to completion; its output as text. On timeout its group is killed."""
        proc = self.run(host, argv, env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        try:
            out, err = proc.communicate(input.encode() if input is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise LabError(f"{host.name}: {list(argv)} did not finish within {timeout:.0f}s") from None
        finally:
            self._started[:] = [s for s in self._started if s.proc is not proc]
        done = subprocess.CompletedProcess(list(argv), proc.returncode, out.decode(errors="replace"),
                                           err.decode(errors="replace"))  # fmt: skip
        if check and done.returncode != 0:
            raise LabError(f"{host.name}: {list(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done

    # -- files

    def install(self, host: Host, src: Path, dest: str, mode: int | None = None) -> Path:
        """Copy ``src`` (file or tree) to ``dest`` under ``host``'s home, owned by its user."""
        target = (host.home / dest).resolve()
        if host.home.resolve() not in target.parents:
            raise LabError(f"{dest!r} is outside {host.name}'s home")
        self._make_parents(host, target)
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)
        for p in [target, *(target.rglob("*") if target.is_dir() else [])]:
            os.chown(p, host.uid, host.gid, follow_symlinks=False)
            if mode is not None and p.is_file():
                os.chmod(p, mode)
        return target

    def write_text(self, host: Host, dest: str, text: str, mode: int = 0o644) -> Path:
        """Write ``text`` to ``dest`` under ``host``'s home, owned by its user."""
        target = (host.home / dest).resolve()
        if host.home.resolve() not in target.parents:
            raise LabError(f"{dest!r} is outside {host.name}'s home")
        self._make_parents(host, target)
        target.write_text(text)
        os.chown(target, host.uid, host.gid)
        os.chmod(target, mode)
        return target

    @staticmethod
    def _make_parents(host: Host, target: Path) -> None:
        missing = [p for p in target.parents if host.home in p.parents and not p.exists()]
        for p in reversed(missing):
            p.mkdir(mode=0o700)
            os.chown(p, host.uid, host.gid)


# ---------------------------------------------------------------- Safehouse commands


def safehouse(lab: NetnsLab, *args: str) -> list[str]:
    """``safehouse ARGS`` from the lab's virtualenv (for :meth:`NetnsLab.run`/``exec``)."""
    return [str(lab.venv / "bin" / "safehouse"), *args]
