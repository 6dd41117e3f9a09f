"""N warm containers of one function: worker processes fed over pipes, one invocation each.

``order-router run --workers N`` runs each pooled function in N worker processes, each
handling one invocation at a time, as N warm Lambda containers do (``local.runtime``).
:class:`ContainerPool` hands an invocation to an idle worker over its own pipe:

* from the event loop (:meth:`ContainerPool.ainvoke`, the HTTP front door) the event is
  written and the answer read on the loop itself (``loop.add_reader``): no thread runs per
  request. ``concurrent.futures.ProcessPoolExecutor``, used before, passed every request
  through two threads of its own (a manager and a queue feeder) and back to the loop through a
  third wake-up, about a quarter of the front door's CPU per request (docs/capacity.md);
* from any other thread (the event bus, the schedules) :meth:`ContainerPool.invoke` blocks that
  thread.

Requests beyond N wait for the first worker freed, in arrival order. A worker that dies fails
the invocation it was running (the front door answers 500) and is not used again, as a crashed
Lambda container is not; the others keep serving.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

STOP_TIMEOUT_S = 10.0
"""How long a worker may take to close its pools and exit before it is terminated."""


class ContainerGoneError(RuntimeError):
    """The worker process running an invocation died (or every worker has)."""


@dataclass
class _Worker:
    process: SpawnProcess
    conn: Connection
    alive: bool = True


@dataclass
class _ThreadWaiter:
    ready: threading.Event = field(default_factory=threading.Event)
    worker: _Worker | None = None


class ContainerPool:
    """``size`` worker processes of one function (see the module docstring).

    Parameters
    ----------
    context
        The ``spawn`` multiprocessing context (a fresh interpreter per container).
    size
        Number of workers.
    main
        The worker's loop, ``main(conn)`` in the child (:func:`local.runtime._container_main`).
    """

    def __init__(self, context: SpawnContext, size: int, main: Callable[[Connection], None]):
        self._workers: list[_Worker] = []
        for _ in range(size):
            parent, child = context.Pipe()
            process = context.Process(target=main, args=(child,), daemon=False)
            process.start()
            child.close()
            self._workers.append(_Worker(process, parent))
        self._lock = threading.Lock()
        self._idle: collections.deque[_Worker] = collections.deque(self._workers)
        self._waiters: collections.deque[tuple[Waiter, asyncio.AbstractEventLoop | None]] = (
            collections.deque()
        )
        # A run that fails before its own close(): the workers wait on their pipes, and the
        # interpreter's exit would wait on them (they are not daemons, so each can close its
        # Postgres pool on the way out). Registered after multiprocessing's hook: runs first.
        atexit.register(self.close)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers still alive."""
        return [w.process.pid or 0 for w in self._workers if w.alive]

    def broadcast(self, message: Any) -> list[Any]:
        """Send ``message`` to every idle worker at once and gather the answers (warm-up)."""
        workers = [self._acquire_blocking() for _ in self._live()]
        try:
            for worker in workers:
                self._send(worker, message)
            # Every answer is read, even after a failure: one left in a pipe would be taken
            # for the answer of that container's next invocation.
            answers: list[Any] = []
            failures: list[Exception] = []
            for worker in workers:
                try:
                    answers.append(self._receive(worker))
                except Exception as exc:  # raised below, once every pipe is read
                    failures.append(exc)
            if failures:
                raise failures[0]
            return answers
        finally:
            for worker in workers:
                self._release(worker)

    def invoke(self, message: Any) -> Any:
        """Run ``message`` in the first idle worker; blocks the calling thread."""
        worker = self._acquire_blocking()
        try:
            self._send(worker, message)
            return self._receive(worker)
        finally:
            self._release(worker)

    async def ainvoke(self, message: Any) -> Any:
        """Run ``message`` in the first idle worker without blocking the event loop."""
        loop = asyncio.get_running_loop()
        worker = await self._acquire_async(loop)
        answer: asyncio.Future[Any] = loop.create_future()

        def readable() -> None:
            loop.remove_reader(worker.conn.fileno())
            try:
                result = self._receive(worker)
            except Exception as exc:  # the invocation's own failure, re-raised by the caller
                if not answer.done():
                    answer.set_exception(exc)
            else:
                if not answer.done():  # a request cancelled meanwhile
                    answer.set_result(result)
            finally:
                self._release(worker)

        try:
            self._send(worker, message)
        except BaseException:
            self._release(worker)
            raise
        loop.add_reader(worker.conn.fileno(), readable)
        return await answer

    def close(self) -> None:
        """Stop every worker (each closes its Postgres pool on the way out)."""
        for worker in self._workers:
            if worker.alive:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(STOP_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(STOP_TIMEOUT_S)
            worker.alive = False
            worker.conn.close()
        with self._lock:
            self._idle.clear()
            waiters = list(self._waiters)
            self._waiters.clear()
        for waiter, loop in waiters:
            self._fail(waiter, loop)

    # -- internals --------------------------------------------------------------------------

    def _live(self) -> list[_Worker]:
        return [w for w in self._workers if w.alive]

    def _send(self, worker: _Worker, message: Any) -> None:
        try:
            worker.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
            worker.alive = False
            raise ContainerGoneError(f"container pid {worker.process.pid} died") from exc

    def _receive(self, worker: _Worker) -> Any:
        try:
            status, value = worker.conn.recv()
        except (EOFError, OSError) as exc:
            worker.alive = False
            raise ContainerGoneError(f"container pid {worker.process.pid} died") from exc
        if status == "error":
            raise value
        return value

    def _acquire_blocking(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.popleft()
            if not self._live():
                raise ContainerGoneError("every container of this function died")
            waiter = _ThreadWaiter()
            self._waiters.append((waiter, None))
        waiter.ready.wait()
        if waiter.worker is None:
            raise ContainerGoneError("the containers were stopped")
        return waiter.worker

    async def _acquire_async(self, loop: asyncio.AbstractEventLoop) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.popleft()
            if not self._live():
                raise ContainerGoneError("every container of this function died")
            future: asyncio.Future[_Worker] = loop.create_future()
            self._waiters.append((future, loop))
        return await future

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if not worker.alive:
                if not self._live():  # nothing will ever free a worker for them
                    waiters = list(self._waiters)
                    self._waiters.clear()
                    for waiter, loop in waiters:
                        self._fail(waiter, loop)
                return
            while self._waiters:
                waiter, loop = self._waiters.popleft()
                if self._hand(waiter, loop, worker):
                    return
            self._idle.append(worker)

    def _hand(
        self, waiter: Waiter, loop: asyncio.AbstractEventLoop | None, worker: _Worker
    ) -> bool:
        # False when the waiter gave up (a cancelled request): the worker goes to the next one.
        if isinstance(waiter, _ThreadWaiter):
            waiter.worker = worker
            waiter.ready.set()
            return True
        if waiter.done() or loop is None or loop.is_closed():
            return False
        loop.call_soon_threadsafe(self._resolve, waiter, worker)
        return True

    def _resolve(self, future: asyncio.Future[_Worker], worker: _Worker) -> None:
        # On the waiter's loop; a waiter cancelled since it was chosen passes the worker on.
        if future.done():
            self._release(worker)
        else:
            future.set_result(worker)

    def _fail(self, waiter: Waiter, loop: asyncio.AbstractEventLoop | None) -> None:
        if isinstance(waiter, _ThreadWaiter):
            waiter.ready.set()
        elif loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_reject, waiter)


Waiter = asyncio.Future[_Worker] | _ThreadWaiter
"""Who waits for a free worker: a request on the event loop, or a blocked thread."""


def _reject(future: asyncio.Future[_Worker]) -> None:
    if not future.done():
        future.set_exception(ContainerGoneError("the containers were stopped"))
