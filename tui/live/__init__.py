"""The live Textual screen: the app (``app.py``) and its styles, the state that folds engine
events into bounded buffers (``state.py``; charted figures in ``history.py`` over the time
series of ``series.py``), pure drawing functions (``render.py``, ``charts.py``), the command
palette, the controls the keys drive, the engine's child process, replay of a finished run,
and the follower each browser's screen runs (``follow.py``, for ``--web``). Panes are in
``widgets/``, modal screens and the compare view in ``screens/``.
"""
