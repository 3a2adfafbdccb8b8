"""toeangle: big-toe dorsiflexion from a side-on foot photo.

photo -> decode -> detectors -> angle -> verdict + routine -> JSON / overlay
"""

__version__ = "0.1.0"
