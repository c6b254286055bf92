"""deepfake-audio: train, compare and run detectors of synthetic speech."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepfake-audio")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
