"""The HTML report: one self-contained file with matplotlib plots as inline SVG (no
textual).
"""
