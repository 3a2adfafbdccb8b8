"""An evaluation renderer that training never sees: FIND feet drawn by a second, independent engine.

Shares only FIND's geometry and the landmark contract with training (training/foot.py); the
rasterizer, shading, lights, surfaces, camera model and phone pipeline are its own, and so are
its random streams. Nothing in training/ imports it. Used by bench/eval_render.py.
"""

from .photo import EvalRenderer, Photo

__all__ = ["EvalRenderer", "Photo"]
