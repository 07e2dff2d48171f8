"""Helpers for tests and offline demos: generated media and tiny models of the real classes."""
from .media import make_video, write_text_file

__all__ = ["make_video", "write_text_file"]
