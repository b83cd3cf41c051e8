"""The live Textual screen: the app (``app.py``) and its styles, the state that folds engine
events into bounded buffers (``state.py``; charted figures in ``history.py`` over the time
series of ``series.py``), pure drawing functions (``render.py``, ``charts.py``), the command
palette, the controls the keys drive, the engine's child process, and replay of a finished
run. Panes are in ``widgets/``, modal screens and the compare view in ``screens/``.
"""
