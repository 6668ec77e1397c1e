"""Figures for the book, drawn by code from the library's presets and kernels.

Each function returns a matplotlib Figure; its artists carry a `gid` naming what they stand
for ("q3", "kv0", "edge q3-kv0", ...) so that tests can check what was drawn.
"""
