"""The headless console: the progress line while a run goes on, and the summary tables
after it (rich only, no textual).
"""
