"""Views of what the robot saw and decided (Rerun recordings, matplotlib figures).

Sits above `selection` (it draws Decisions) and below eval, console and ros, which log to it.
"""
