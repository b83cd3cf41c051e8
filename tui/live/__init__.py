"""The live Textual screen: the app and its styles, the state that folds engine events into
bounded buffers, pure drawing functions, the controls the keys drive, the engine's child
process, replay of a finished run, and the follower each browser's screen runs (``--web``).
Widgets and modal screens are in ``widgets/`` and ``screens/``.
"""
