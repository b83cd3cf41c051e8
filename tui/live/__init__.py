"""The live Textual screen: the app and its styles, the state that folds engine events into
bounded buffers, pure drawing functions, the controls the keys drive, the engine's child
process, and replay of a finished run. Widgets and modal screens are in ``widgets/`` and
``screens/``.
"""
