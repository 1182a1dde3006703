"""Render jobs that outlive one request handler: a thread per `Animator.animate` call, its latest
progress, and one cancel event per browser session. UI-agnostic: the Gradio app drives them."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np


class CancelBoard:
    """One threading.Event per browser session, so the Cancel button can stop that session's render."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def start(self, session: str) -> threading.Event:
        ev = threading.Event()
        with self._lock:
            self._events[session] = ev
        return ev

    def cancel(self, session: str) -> bool:
        with self._lock:
            ev = self._events.get(session)
        if ev is not None:
            ev.set()
        return ev is not None

    def finish(self, session: str, ev: threading.Event) -> None:
        with self._lock:
            if self._events.get(session) is ev:
                del self._events[session]


class RenderJob:
    """Runs `service.animate` in a thread; keeps only the latest progress (memory stays bounded)."""

    def __init__(self, service, photo, box, options, out_dir: Path, cancel: threading.Event, rig=None, others=None):
        # options: the birdanim.options.AnimateOptions of the video; rig: a rig the user edited (or None);
        # others: the other birds' boxes, kept out of the rig mode's cut-out (None: the service decides)
        self.service, self.photo, self.box, self.options, self.out_dir = service, photo, box, options, out_dir
        self.rig, self.others = rig, others
        self.cancel = cancel
        self.result = None
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._latest: tuple[str, float, np.ndarray | None] | None = None
        self.last_frame: np.ndarray | None = None  # newest frame seen, shown with the final video
        self._thread = threading.Thread(target=self._run, name="birdanim-render", daemon=True)

    def start(self) -> RenderJob:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:  # the service itself runs one animate at a time (its lock), renders and example caching alike
            self.result = self.service.animate(self.photo, self.options, box=self.box, others=self.others, rig=self.rig,
                                               out_dir=self.out_dir,
                                               progress=self._progress, cancel=self.cancel)
        except BaseException as e:  # handed to the request thread, which reports it
            self.error = e
        finally:
            with self._cond:
                self._cond.notify_all()

    def _progress(self, stage: str, fraction: float, frame: np.ndarray | None = None) -> None:
        with self._cond:
            old = self._latest
            keep = frame if frame is not None else (old[2] if old else None)
            self._latest = (stage, float(fraction), keep)
            if frame is not None:
                self.last_frame = frame
            self._cond.notify_all()

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float) -> tuple[str, float, np.ndarray | None] | None:
        """The latest (stage, fraction, newest frame or None), consumed; None if nothing new."""
        with self._cond:
            if self._latest is None and self._thread.is_alive():
                self._cond.wait(timeout)
            latest, self._latest = self._latest, None
        return latest

    def stop(self, timeout: float = 30.0) -> None:
        self.cancel.set()
        self._thread.join(timeout)
