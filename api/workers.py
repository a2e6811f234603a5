"""Worker processes for `riskrules serve --workers N`: uvicorn's supervisor, with a listening
socket of its own per worker and SIGHUP reloading the policies instead of restarting workers.

Why a socket per worker: uvicorn's supervisor hands every worker the same socket, and whichever
worker wakes first accepts. Callers keep their connections open (a pool of 16 or 32), so the
split made in the first milliseconds lasts: measured with wrk -c32 on the 89-indicator
scorecard, one run in four put every connection on one worker (1,843 requests/s, one core idle)
where the balanced runs served 3,300–3,900. Sockets bound with SO_REUSEPORT each get their own
accept queue, and the kernel spreads new connections over them by a hash of the addresses.
"""
from __future__ import annotations

import logging
import socket
from typing import Callable

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")


class PortInUse(RuntimeError):
    pass


def _family(config: Config) -> int:
    return socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET


def check_port_free(config: Config) -> None:
    """SO_REUSEPORT lets any process of the same user bind the port too: a second service
    started by mistake would silently take half the connections. So first bind it as an
    ordinary socket would, which fails if anything listens there."""
    probe = socket.socket(_family(config), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((config.host, config.port))
    except OSError as exc:
        raise PortInUse(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    finally:
        probe.close()


def reuseport_socket(config: Config) -> socket.socket:
    sock = socket.socket(_family(config), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.host, config.port))
    # listening from the start: connections the kernel assigns to a worker still starting (or
    # being replaced) wait in its queue instead of all going to the workers already up
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    return sock


class Supervisor(Multiprocess):
    """Worker i always serves socket i: a worker that dies is replaced on the same socket, so
    the connections the kernel queued for it wait for its replacement instead of failing."""

    def __init__(self, config: Config, on_hup: Callable[[], None]):
        check_port_free(config)
        self.slots = [reuseport_socket(config) for _ in range(config.workers)]
        super().__init__(config, sockets=[])
        self.on_hup = on_hup

    def init_processes(self) -> None:
        for sock in self.slots:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for i, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()      # hung, or already gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:     # it would fail the same way again
                log.error("worker %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("worker %s died; starting another on its socket", process.pid)
            self.processes[i] = Process(self.config, [self.slots[i]])
            self.processes[i].start()

    def handle_hup(self) -> None:
        self.on_hup()

    def handle_ttin(self) -> None:
        log.warning("SIGTTIN ignored: the number of workers is fixed by --workers")

    def handle_ttou(self) -> None:
        log.warning("SIGTTOU ignored: the number of workers is fixed by --workers")

    def run(self) -> None:
        try:
            super().run()
        finally:
            for sock in self.slots:
                sock.close()
