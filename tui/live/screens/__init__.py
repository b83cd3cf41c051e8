"""Modal screens (help, confirm, profile picker, a request's record) and the compare view
with its run picker.
"""
