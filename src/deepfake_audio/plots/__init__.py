"""Figures: training history (``history``) and evaluation curves (``evaluation``).

matplotlib runs with the non-interactive Agg backend: plots are files, never windows.
"""

import matplotlib

matplotlib.use("Agg")
