"""Clips: clip -> frames -> tracked landmarks -> angle curve -> the movement -> verdict + routine.

One module per arrow: clip (decoding), track, curve, movement, then pipeline (which joins them),
plot and annotate (what a person looks at).
"""
